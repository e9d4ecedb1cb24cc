// Package identity holds the rules that decide when two sign-ups are the
// same account: which usernames and email addresses are accepted, and the
// one normalised form of each that is stored and compared. It does no
// I/O; the database enforces uniqueness on lower() of what it returns.
//
// Usernames are ASCII only (letters, digits, '_', '.', '-'): a name that
// shows the same on every screen has no homoglyphs (Cyrillic 'а' for
// Latin 'a'), no normalisation forms and no invisible characters to
// compare. They are stored as typed and compared case-insensitively.
//
// Email addresses may be internationalised. Email rejects control,
// invisible and formatting characters (Unicode Cc, Cf, Co: U+200B,
// U+200D, U+FEFF, U+2060, the bidi controls) and every space separator
// (U+00A0 too), folds fullwidth forms to ASCII ('ｅｘａｍｐｌｅ' is
// 'example'), normalises to NFC, lowercases the local part, and converts
// the domain to ASCII with IDNA (the UTS 46 lookup profile). A domain
// label that mixes scripts in a way no language needs (Latin with
// Cyrillic or Greek: 'exаmple' with a Cyrillic 'а') is refused; a label
// wholly in another script is accepted and stored as its punycode A-label
// (xn--…), so it neither collides with nor looks like an ASCII domain.
// See docs/identities.md.
package identity

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"
	"golang.org/x/text/width"
)

// Errors Username and Email return; the text is meant for the client
// (after the field name).
var (
	ErrUsername = errors.New("must be 3 to 32 ASCII characters: letters a-z or A-Z, digits, '_', '.' or '-', starting with a letter or digit")
	ErrEmail    = errors.New("must be a plain address such as name@example.com, at most 254 characters")
	ErrDomain   = errors.New("has a domain that is not a valid internet domain name")
	ErrMixed    = errors.New("has a domain label that mixes scripts (such as Latin with Cyrillic or Greek), which makes it look like another domain")
)

// CharError reports a character Email refuses.
type CharError struct {
	Rune rune
}

func (e *CharError) Error() string {
	kind := "an invisible, formatting or control character"
	if unicode.In(e.Rune, unicode.Z) {
		kind = "a space character"
	}
	return fmt.Sprintf("must not contain %U (%s)", e.Rune, kind)
}

// Username returns username as stored (unchanged) when it is 3 to 32
// characters of ASCII letters, digits, '_', '.' and '-' starting with a
// letter or digit, and ErrUsername otherwise.
func Username(username string) (string, error) {
	if len(username) < 3 || len(username) > 32 {
		return "", ErrUsername
	}
	for i := 0; i < len(username); i++ {
		c := username[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '-') {
			return "", ErrUsername
		}
	}
	return username, nil
}

// maxEmail bounds an address in bytes, as stored (RFC 5321's path limit
// less the angle brackets); maxLocal bounds its local part.
const (
	maxEmail = 254
	maxLocal = 64
)

// Email returns the normalised form of an email address, the one stored
// and compared (see the package documentation), or an error: a
// *CharError for a refused character, ErrEmail for a malformed address,
// ErrDomain or ErrMixed for its domain.
func Email(email string) (string, error) {
	if len(email) > 4*maxEmail || !utf8.ValidString(email) {
		return "", ErrEmail
	}
	for _, r := range email {
		if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Z) {
			return "", &CharError{Rune: r}
		}
	}
	s := norm.NFC.String(width.Fold.String(email))
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return "", ErrEmail
	}
	local, domain := strings.ToLower(s[:at]), s[at+1:]
	ascii, err := idna.Lookup.ToASCII(domain)
	if err != nil || !strings.Contains(ascii, ".") {
		return "", ErrDomain
	}
	// Check the Unicode form, so that an A-label sent as xn--… is held to
	// the same rule as the characters it encodes.
	uni, err := idna.Lookup.ToUnicode(ascii)
	if err != nil {
		return "", ErrDomain
	}
	for _, label := range strings.Split(uni, ".") {
		if mixedScripts(label) {
			return "", ErrMixed
		}
	}
	addr := local + "@" + ascii
	if len(addr) > maxEmail || len(local) > maxLocal || strings.HasPrefix(ascii, ".") || strings.HasSuffix(ascii, ".") || strings.Contains(ascii, "..") {
		return "", ErrEmail
	}
	a, err := mail.ParseAddress(addr)
	if err != nil || a.Address != addr || a.Name != "" {
		return "", ErrEmail
	}
	return addr, nil
}

// mixedScripts reports whether label's letters come from more than one
// script, beyond the combinations of UTS 39's "highly restrictive" level
// (Latin with Han and Hiragana/Katakana, with Han and Hangul, or with Han
// and Bopomofo).
func mixedScripts(label string) bool {
	seen := map[string]bool{}
	for _, r := range label {
		if r < utf8.RuneSelf || unicode.In(r, unicode.Common, unicode.Inherited) {
			if unicode.IsLetter(r) {
				seen["Latin"] = true
			}
			continue
		}
		for name, table := range unicode.Scripts {
			if unicode.Is(table, r) {
				seen[name] = true
				break
			}
		}
	}
	if len(seen) <= 1 {
		return false
	}
	for _, allowed := range [][]string{
		{"Latin", "Han", "Hiragana", "Katakana"},
		{"Latin", "Han", "Hangul"},
		{"Latin", "Han", "Bopomofo"},
	} {
		n := 0
		for _, s := range allowed {
			if seen[s] {
				n++
			}
		}
		if n == len(seen) {
			return false
		}
	}
	return true
}
