package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ratebill/platform/shared/config"
	"github.com/ratebill/platform/shared/deps"
	"github.com/ratebill/platform/shared/routes"
)

var quiet = slog.New(slog.NewJSONHandler(io.Discard, nil))

func status(code int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) })
}

// healthHandlers are the health function's rows of the table (no
// authentication, so no gate is needed).
func healthHandlers() Handlers {
	return Handlers{"GET /health": status(204), "GET /docs": status(200), "GET /openapi.json": status(200)}
}

func TestRouterMethodsAndPaths(t *testing.T) {
	t.Parallel()
	h, err := Router(routes.Health, nil, healthHandlers(), Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, path string
		want         int
		allow        string
	}{
		{"GET", "/health", 204, ""},
		{"GET", "/", 204, ""}, // the Root alias
		{"GET", "/docs", 200, ""},
		{"HEAD", "/health", 405, "GET"},
		{"POST", "/health", 405, "GET"},
		{"GET", "/health/", 404, ""},
		{"GET", "/usage", 404, ""}, // another function's path
		{"GET", "/livez", 200, ""},
		{"GET", "/readyz", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.want || rec.Header().Get("Allow") != tt.allow || rec.Header().Get("X-Request-Id") == "" {
				t.Fatalf("%d Allow=%q, want %d Allow=%q", rec.Code, rec.Header().Get("Allow"), tt.want, tt.allow)
			}
			if tt.want >= 400 && rec.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("error as %q", rec.Header().Get("Content-Type"))
			}
		})
	}
}

func TestRouterRefusesDrift(t *testing.T) {
	t.Parallel()
	missing := healthHandlers()
	delete(missing, "GET /docs")
	extra := healthHandlers()
	extra["GET /status"] = status(200)
	tests := []struct {
		name     string
		handlers Handlers
		want     string
	}{
		{"row without handler", missing, "no handler for GET /docs"},
		{"handler without row", extra, `handler "GET /status"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Router(routes.Health, nil, tt.handlers, Options{Logger: quiet})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to name %q", err, tt.want)
			}
		})
	}
}

func TestLivezNamesTheProcess(t *testing.T) {
	t.Parallel()
	h, err := Router(routes.Health, nil, healthHandlers(), Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
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

// TestLazyMisconfigured: a function served through the framework without
// a valid configuration answers 503 problem+json with a request id, never
// panics, and does not build its handler.
func TestLazyMisconfigured(t *testing.T) {
	t.Setenv("API_RATE_LIMIT", "not-a-number")
	built := false
	h := Lazy(func(*deps.Deps) (http.Handler, error) { built = true; return http.NotFoundHandler(), nil })
	rec := httptest.NewRecorder()
	h(rec, httptest.NewRequest("GET", "/usage", nil))
	var p map[string]any
	json.Unmarshal(rec.Body.Bytes(), &p)
	if rec.Code != 503 || rec.Header().Get("X-Request-Id") == "" || p["request_id"] != rec.Header().Get("X-Request-Id") || built {
		t.Fatalf("%d %v %s built=%v", rec.Code, rec.Header(), rec.Body, built)
	}
}

// TestServeDrainsOnShutdown: when the context ends (SIGTERM), a request
// in flight finishes and is answered, new connections are refused, and
// the dependencies are closed only afterwards.
func TestServeDrainsOnShutdown(t *testing.T) {
	t.Parallel()
	cfg := config.Defaults()
	cfg.DatabaseURL, cfg.RedisURL = "postgres://nobody@127.0.0.1:1/none", "redis://127.0.0.1:1/0"
	d, err := deps.New(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		// The dependencies are still open while a request is in flight.
		if err := d.Store.Ping(r.Context()); err != nil && strings.Contains(err.Error(), "shutting down") {
			w.WriteHeader(500)
			return
		}
		w.WriteHeader(204)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, ln, NewServer(h, DefaultTimeouts), d) }()
	got := make(chan int, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			got <- 0
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	<-entered
	cancel() // SIGTERM
	select {
	case err := <-served:
		t.Fatalf("Serve returned with a request in flight: %v", err)
	case <-time.After(100 * time.Millisecond):
		// Still draining, as it must (this wait bounds the check, it
		// synchronises nothing).
	}
	close(release)
	if code := <-got; code != 204 {
		t.Fatalf("in-flight request answered %d, want 204", code)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if err := d.Store.Ping(context.Background()); err == nil || !strings.Contains(err.Error(), "shutting down") {
		t.Fatalf("dependencies not closed after the drain: %v", err)
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Fatal("the listener still accepts after shutdown")
	}
}

// fakeOperators records how each operator route was wrapped.
type fakeOperators struct{}

func (f fakeOperators) Require(h http.Handler, write bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Write", fmt.Sprint(write))
		h.ServeHTTP(w, r)
	})
}

// TestRouterPatterns: a path with variables reaches its handler with the
// value as r.PathValue, operator rows go through Options.Operators with
// write set for every method but GET, and near misses are 404 or 405.
func TestRouterPatterns(t *testing.T) {
	t.Parallel()
	handlers := Handlers{}
	for _, r := range routes.Table {
		if r.Function == routes.Users {
			handlers[r.Key()] = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				w.Header().Set("X-Id", req.PathValue("id"))
				w.WriteHeader(http.StatusOK)
			})
		}
	}
	if _, err := Router(routes.Users, nil, handlers, Options{Logger: quiet}); err == nil {
		t.Fatal("operator routes wired without Options.Operators")
	}
	h, err := Router(routes.Users, nil, handlers, Options{Logger: quiet, Operators: fakeOperators{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		method, path string
		status       int
		id, write    string
	}{
		{"POST", "/admin/users/42/suspend", 200, "42", "true"},
		{"GET", "/admin/users/7", 200, "7", "false"},
		{"GET", "/admin/users", 200, "", "false"},
		{"DELETE", "/admin/keys/abc", 200, "abc", "true"},
		{"PUT", "/admin/users/1/limit", 200, "1", "true"},
		{"GET", "/admin/users/42/suspend", 405, "", ""},
		{"POST", "/admin/users/42/other", 404, "", ""},
		{"GET", "/admin/users/42/", 404, "", ""},
		{"GET", "/admin/users//suspend", 404, "", ""},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, nil))
		if w.Code != tt.status || w.Header().Get("X-Id") != tt.id || w.Header().Get("X-Write") != tt.write {
			t.Errorf("%s %s: %d id=%q write=%q; want %d %q %q", tt.method, tt.path, w.Code, w.Header().Get("X-Id"), w.Header().Get("X-Write"), tt.status, tt.id, tt.write)
		}
	}
}
