package instance

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/ratebill/platform/shared/config"
)

func TestHandlerMethodsAndPaths(t *testing.T) {
	t.Parallel()
	i := New(config.Defaults(), nil)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	h := i.Handler(Routes{"/x": {http.MethodGet: ok, http.MethodPost: ok}})
	tests := []struct {
		method, path string
		want         int
		allow        string
	}{
		{"GET", "/x", 204, ""},
		{"POST", "/x", 204, ""},
		{"HEAD", "/x", 405, "GET, POST"},
		{"DELETE", "/x", 405, "GET, POST"},
		{"GET", "/x/", 404, ""},
		{"GET", "/livez", 200, ""},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		if rec.Code != tt.want || rec.Header().Get("Allow") != tt.allow || rec.Header().Get("X-Request-Id") == "" {
			t.Errorf("%s %s: %d Allow=%q, want %d Allow=%q", tt.method, tt.path, rec.Code, rec.Header().Get("Allow"), tt.want, tt.allow)
		}
	}
}

func TestLivezNamesTheProcess(t *testing.T) {
	t.Parallel()
	h := New(config.Defaults(), nil).Handler(Routes{})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/livez", nil))
	var body struct {
		Status string `json:"status"`
		PID    int    `json:"pid"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Status != "ok" || body.PID != os.Getpid() {
		t.Fatalf("/livez: %s (%v)", rec.Body, err)
	}
}
