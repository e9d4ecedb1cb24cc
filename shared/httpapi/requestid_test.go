package httpapi

import (
	"testing"
)

func TestValidRequestID(t *testing.T) {
	for id, want := range map[string]bool{
		"abcdefgh": true, "0190a8e2-7c3b-7000-8000-000000000000": true, "A.b_c:d-9": true,
		"short": false, "": false, "has space": false, "bad/slash1": false, "ünicode-id": false,
		string(make([]byte, 129)): false,
	} {
		if got := ValidRequestID(id); got != want {
			t.Errorf("ValidRequestID(%q) = %v, want %v", id, got, want)
		}
	}
	long := make([]byte, 128)
	for i := range long {
		long[i] = 'a'
	}
	if !ValidRequestID(string(long)) {
		t.Error("128 characters must be valid")
	}
}
