package apikey

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
)

func TestGenerateIsValidAndUnique(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		k, err := Generate(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(k) != Len || !strings.HasPrefix(k, "sk_") {
			t.Fatalf("key %q: want %d characters starting sk_", k, Len)
		}
		if err := Validate(k); err != nil {
			t.Fatalf("Validate(%q) = %v", k, err)
		}
		if seen[k] {
			t.Fatalf("duplicate key %q", k)
		}
		seen[k] = true
	}
}

func TestGenerateDeterministicFromReader(t *testing.T) {
	t.Parallel()
	zero, err := Generate(bytes.NewReader(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	// 256 zero bits encode as 43 zeros; the checksum is CRC-32 of that text.
	if want := "sk_" + strings.Repeat("0", 43); !strings.HasPrefix(zero, want) {
		t.Fatalf("Generate(zeros) = %q, want prefix %q", zero, want)
	}
	max, err := Generate(bytes.NewReader(bytes.Repeat([]byte{0xff}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(max); err != nil {
		t.Fatalf("all-ones key %q invalid: %v", max, err)
	}
	if _, err := Generate(bytes.NewReader(make([]byte, 5))); err == nil {
		t.Fatal("Generate with a short reader: want error")
	}
}

func TestValidateRejects(t *testing.T) {
	t.Parallel()
	good, _ := Generate(rand.Reader)
	flip := func(i int) string {
		b := []byte(good)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	tests := []struct {
		name string
		key  string
	}{
		{"empty", ""},
		{"prefix only", "sk_"},
		{"truncated", good[:Len-1]},
		{"extra", good + "0"},
		{"wrong prefix", "pk_" + good[3:]},
		{"secret typo", flip(10)},
		{"checksum typo", flip(Len - 1)},
		{"non-base62", good[:20] + "-" + good[21:]},
		{"non-ascii", good[:20] + "é" + good[22:]},
		{"whitespace", " " + good[1:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Validate(tt.key); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Validate(%q) = %v, want ErrMalformed", tt.key, err)
			}
		})
	}
}

func TestHashAndDisplay(t *testing.T) {
	t.Parallel()
	a, _ := Generate(nil)
	b, _ := Generate(nil)
	if Hash(a) == Hash(b) {
		t.Fatal("different keys hash alike")
	}
	if Hash(a) != Hash(string([]byte(a))) {
		t.Fatal("hash not deterministic")
	}
	d := Display(a)
	if len(d) != 11 || !strings.HasPrefix(a, d) {
		t.Fatalf("Display(%q) = %q", a, d)
	}
	if Display("sk_") != "sk_" {
		t.Fatal("Display of a short string must not panic or grow")
	}
}

// FuzzValidate tries to get a key past the checksum: a valid key with one
// byte changed anywhere (prefix, body or checksum) must be refused, and no
// string of the wrong length or prefix is ever accepted.
func FuzzValidate(f *testing.F) {
	k, _ := Generate(nil)
	f.Add(k, uint(5), byte('A'))
	f.Add("sk_", uint(0), byte(0))
	f.Add(k, uint(len(k)-1), byte('0'))
	f.Fuzz(func(t *testing.T, s string, pos uint, b byte) {
		if Validate(s) == nil && (len(s) != Len || !strings.HasPrefix(s, Prefix)) {
			t.Fatalf("accepted %q", s)
		}
		mutated := []byte(k)
		i := int(pos % uint(len(mutated)))
		if mutated[i] == b {
			return
		}
		mutated[i] = b
		if Validate(string(mutated)) == nil {
			t.Fatalf("a one-byte change at %d (%q) passed the checksum: %q", i, b, mutated)
		}
	})
}

func BenchmarkValidateHash(b *testing.B) {
	k, _ := Generate(nil)
	b.ReportAllocs()
	for b.Loop() {
		if Validate(k) != nil {
			b.Fatal("invalid")
		}
		_ = Hash(k)
	}
}

func TestFormatPrefix(t *testing.T) {
	t.Parallel()
	op := Format{Prefix: "rbo_"}
	tok, err := op.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != op.Len() || tok[:4] != "rbo_" || op.Validate(tok) != nil {
		t.Fatalf("token %q does not validate", tok)
	}
	if Validate(tok) == nil {
		t.Fatal("an operator token passes as an API key")
	}
	key, _ := Generate(nil)
	if op.Validate(key) == nil {
		t.Fatal("an API key passes as an operator token")
	}
	// The checksum covers the secret: one changed character is refused.
	b := []byte(tok)
	if b[10] == 'a' {
		b[10] = 'b'
	} else {
		b[10] = 'a'
	}
	if op.Validate(string(b)) == nil {
		t.Fatal("a mistyped token validates")
	}
	if d := op.Display(tok); d != tok[:12] {
		t.Fatalf("Display %q", d)
	}
}
