package instance

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestLazyMisconfigured: a function served without a valid configuration
// answers 503 problem+json with a request id, never panics, and does not
// build its handler.
func TestLazyMisconfigured(t *testing.T) {
	t.Setenv("API_RATE_LIMIT", "not-a-number")
	defaultMu.Lock()
	defaultInst = nil
	defaultMu.Unlock()
	built := false
	h := Lazy(func(*Instance) http.Handler { built = true; return http.NotFoundHandler() })
	rec := httptest.NewRecorder()
	h(rec, httptest.NewRequest("GET", "/usage", nil))
	var p map[string]any
	json.Unmarshal(rec.Body.Bytes(), &p)
	if rec.Code != 503 || rec.Header().Get("X-Request-Id") == "" || p["request_id"] != rec.Header().Get("X-Request-Id") || built {
		t.Fatalf("%d %v %s built=%v", rec.Code, rec.Header(), rec.Body, built)
	}
}
