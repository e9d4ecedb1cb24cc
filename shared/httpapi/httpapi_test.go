package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ratebill/platform/shared"
)

func TestErrorMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err        error
		wantStatus int
		wantDetail string
	}{
		{shared.Errorf(shared.EInvalid, "bad"), 422, "bad"},
		{shared.Errorf(shared.EConflict, "taken"), 409, "taken"},
		{shared.Errorf(shared.EUnauthorized, "who"), 401, "who"},
		{shared.Unavailable("redis", errors.New("dial tcp 10.1.2.3:6379: refused")), 503, "redis is unavailable; retry later"},
		{errors.New("secret internals"), 500, "internal error; quote the request id when reporting it"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.err), func(t *testing.T) {
			rec := httptest.NewRecorder()
			Error(rec, httptest.NewRequest("GET", "/x", nil), tt.err)
			var p Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
			if rec.Code != tt.wantStatus || p.Status != tt.wantStatus || p.Detail != tt.wantDetail || rec.Header().Get("Content-Type") != "application/problem+json" {
				t.Errorf("%v: %d %+v", tt.err, rec.Code, p)
			}
			if strings.Contains(rec.Body.String(), "10.1.2.3") || strings.Contains(rec.Body.String(), "secret") {
				t.Errorf("internals leaked: %s", rec.Body)
			}
		})
	}
}

func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	type body struct {
		Name string `json:"name"`
	}
	tests := []struct {
		name, ct, body string
		wantCode       shared.Code
	}{
		{"ok", "application/json", `{"name":"a"}`, ""},
		{"ok charset", "application/json; charset=utf-8", `{"name":"a"}`, ""},
		{"latin1", "application/json; charset=latin1", `{"name":"a"}`, shared.EUnsupportedMedia},
		{"no type", "", `{"name":"a"}`, shared.EUnsupportedMedia},
		{"text", "text/plain", `{"name":"a"}`, shared.EUnsupportedMedia},
		{"empty", "application/json", ``, shared.EMalformed},
		{"syntax", "application/json", `{"name":}`, shared.EMalformed},
		{"truncated", "application/json", `{"name":"a"`, shared.EMalformed},
		{"array", "application/json", `[1]`, shared.EMalformed},
		{"trailing", "application/json", `{"name":"a"} x`, shared.EMalformed},
		{"unknown field", "application/json", `{"nom":"a"}`, shared.EInvalid},
		{"wrong type", "application/json", `{"name":1}`, shared.EInvalid},
		{"too large", "application/json", `{"name":"` + strings.Repeat("a", 200) + `"}`, shared.ETooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tt.body))
			if tt.ct != "" {
				r.Header.Set("Content-Type", tt.ct)
			}
			var b body
			err := DecodeJSON(httptest.NewRecorder(), r, 100, &b)
			if shared.ErrorCode(err) != tt.wantCode {
				t.Fatalf("err = %v, want code %q", err, tt.wantCode)
			}
		})
	}
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, xff, remote string
		hops              int
		want              string
	}{
		{"direct", "", "192.0.2.1:1234", 0, "192.0.2.1"},
		{"xff ignored without trusted proxies", "198.51.100.9", "192.0.2.1:1234", 0, "192.0.2.1"},
		{"one proxy", "198.51.100.9", "10.0.0.1:80", 1, "198.51.100.9"},
		{"spoofed left entries ignored", "6.6.6.6, 198.51.100.9", "10.0.0.1:80", 1, "198.51.100.9"},
		{"load balancer: client then lb", "6.6.6.6, 198.51.100.9, 34.1.2.3", "169.254.1.1:80", 2, "198.51.100.9"},
		{"too few entries: peer", "198.51.100.9", "10.0.0.1:80", 2, "10.0.0.1"},
		{"garbage entry: peer", "nonsense", "10.0.0.1:80", 1, "10.0.0.1"},
		{"ipv6", "2001:db8::1", "[::1]:80", 1, "2001:db8::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			if tt.xff != "" {
				r.Header.Set("X-Forwarded-For", tt.xff)
			}
			if got := ClientIP(r, ClientAddr{Hops: tt.hops}); got != tt.want {
				t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
			}
		})
	}
}

// TestClientIPHeader: the load balancer's own header (CLIENT_IP_HEADER)
// wins over X-Forwarded-For, its right-most value counts (a client
// cannot plant an address in front of the one the proxy appends), and
// an absent or invalid value falls back to the hops rule.
func TestClientIPHeader(t *testing.T) {
	t.Parallel()
	const h = "X-Ratebill-Client-Ip"
	tests := []struct {
		name, header, xff, want string
	}{
		{"header wins", "198.51.100.7", "6.6.6.6, 34.1.2.3", "198.51.100.7"},
		{"appended after a planted value", "6.6.6.6, 198.51.100.7", "", "198.51.100.7"},
		{"ipv6", "2001:db8::7", "", "2001:db8::7"},
		{"absent: hops", "", "198.51.100.9, 34.1.2.3", "198.51.100.9"},
		{"garbage: hops", "not-an-ip", "198.51.100.9, 34.1.2.3", "198.51.100.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = "169.254.1.1:80"
			if tt.header != "" {
				r.Header.Set(h, tt.header)
			}
			if tt.xff != "" {
				r.Header.Set("X-Forwarded-For", tt.xff)
			}
			if got := ClientIP(r, ClientAddr{Header: h, Hops: 2}); got != tt.want {
				t.Fatalf("%q, want %q", got, tt.want)
			}
		})
	}
}

func TestMiddlewareLogsAndIDs(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := NewLogger(&buf, slog.LevelInfo)
	h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic("boom")
		}
		w.WriteHeader(204)
	}), logger, "proj")

	rec := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/ok?x=1", nil)
	r.Header.Set("X-Request-Id", "client-id-123")
	r.Header.Set("X-Cloud-Trace-Context", "4bf92f3577b34da6a3ce929d0e0e4736/1;o=1")
	r.Header.Set("X-API-Key", "sk_secret_value")
	h.ServeHTTP(rec, r)
	if rec.Header().Get("X-Request-Id") != "client-id-123" {
		t.Fatalf("request id %q", rec.Header().Get("X-Request-Id"))
	}
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log line is not JSON: %v: %s", err, buf.String())
	}
	hr, _ := line["httpRequest"].(map[string]any)
	if line["severity"] != "INFO" || line["message"] == nil || line["logging.googleapis.com/trace"] != "projects/proj/traces/4bf92f3577b34da6a3ce929d0e0e4736" ||
		hr["status"] != float64(204) || hr["requestMethod"] != "GET" || !strings.HasSuffix(hr["latency"].(string), "s") {
		t.Fatalf("log line %v", line)
	}
	if strings.Contains(buf.String(), "sk_secret_value") {
		t.Fatal("the API key was logged")
	}

	buf.Reset()
	rec = httptest.NewRecorder()
	r = httptest.NewRequest("GET", "/panic", nil)
	h.ServeHTTP(rec, r)
	if rec.Code != 500 || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("panic: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	var p Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.RequestID != rec.Header().Get("X-Request-Id") || p.Type != ProblemType(shared.EInternal) || p.Instance != "/panic" {
		t.Fatalf("panic problem %+v (%v)", p, err)
	}
	if id := rec.Header().Get("X-Request-Id"); len(id) != 36 {
		t.Fatalf("assigned id %q", id)
	}
	if !strings.Contains(buf.String(), `"severity":"ERROR"`) {
		t.Fatalf("panic not logged as ERROR: %s", buf.String())
	}
}

// TestMalformedRequestIDIsNoted: a client's malformed X-Request-Id is
// reported (MalformedRequestID) for metered routes to refuse, and replaced
// by an id of our own for the answer and the logs.
func TestMalformedRequestIDIsNoted(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		id        string
		malformed bool
	}{{"bad id with spaces", true}, {"short", true}, {strings.Repeat("a", 129), true}, {"ünicode-id-1", true}, {"good-id-0001", false}, {"", false}} {
		t.Run(fmt.Sprintf("%.12q", tt.id), func(t *testing.T) {
			var got bool
			var seen string
			h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got, seen = MalformedRequestID(r.Context()), RequestID(r.Context())
			}), slog.New(slog.NewJSONHandler(io.Discard, nil)), "")
			r := httptest.NewRequest("GET", "/usage", nil)
			if tt.id != "" {
				r.Header.Set("X-Request-Id", tt.id)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if got != tt.malformed || !ValidRequestID(seen) || (tt.malformed && seen == tt.id) || (!tt.malformed && tt.id != "" && seen != tt.id) {
				t.Fatalf("malformed=%v id=%q", got, seen)
			}
		})
	}
}
