package routes

import (
	"regexp"
	"slices"
	"testing"
)

func TestMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, path string
		want          []string
		ok            bool
	}{
		{"/usage", "/usage", nil, true},
		{"/usage", "/usage/", nil, false},
		{"/users/", "/users/", nil, true},
		{"/users/", "/users", nil, false},
		{"/admin/users/{id}", "/admin/users/42", []string{"42"}, true},
		{"/admin/users/{id}", "/admin/users/", nil, false},
		{"/admin/users/{id}", "/admin/users", nil, false},
		{"/admin/users/{id}", "/admin/users/4/2", nil, false},
		{"/admin/users/{id}/suspend", "/admin/users/7/suspend", []string{"7"}, true},
		{"/admin/users/{id}/suspend", "/admin/users//suspend", nil, false},
		{"/admin/users/{id}/suspend", "/admin/users/7/suspend/", nil, false},
		{"/admin/users/{id}/suspend", "/admin/users/7/reactivate", nil, false},
		{"/a/{x}/{y}", "/a/b/c", []string{"b", "c"}, true},
	}
	for _, tt := range tests {
		got, ok := Match(tt.pattern, tt.path)
		if ok != tt.ok || !slices.Equal(got, tt.want) {
			t.Errorf("Match(%q, %q) = %v, %v; want %v, %v", tt.pattern, tt.path, got, ok, tt.want, tt.ok)
		}
		// The nginx form accepts exactly what Match accepts.
		if re := regexp.MustCompile(Regexp(tt.pattern)); re.MatchString(tt.path) != tt.ok {
			t.Errorf("Regexp(%q) = %s matches %q: %v, want %v", tt.pattern, re, tt.path, !tt.ok, tt.ok)
		}
	}
}

func TestPatternsOfTheTable(t *testing.T) {
	t.Parallel()
	for _, r := range Table {
		ex := Example(r.Path)
		if fn, ok := FunctionFor(ex); !ok || fn != r.Function {
			t.Errorf("%s: example %s goes to %q, want %s", r.Key(), ex, fn, r.Function)
		}
		if IsPattern(r.Path) {
			if w := Wildcard(r.Path); w[len(w)-1] != '*' || len(Vars(r.Path)) == 0 {
				t.Errorf("%s: wildcard %s, vars %v", r.Path, w, Vars(r.Path))
			}
		}
	}
	if got := Wildcard("/admin/users/{id}/limit"); got != "/admin/users/*" {
		t.Errorf("Wildcard = %s", got)
	}
	if got := Regexp("/admin/keys/{id}"); got != `^/admin/keys/[^/]+$` {
		t.Errorf("Regexp = %s", got)
	}
}
