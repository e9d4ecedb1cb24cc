// Package apikey defines the format of API keys: generation, validation
// before any I/O, hashing for storage, and the short display prefix.
//
// A key is "sk_" followed by 43 base62 characters that encode 256 random
// bits and 6 base62 characters of CRC-32 checksum over those 43 characters:
//
//	sk_4Xc0…(43)…Qz  kP2s9a
//	   └ secret ┘    └ checksum
//
// The checksum lets a mistyped or truncated key be rejected without a
// database lookup (the idea of GitHub's token format); it is not a secret
// and adds no security. Base62 keeps the key one word for double-click
// selection. Only Hash(key) is stored, never the key.
//
// Other credentials share the format under their own prefix (a Format):
// operator tokens are "rbo_…" (package operator), so a token and a key
// can never be mistaken for each other, and each is checked before I/O.
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"hash/crc32"
	"io"
	"math/big"
)

const (
	// Prefix starts every key.
	Prefix = "sk_"
	// secretLen is the number of base62 characters encoding 32 random bytes
	// (62^43 > 2^256).
	secretLen = 43
	// checksumLen is the number of base62 characters encoding a CRC-32.
	checksumLen = 6
	// Len is the length of every key.
	Len = len(Prefix) + secretLen + checksumLen
	// displayLen is how many secret characters the display prefix shows.
	displayLen = 8
)

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// ErrMalformed reports a string that is not a well-formed key: wrong
// length, prefix, characters or checksum.
var ErrMalformed = errors.New("apikey: malformed key")

// Digest is the SHA-256 of a key, the only form in which keys are stored.
type Digest [sha256.Size]byte

// Format is a credential format: Prefix, 43 base62 characters of secret
// and 6 of CRC-32 checksum. The package functions are Format{Prefix}'s.
type Format struct {
	Prefix string // e.g. "sk_"; ASCII, not a base62 character at its end
}

// Len is the length of every credential of f.
func (f Format) Len() int { return len(f.Prefix) + secretLen + checksumLen }

// Generate returns a new key with 256 bits of randomness from r
// (crypto/rand.Reader when r is nil).
func Generate(r io.Reader) (string, error) { return Format{Prefix}.Generate(r) }

// Validate reports ErrMalformed unless key is well formed with a correct
// checksum. It does no I/O and allocates nothing.
func Validate(key string) error { return Format{Prefix}.Validate(key) }

// Display returns the part of a key that may be shown and stored in
// clear: the prefix and the first 8 secret characters (about 48 bits,
// enough to tell keys apart, far too few to guess the rest).
func Display(key string) string { return Format{Prefix}.Display(key) }

// Generate returns a new credential of f with 256 bits of randomness
// from r (crypto/rand.Reader when r is nil).
func (f Format) Generate(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [32]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", err
	}
	secret := encode(new(big.Int).SetBytes(b[:]), secretLen)
	sum := encode(new(big.Int).SetUint64(uint64(crc32.ChecksumIEEE([]byte(secret)))), checksumLen)
	return f.Prefix + secret + sum, nil
}

// Validate reports ErrMalformed unless key is a well-formed credential of
// f with a correct checksum. It does no I/O and allocates nothing.
func (f Format) Validate(key string) error {
	if len(key) != f.Len() || key[:len(f.Prefix)] != f.Prefix {
		return ErrMalformed
	}
	body := key[len(f.Prefix):]
	for i := 0; i < len(body); i++ {
		if digit(body[i]) < 0 {
			return ErrMalformed
		}
	}
	secret, sum := body[:secretLen], body[secretLen:]
	var want uint64
	for i := 0; i < len(sum); i++ {
		want = want*62 + uint64(digit(sum[i]))
	}
	if want != uint64(crc32.ChecksumIEEE([]byte(secret))) {
		return ErrMalformed
	}
	return nil
}

// Hash returns the digest stored for key.
func Hash(key string) Digest { return sha256.Sum256([]byte(key)) }

// Display returns the prefix and the first 8 secret characters of a
// credential of f, the part that may be shown and stored in clear.
func (f Format) Display(key string) string {
	n := len(f.Prefix) + displayLen
	if len(key) < n {
		return key
	}
	return key[:n]
}

func encode(n *big.Int, width int) string {
	out := make([]byte, width)
	base := big.NewInt(62)
	rem := new(big.Int)
	for i := width - 1; i >= 0; i-- {
		n.QuoRem(n, base, rem)
		out[i] = alphabet[rem.Int64()]
	}
	return string(out)
}

func digit(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'Z':
		return int(c-'A') + 10
	case 'a' <= c && c <= 'z':
		return int(c-'a') + 36
	}
	return -1
}
