package users

import (
	"testing"

	"github.com/ratebill/platform/shared"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	s := func(v string) *string { return &v }
	tests := []struct {
		name            string
		username, email *string
		wantFields      []string
	}{
		{"seed example", s("testuser"), s("test@example.com"), nil},
		{"dots and dashes", s("a.b-c_d"), s("first.last+tag@sub.example.co.uk"), nil},
		{"missing both", nil, nil, []string{"username", "email"}},
		{"short username", s("ab"), s("a@example.com"), []string{"username"}},
		{"long username", s("a23456789012345678901234567890123"), s("a@example.com"), []string{"username"}},
		{"leading dot", s(".abc"), s("a@example.com"), []string{"username"}},
		{"space", s("a bc"), s("a@example.com"), []string{"username"}},
		{"unicode", s("jöhn"), s("a@example.com"), []string{"username"}},
		{"no at", s("abc"), s("example.com"), []string{"email"}},
		{"no dot in domain", s("abc"), s("a@localhost"), []string{"email"}},
		{"display name", s("abc"), s("Bob <b@example.com>"), []string{"email"}},
		{"trailing space", s("abc"), s("a@example.com "), []string{"email"}},
		{"double dot domain", s("abc"), s("a@example..com"), []string{"email"}},
		{"too long", s("abc"), s(string(make([]byte, 250)) + "@x.io"), []string{"email"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := validate(createRequest{Username: tt.username, Email: tt.email})
			if len(tt.wantFields) == 0 {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, f := range tt.wantFields {
				found := false
				for _, fe := range err.(*shared.Error).Fields {
					found = found || fe.Field == f
				}
				if !found {
					t.Fatalf("error %v does not name %s", err, f)
				}
			}
		})
	}
}
