package users

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ratebill/platform/shared/deps/depstest"
)

func signUp(t *testing.T, h http.Handler, username, email string) (int, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"username": username, "email": email})
	r := httptest.NewRequest("POST", "/users/", strings.NewReader(string(body)))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var v map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("%d %s: %v", w.Code, w.Body, err)
	}
	return w.Code, v
}

// TestSignUpIdentities signs up, against the real database, the same
// identity spelt twice: the second spelling must be a 409, however it
// differs (normalisation form, non-ASCII case, fullwidth letters, ASCII
// case of the domain or username). A homoglyph domain is a different,
// visibly different identity; invisible characters are refused.
func TestSignUpIdentities(t *testing.T) {
	t.Parallel()
	h, err := Handler(depstest.New(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	pairs := []struct {
		name                         string
		user1, email1, user2, email2 string
		wantField                    string
	}{
		{"NFC then NFD", "nfc1", "\u00c9lan@example.com", "nfc2", "E\u0301lan@example.com", "email"},
		{"non-ASCII case", "case1", "\u00c9milie@example.com", "case2", "\u00e9milie@example.com", "email"},
		{"fullwidth", "wide1", "wide@example.com", "wide2", "wide@ｅｘａｍｐｌｅ.com", "email"},
		{"ASCII domain case", "dom1", "dom@example.org", "dom2", "dom@EXAMPLE.ORG", "email"},
		{"IDN as U-label and A-label", "idn1", "idn@b\u00fccher.example", "idn2", "idn@xn--bcher-kva.example", "email"},
		{"username case", "Mixed", "m1@example.com", "mIXED", "m2@example.com", "username"},
	}
	for _, p := range pairs {
		code, v := signUp(t, h, p.user1, p.email1)
		if code != 201 {
			t.Fatalf("%s: first sign-up %d %v", p.name, code, v)
		}
		code, v = signUp(t, h, p.user2, p.email2)
		if code != 409 || !strings.Contains(v["detail"].(string), p.wantField) {
			t.Errorf("%s: second spelling %d %v, want 409 naming %s", p.name, code, v, p.wantField)
		}
	}

	code, v := signUp(t, h, "ascii", "a@ape.com")
	if code != 201 {
		t.Fatalf("ascii: %d %v", code, v)
	}
	code, v = signUp(t, h, "cyrillic", "a@\u0430\u0440\u0435.com")
	if code != 201 || v["email"] != "a@xn--80ak6a.com" {
		t.Fatalf("whole-script Cyrillic domain: %d %v, want 201 stored as a@xn--80ak6a.com", code, v)
	}
	for _, tt := range []struct{ name, email, wantDetail string }{
		{"zero-width joiner", "e\u200dlan@example.com", "U+200D"},
		{"BOM", "\ufeffbom@example.com", "U+FEFF"},
		{"no-break space", "a\u00a0b@example.com", "U+00A0"},
		{"Cyrillic а in a Latin label", "a@ex\u0430mple.com", "mixes scripts"},
	} {
		code, v := signUp(t, h, "refused", tt.email)
		errs, _ := v["errors"].([]any)
		ok := code == 422 && len(errs) == 1
		if ok {
			fe := errs[0].(map[string]any)
			ok = fe["field"] == "email" && strings.Contains(fe["detail"].(string), tt.wantDetail)
		}
		if !ok {
			t.Errorf("%s: %d %v, want 422 on email naming %q", tt.name, code, v, tt.wantDetail)
		}
	}
}
