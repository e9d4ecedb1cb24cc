package gateway

import (
	"encoding/json"
	"fmt"
	"github.com/ratebill/platform/shared/httpapi"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ratebill/platform/shared/routes"
)

// TestRoutesMatchTable: every row of the routing table reaches its
// function, and nothing else is routed.
func TestRoutesMatchTable(t *testing.T) {
	t.Parallel()
	backends := map[string]http.Handler{}
	for _, fn := range routes.Functions {
		backends[fn] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, fn) })
	}
	gw, err := New(backends)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes.Table {
		rec := httptest.NewRecorder()
		gw.ServeHTTP(rec, httptest.NewRequest(r.Method, r.Path, nil))
		if rec.Body.String() != r.Function {
			t.Errorf("%s %s reached %q, want %q", r.Method, r.Path, rec.Body.String(), r.Function)
		}
	}
	for _, p := range []string{"/", "/admin", "/users/1", "/usage/", "/me/"} {
		rec := httptest.NewRecorder()
		gw.ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
		var prob map[string]any
		json.Unmarshal(rec.Body.Bytes(), &prob)
		if rec.Code != 404 || rec.Header().Get("Content-Type") != "application/problem+json" || prob["status"] != float64(404) {
			t.Errorf("%s: %d %s %v, want 404 problem", p, rec.Code, rec.Header().Get("Content-Type"), prob)
		}
	}
	delete(backends, routes.Billing)
	if _, err := New(backends); err == nil {
		t.Fatal("a missing backend must be an error")
	}
}

func TestProxyRoundRobinAndForwarding(t *testing.T) {
	t.Parallel()
	hits := make([]int, 2)
	var xff []string
	var servers []string
	for i := range hits {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits[i]++
			xff = append(xff, r.Header.Get("X-Forwarded-For"))
		}))
		t.Cleanup(s.Close)
		servers = append(servers, s.URL)
	}
	p, err := Proxy(servers)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/usage", nil)
		req.RemoteAddr = "203.0.113.7:5555"
		p.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("status %d", rec.Code)
		}
	}
	if hits[0] != 5 || hits[1] != 5 {
		t.Fatalf("hits %v, want 5 and 5", hits)
	}
	if xff[0] != "203.0.113.7" {
		t.Fatalf("X-Forwarded-For %q", xff[0])
	}
	down, _ := Proxy([]string{"http://127.0.0.1:1"})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/usage", nil)
	req.Header.Set("X-Request-Id", "gateway-assigned-1")
	down.ServeHTTP(rec, req)
	if rec.Code != 503 || rec.Header().Get("Content-Type") != "application/problem+json" ||
		rec.Header().Get("X-Request-Id") != "gateway-assigned-1" || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("unreachable backend: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
}

func TestRequestIDs(t *testing.T) {
	t.Parallel()
	var seen string
	gw, err := New(map[string]http.Handler{
		routes.Users: http.NotFoundHandler(), routes.Billing: http.NotFoundHandler(), routes.Health: http.NotFoundHandler(),
		routes.Usage: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r.Header.Get("X-Request-Id") }),
	})
	if err != nil {
		t.Fatal(err)
	}
	// A client's id goes through unchanged, malformed or not (the
	// function refuses a malformed one; a replacement would bill a retry
	// twice); one is assigned only when none was sent.
	for _, id := range []string{"client-retry-0001", "", "abc", "has space in it"} {
		t.Run(fmt.Sprintf("%q", id), func(t *testing.T) {
			r := httptest.NewRequest("GET", "/usage", nil)
			if id != "" {
				r.Header.Set("X-Request-Id", id)
			}
			gw.ServeHTTP(httptest.NewRecorder(), r)
			if id != "" && seen != id || id == "" && !httpapi.ValidRequestID(seen) {
				t.Errorf("client id %q: function saw %q", id, seen)
			}
		})
	}
}
