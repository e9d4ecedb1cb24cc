package health

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ratebill/platform/shared/deps/depstest"
	"github.com/ratebill/platform/shared/testdb"
)

func newHandler(t *testing.T, redisURL string) http.Handler {
	t.Helper()
	h, err := Handler(depstest.New(t, map[string]string{"REDIS_URL": redisURL}))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHealth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		redisURL   string
		wantStatus int
		wantRedis  string
	}{
		{"all up", testdb.RedisURL(t), 200, "ok"},
		{"redis down", "redis://127.0.0.1:1/0", 503, "down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHandler(t, tt.redisURL)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", "/health", nil))
			var resp Response
			if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
				t.Fatal(err)
			}
			if w.Code != tt.wantStatus || resp.Checks["redis"].Status != tt.wantRedis || resp.Checks["postgres"].Status != "ok" {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if tt.wantStatus == 503 && (resp.Status != "unavailable" || w.Header().Get("Retry-After") == "") {
				t.Fatalf("503 body %s", w.Body)
			}
		})
	}
}

func TestProbes(t *testing.T) {
	t.Parallel()
	h := newHandler(t, "redis://127.0.0.1:1/0")
	for path, want := range map[string]int{"/livez": 200, "/readyz": 503} {
		t.Run(path, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
			if w.Code != want {
				t.Errorf("%s: %d, want %d", path, w.Code, want)
			}
		})
	}
}
