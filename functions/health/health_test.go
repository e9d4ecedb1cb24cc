package health

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/ratebill/platform/shared/config"
	"github.com/ratebill/platform/shared/instance"
	"github.com/ratebill/platform/shared/testenv"
)

func newInstance(t *testing.T, redisURL string) *instance.Instance {
	t.Helper()
	cfg, err := config.Load(func(k string) string {
		return map[string]string{"DATABASE_URL": testenv.DatabaseURL(t), "REDIS_URL": redisURL, "INIT_DB": "false"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	inst := instance.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { inst.Close(context.Background()) })
	return inst
}

func TestHealth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		redisURL   string
		wantStatus int
		wantRedis  string
	}{
		{"all up", testenv.RedisURL(t), 200, "ok"},
		{"redis down", "redis://127.0.0.1:1/0", 503, "down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHandler(newInstance(t, tt.redisURL))
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
	h := NewHandler(newInstance(t, "redis://127.0.0.1:1/0"))
	for path, want := range map[string]int{"/livez": 200, "/readyz": 503} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != want {
			t.Errorf("%s: %d, want %d", path, w.Code, want)
		}
	}
}
