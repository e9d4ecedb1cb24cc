package gate

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ratebill/platform/shared/ratelimit"
)

func TestRateLimitHeaders(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	res := ratelimit.Result{Limit: ratelimit.Limit{Requests: 1000, Window: 24 * time.Hour}, Allowed: false, Used: 1000,
		WindowStart: start, ResetAfter: 3599*time.Second + 100*time.Millisecond, RetryAfter: 3599*time.Second + 100*time.Millisecond}
	rec := httptest.NewRecorder()
	SetRateLimitHeaders(rec.Header(), "default", res)
	h := rec.Header()
	want := map[string]string{
		"RateLimit-Policy":      `"default";q=1000;w=86400`,
		"RateLimit":             `"default";r=0;t=3600`,
		"X-RateLimit-Limit":     "1000",
		"X-RateLimit-Remaining": "0",
		"X-RateLimit-Reset":     "1767312000",
		"Retry-After":           "3600",
	}
	for k, v := range want {
		if h.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, h.Get(k), v)
		}
	}
	res.Allowed, res.RetryAfter = true, 0
	rec = httptest.NewRecorder()
	SetRateLimitHeaders(rec.Header(), "default", res)
	if rec.Header().Get("Retry-After") != "" {
		t.Error("Retry-After on an admitted request")
	}
}

// The hot path writes header maps directly; every key it writes must be
// exactly what Header.Set would have stored, or Header.Get would miss it.
func TestRateLimitHeaderKeysAreCanonical(t *testing.T) {
	t.Parallel()
	res := ratelimit.Result{Limit: ratelimit.Limit{Requests: 10, Window: time.Minute}, Allowed: false, RetryAfter: time.Second}
	h := http.Header{}
	SetRateLimitHeaders(h, "default", res)
	if len(h) != 6 {
		t.Fatalf("%d headers written, want 6: %v", len(h), h)
	}
	for k := range h {
		if c := http.CanonicalHeaderKey(k); c != k {
			t.Errorf("%q is not canonical (%q)", k, c)
		}
	}
}
