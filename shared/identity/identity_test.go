package identity

import (
	"errors"
	"strings"
	"testing"
)

func TestEmail(t *testing.T) {
	t.Parallel()
	var charErr *CharError
	tests := []struct {
		name, in, want string
		wantErr        any // nil, a sentinel error, or &charErr
	}{
		{"plain", "test@example.com", "test@example.com", nil},
		{"plus and subdomain", "first.last+tag@sub.example.co.uk", "first.last+tag@sub.example.co.uk", nil},
		{"uppercase ASCII", "Test@EXAMPLE.COM", "test@example.com", nil},
		{"NFC", "\u00c9lan@example.com", "\u00e9lan@example.com", nil},
		{"NFD is the same identity", "E\u0301lan@example.com", "\u00e9lan@example.com", nil},
		{"lowercase é", "\u00e9lan@example.com", "\u00e9lan@example.com", nil},
		{"fullwidth domain", "a@ｅｘａｍｐｌｅ.com", "a@example.com", nil},
		{"fullwidth everything", "ａ＠ｅｘａｍｐｌｅ．ｃｏｍ", "a@example.com", nil},
		{"IDN domain", "a@Bücher.example", "a@xn--bcher-kva.example", nil},
		{"A-label domain", "a@xn--bcher-kva.example", "a@xn--bcher-kva.example", nil},
		{"whole-script Cyrillic domain stays distinct", "a@\u0430\u0440\u0435.com", "a@xn--80ak6a.com", nil},
		{"ideographic full stop", "a@example\u3002com", "a@example.com", nil},
		{"zero-width joiner in the local part", "e\u200dlan@example.com", "", &charErr},
		{"zero-width space", "elan\u200b@example.com", "", &charErr},
		{"BOM", "\ufeffelan@example.com", "", &charErr},
		{"word joiner", "el\u2060an@example.com", "", &charErr},
		{"bidi override", "a@exa\u202emple.com", "", &charErr},
		{"no-break space", "a\u00a0b@example.com", "", &charErr},
		{"control", "a\x01b@example.com", "", &charErr},
		{"newline", "a@example.com\n", "", &charErr},
		{"homoglyph: Cyrillic а in a Latin label", "a@ex\u0430mple.com", "", ErrMixed},
		{"homoglyph sent as its A-label", "a@xn--exmple-4nf.com", "", ErrMixed},
		{"Greek omicron in a Latin label", "a@g\u03bfogle.com", "", ErrMixed},
		{"Japanese mix is fine", "a@\u65e5\u672c\u3054.example", "a@xn--38jv62nb2a.example", nil},
		{"no at", "example.com", "", ErrEmail},
		{"no dot in domain", "a@localhost", "", ErrDomain},
		{"bad domain", "a@exa_mple.com", "", ErrDomain},
		{"display name", "Bob <b@example.com>", "", &charErr},
		{"double dot", "a@example..com", "", ErrEmail},
		{"invalid UTF-8", "a\xff@example.com", "", ErrEmail},
		{"too long", strings.Repeat("a", 250) + "@x.io", "", ErrEmail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Email(tt.in)
			switch want := tt.wantErr.(type) {
			case nil:
				if err != nil || got != tt.want {
					t.Fatalf("Email(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
				}
			case error:
				if !errors.Is(err, want) {
					t.Fatalf("Email(%q) = %q, %v; want %v", tt.in, got, err, want)
				}
			case **CharError:
				if !errors.As(err, want) {
					t.Fatalf("Email(%q) = %q, %v; want a CharError", tt.in, got, err)
				}
			}
		})
	}
}

func TestHomoglyphDomainDoesNotCollide(t *testing.T) {
	t.Parallel()
	ascii, err1 := Email("a@ape.com")
	cyr, err2 := Email("a@\u0430\u0440\u0435.com") // Cyrillic а р е
	if err1 != nil || err2 != nil || strings.EqualFold(ascii, cyr) || !strings.Contains(cyr, "xn--") {
		t.Fatalf("%q (%v) and %q (%v)", ascii, err1, cyr, err2)
	}
}

func TestCharErrorDetail(t *testing.T) {
	t.Parallel()
	_, err := Email("e\u200dlan@example.com")
	if err == nil || err.Error() != "must not contain U+200D (an invisible, formatting or control character)" {
		t.Fatalf("%v", err)
	}
	_, err = Email("a\u00a0b@example.com")
	if err == nil || err.Error() != "must not contain U+00A0 (a space character)" {
		t.Fatalf("%v", err)
	}
}

func TestUsername(t *testing.T) {
	t.Parallel()
	for in, ok := range map[string]bool{
		"testuser": true, "a.b-c_d": true, "Elan": true, "ab": false, ".abc": false, "a bc": false,
		"\u00c9lan": false, "ｅｌａｎ": false, "el\u200dan": false, "\u0430pe": false,
		strings.Repeat("a", 32): true, strings.Repeat("a", 33): false,
	} {
		got, err := Username(in)
		if ok && (err != nil || got != in) || !ok && !errors.Is(err, ErrUsername) {
			t.Errorf("Username(%q) = %q, %v; want ok=%v", in, got, err, ok)
		}
	}
}
