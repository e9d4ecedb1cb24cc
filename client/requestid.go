package ratebill

import (
	"crypto/rand"
	"encoding/hex"
)

// ValidRequestID reports whether id follows the platform's request-id rule:
// 8 to 128 characters of A-Z a-z 0-9 . _ : - . The platform, its nginx
// gateway and Middleware refuse any other id with a 400
// invalid-request-id; none of them silently replaces it.
func ValidRequestID(id string) bool {
	if len(id) < 8 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// NewRequestID returns a fresh random request id: 32 hexadecimal digits,
// the shape nginx's $request_id has.
func NewRequestID() string {
	var b [16]byte
	// crypto/rand.Read never returns an error (Go 1.24 and later crash
	// the program instead); on older versions a failure leaves zeros,
	// which still form a valid id.
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
