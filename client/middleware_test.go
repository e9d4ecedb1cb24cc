package ratebill_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ratebill "github.com/ratebill/platform/client"
)

// quietLogger keeps expected warnings out of the test output.
var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// upstream is the protected handler of the tests: it counts calls,
// records what the middleware put in the context and answers status.
type upstream struct {
	calls  atomic.Int64
	status int
	result atomic.Pointer[ratebill.VerifyResult]
	reqID  atomic.Value // X-Request-Id the handler saw
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.calls.Add(1)
	if res, ok := ratebill.FromContext(r.Context()); ok {
		u.result.Store(res)
	}
	u.reqID.Store(r.Header.Get("X-Request-Id"))
	status := u.status
	if status == 0 {
		status = http.StatusOK
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, `{"ok":true}`+"\n")
}

// setup is the bundle most tests start from: a fake platform, a
// protected upstream and the middleware between them.
type setup struct {
	platform *fakePlatform
	up       *upstream
	handler  http.Handler
}

func newSetup(t *testing.T, o ratebill.MiddlewareOptions, clientOpts ...ratebill.Option) *setup {
	t.Helper()
	s := &setup{platform: newFakePlatform(t), up: &upstream{}}
	if o.Logger == nil {
		o.Logger = quietLogger
	}
	s.handler = ratebill.Middleware(s.platform.client(t, clientOpts...), o)(s.up)
	return s
}

// do serves one request through the middleware. ServeHTTP returns only
// when the middleware has, so counts read afterwards are final.
func (s *setup) do(method, path string, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	s.handler.ServeHTTP(w, r)
	return w
}

type problemBody struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Instance  string `json:"instance"`
	RequestID string `json:"request_id"`
}

func decodeProblem(t *testing.T, w *httptest.ResponseRecorder) problemBody {
	t.Helper()
	var p problemBody
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json; body %s", ct, w.Body)
	}
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatalf("problem body %s: %v", w.Body, err)
	}
	if p.Status != w.Code || p.Title != http.StatusText(w.Code) {
		t.Errorf("problem %+v on a %d answer", p, w.Code)
	}
	return p
}

// TestMiddlewareMapsEveryCode sends one request per key the fake platform
// knows and checks the status, problem type, headers and whether the
// upstream ran.
func TestMiddlewareMapsEveryCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key        string
		wantStatus int
		wantType   string // "" for an admitted call
		wantHeader map[string]string
		wantLimits bool // rate-limit headers copied
	}{
		{key: keyValid, wantStatus: 200, wantLimits: true},
		{key: keyNewValid, wantStatus: 200, wantLimits: true},
		{key: keyMalformed, wantStatus: 401, wantType: "malformed-key", wantHeader: map[string]string{"WWW-Authenticate": `ApiKey header="X-API-Key"`}},
		{key: keyUnknown, wantStatus: 401, wantType: "not-found", wantHeader: map[string]string{"WWW-Authenticate": `ApiKey header="X-API-Key"`}},
		{key: keyRevoked, wantStatus: 401, wantType: "revoked", wantHeader: map[string]string{"WWW-Authenticate": `ApiKey header="X-API-Key"`}, wantLimits: true},
		{key: keyExpired, wantStatus: 401, wantType: "expired", wantHeader: map[string]string{"WWW-Authenticate": `ApiKey header="X-API-Key"`}, wantLimits: true},
		{key: keySuspended, wantStatus: 403, wantType: "suspended", wantLimits: true},
		{key: keyLimited, wantStatus: 429, wantType: "rate-limited", wantHeader: map[string]string{"Retry-After": "30", "X-RateLimit-Remaining": "0"}, wantLimits: true},
		{key: keySpendCap, wantStatus: 402, wantType: "spend-cap-exceeded", wantLimits: true},
		{key: keyNewCode, wantStatus: 403, wantType: "quota-frozen", wantLimits: true},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t, ratebill.MiddlewareOptions{})
			w := s.do("GET", "/v1/forecast?city=Berlin", map[string]string{"X-API-Key": tt.key, "X-Request-Id": "req-" + tt.key})
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", w.Code, tt.wantStatus, w.Body)
			}
			if n := s.platform.verifies.Load(); n != 1 {
				t.Errorf("%d /verify calls, want 1", n)
			}
			if got := w.Header().Get("X-Request-Id"); got != "req-"+tt.key {
				t.Errorf("X-Request-Id %q, want the client's", got)
			}
			for k, v := range tt.wantHeader {
				if got := w.Header().Values(k); len(got) != 1 || got[0] != v {
					t.Errorf("%s: %q, want %q once", k, got, v)
				}
			}
			for _, h := range []string{"RateLimit-Policy", "RateLimit", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
				if got := w.Header().Get(h) != ""; got != tt.wantLimits {
					t.Errorf("header %s present = %v, want %v", h, got, tt.wantLimits)
				}
			}
			if w.Header().Get("X-Unrelated") != "" {
				t.Error("a platform header that is not a rate-limit header reached the client")
			}
			if tt.wantType == "" {
				if s.up.calls.Load() != 1 || w.Body.String() != `{"ok":true}`+"\n" {
					t.Errorf("upstream calls %d, body %s; want the upstream's answer", s.up.calls.Load(), w.Body)
				}
				if w.Header().Get("Retry-After") != "" || w.Header().Get("Idempotent-Replayed") != "" {
					t.Errorf("admitted call with Retry-After %q, Idempotent-Replayed %q", w.Header().Get("Retry-After"), w.Header().Get("Idempotent-Replayed"))
				}
				return
			}
			if n := s.up.calls.Load(); n != 0 {
				t.Errorf("a denied call reached the upstream %d times", n)
			}
			p := decodeProblem(t, w)
			if p.Type != "urn:problem-type:ratebill:"+tt.wantType || p.RequestID != "req-"+tt.key || p.Instance != "/v1/forecast" || p.Detail == "" {
				t.Errorf("problem %+v; want type %s, the request id and the path", p, tt.wantType)
			}
			if w.Header().Get("Cache-Control") != "no-store" {
				t.Error("denial without Cache-Control: no-store")
			}
		})
	}
}

// TestMiddlewareReleasesFailedCalls checks that an upstream 5xx (or panic)
// releases the call exactly once before the middleware returns, that
// nothing else does, and that KeepOnUpstream5xx keeps it.
func TestMiddlewareReleasesFailedCalls(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status      int
		keep        bool
		wantRelease int64
	}{
		{status: 200}, {status: 201}, {status: 204}, {status: 304}, {status: 400}, {status: 404}, {status: 429},
		{status: 500, wantRelease: 1}, {status: 502, wantRelease: 1}, {status: 503, wantRelease: 1}, {status: 504, wantRelease: 1},
		{status: 500, keep: true}, {status: 502, keep: true},
	}
	for _, tt := range tests {
		name := http.StatusText(tt.status)
		if tt.keep {
			name += " kept"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t, ratebill.MiddlewareOptions{KeepOnUpstream5xx: tt.keep})
			s.up.status = tt.status
			w := s.do("GET", "/v1/flaky", map[string]string{"X-API-Key": keyValid})
			if w.Code != tt.status || s.up.calls.Load() != 1 {
				t.Fatalf("status %d after %d upstream calls, want the upstream's %d", w.Code, s.up.calls.Load(), tt.status)
			}
			// Read right after ServeHTTP returned: the release must
			// already have happened.
			if n := s.platform.releases.Load(); n != tt.wantRelease {
				t.Errorf("%d releases, want %d", n, tt.wantRelease)
			}
		})
	}
}

func TestMiddlewareReleasesOnPanic(t *testing.T) {
	t.Parallel()
	platform := newFakePlatform(t)
	h := ratebill.Middleware(platform.client(t), ratebill.MiddlewareOptions{Logger: quietLogger})(
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-API-Key", keyValid)
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %v, want the handler's panic to go on", p)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), r)
	}()
	if n := platform.releases.Load(); n != 1 {
		t.Errorf("%d releases after a panic, want 1", n)
	}
}

// TestMiddlewareReleaseFailureIsLogged: the answer is out already, so a
// failed release is logged (without the key), and the upstream's status
// stays.
func TestMiddlewareReleaseFailureIsLogged(t *testing.T) {
	t.Parallel()
	platform := newFakePlatform(t)
	var log lockedBuffer
	h := ratebill.Middleware(platform.client(t), ratebill.MiddlewareOptions{Logger: slog.New(slog.NewTextHandler(&log, nil))})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// The platform forgets the token: release answers 404.
			platform.set(func(f *fakePlatform) { f.tokens = map[string]bool{} })
			w.WriteHeader(http.StatusInternalServerError)
		}))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-API-Key", keyValid)
	r.Header.Set("X-Request-Id", "req-release-fails")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 500 || platform.releases.Load() != 1 {
		t.Fatalf("status %d, %d releases; want the upstream's 500 and one release", w.Code, platform.releases.Load())
	}
	out := log.String()
	if !strings.Contains(out, "releasing a failed call") || !strings.Contains(out, "req-release-fails") || !strings.Contains(out, "404") {
		t.Errorf("log %q; want the failed release with the request id and status", out)
	}
	if strings.Contains(out, keyValid) {
		t.Error("the log contains the API key")
	}
}

// lockedBuffer is a strings.Builder safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestMiddlewareRequestIDs: a client id is passed on unchanged, a missing
// one is created, a bad one is refused before the platform is called.
func TestMiddlewareRequestIDs(t *testing.T) {
	t.Parallel()
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	t.Run("missing id is created", func(t *testing.T) {
		t.Parallel()
		s := newSetup(t, ratebill.MiddlewareOptions{})
		w := s.do("GET", "/", map[string]string{"X-API-Key": keyValid})
		id := w.Header().Get("X-Request-Id")
		if !hex32.MatchString(id) {
			t.Fatalf("X-Request-Id %q, want 32 hex digits", id)
		}
		if got := s.platform.lastRequest().RequestID; got != id {
			t.Errorf("platform got request_id %q, client %q", got, id)
		}
		if got := s.up.reqID.Load(); got != id {
			t.Errorf("handler saw X-Request-Id %q, client %q", got, id)
		}
		w2 := s.do("GET", "/", map[string]string{"X-API-Key": keyValid})
		if id2 := w2.Header().Get("X-Request-Id"); id2 == id || w2.Header().Get("Idempotent-Replayed") != "" {
			t.Errorf("second request got id %q (first %q), replayed %q; want a fresh id", id2, id, w2.Header().Get("Idempotent-Replayed"))
		}
	})
	t.Run("client id is kept", func(t *testing.T) {
		t.Parallel()
		for _, id := range []string{"abcdefgh", strings.Repeat("Z", 128), "order:42.retry_1-x"} {
			s := newSetup(t, ratebill.MiddlewareOptions{})
			w := s.do("GET", "/", map[string]string{"X-API-Key": keyValid, "X-Request-Id": id})
			if w.Code != 200 || w.Header().Get("X-Request-Id") != id || s.platform.lastRequest().RequestID != id || s.up.reqID.Load() != id {
				t.Errorf("id %q: status %d, response %q, platform %q, handler %q", id, w.Code,
					w.Header().Get("X-Request-Id"), s.platform.lastRequest().RequestID, s.up.reqID.Load())
			}
		}
	})
	for _, bad := range [][]string{
		{"short"}, {"1234567"}, {strings.Repeat("a", 129)}, {"has spaces in it"}, {"semi;colon-id"},
		{"quote\"injection"}, {"ünïcödé-id"}, {"new\nline-header"}, {"abcdefgh", "second-value"},
		{strings.Repeat("x", 64<<10)},
	} {
		name := bad[0]
		if len(name) > 20 {
			name = name[:20]
		}
		t.Run("refused "+name, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t, ratebill.MiddlewareOptions{})
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("X-API-Key", keyValid)
			r.Header["X-Request-Id"] = bad
			w := httptest.NewRecorder()
			s.handler.ServeHTTP(w, r)
			if w.Code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", w.Code)
			}
			if p := decodeProblem(t, w); p.Type != "urn:problem-type:ratebill:invalid-request-id" || p.RequestID != "" {
				t.Errorf("problem %+v; want invalid-request-id without echoing the id", p)
			}
			if w.Header().Get("X-Request-Id") != "" {
				t.Errorf("a refused id was echoed: %q", w.Header().Get("X-Request-Id"))
			}
			if s.platform.verifies.Load() != 0 || s.up.calls.Load() != 0 {
				t.Errorf("%d platform calls, %d upstream calls; want none", s.platform.verifies.Load(), s.up.calls.Load())
			}
		})
	}
}

// TestMiddlewareRefusesKeysLocally: a missing or absurdly long key is a
// 401 without a platform call.
func TestMiddlewareRefusesKeysLocally(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, header, key, wantType string
		o                           ratebill.MiddlewareOptions
	}{
		{name: "missing", header: "X-API-Key", wantType: "missing-key"},
		{name: "empty", header: "X-API-Key", key: "", wantType: "missing-key"},
		{name: "huge", header: "X-API-Key", key: strings.Repeat("k", 1<<20), wantType: "malformed-key"},
		{name: "in another header", header: "X-API-Key", key: keyValid, wantType: "missing-key", o: ratebill.MiddlewareOptions{KeyHeader: "Api-Token"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t, tt.o)
			hdr := map[string]string{}
			if tt.key != "" {
				hdr[tt.header] = tt.key
			}
			w := s.do("POST", "/v1/forecast/batch", hdr)
			if w.Code != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", w.Code)
			}
			want := `ApiKey header="X-API-Key"`
			if tt.o.KeyHeader != "" {
				want = `ApiKey header="` + tt.o.KeyHeader + `"`
			}
			if got := w.Header().Get("WWW-Authenticate"); got != want {
				t.Errorf("WWW-Authenticate %q, want %q", got, want)
			}
			if p := decodeProblem(t, w); p.Type != "urn:problem-type:ratebill:"+tt.wantType {
				t.Errorf("type %s, want %s", p.Type, tt.wantType)
			}
			if s.platform.verifies.Load() != 0 || s.up.calls.Load() != 0 {
				t.Errorf("%d platform calls, %d upstream calls; want none", s.platform.verifies.Load(), s.up.calls.Load())
			}
		})
	}
	t.Run("custom header is read", func(t *testing.T) {
		t.Parallel()
		s := newSetup(t, ratebill.MiddlewareOptions{KeyHeader: "Api-Token"})
		if w := s.do("GET", "/", map[string]string{"Api-Token": keyValid}); w.Code != 200 || s.platform.lastRequest().Key != keyValid {
			t.Errorf("status %d, platform saw key %q", w.Code, s.platform.lastRequest().Key)
		}
	})
}

// TestMiddlewareUnavailable: fail closed by default (503 + Retry-After,
// upstream not called), fail open on request, for every way the platform
// can be unavailable.
func TestMiddlewareUnavailable(t *testing.T) {
	t.Parallel()
	breaks := []struct {
		name  string
		apply func(t *testing.T, s *setup)
	}{
		{"503", func(t *testing.T, s *setup) { s.platform.set(func(f *fakePlatform) { f.status = 503 }) }},
		{"500", func(t *testing.T, s *setup) { s.platform.set(func(f *fakePlatform) { f.status = 500 }) }},
		{"down", func(t *testing.T, s *setup) { s.platform.srv.Close() }},
		{"slow", func(t *testing.T, s *setup) { s.platform.set(func(f *fakePlatform) { f.delay = 3 * time.Second }) }},
	}
	for _, b := range breaks {
		for _, failOpen := range []bool{false, true} {
			name := b.name + " fail closed"
			if failOpen {
				name = b.name + " fail open"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				s := newSetup(t, ratebill.MiddlewareOptions{FailOpen: failOpen, Timeout: 100 * time.Millisecond})
				b.apply(t, s)
				start := time.Now()
				w := s.do("GET", "/v1/forecast", map[string]string{"X-API-Key": keyValid, "X-Request-Id": "req-unavailable"})
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("took %v; want the middleware's timeout to bound it", d)
				}
				if failOpen {
					res := s.up.result.Load()
					if w.Code != 200 || s.up.calls.Load() != 1 || res == nil || !res.Unverified || res.Valid || res.RequestID != "req-unavailable" {
						t.Errorf("fail open: status %d, %d upstream calls, result %+v; want served, Unverified", w.Code, s.up.calls.Load(), res)
					}
					return
				}
				if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
					t.Fatalf("status %d, Retry-After %q; want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
				}
				if p := decodeProblem(t, w); p.Type != "urn:problem-type:ratebill:service-unavailable" || p.RequestID != "req-unavailable" {
					t.Errorf("problem %+v", p)
				}
				if s.up.calls.Load() != 0 {
					t.Error("fail closed served the upstream")
				}
			})
		}
	}
	t.Run("client timeout without a middleware timeout", func(t *testing.T) {
		t.Parallel()
		s := newSetup(t, ratebill.MiddlewareOptions{}, ratebill.WithTimeout(50*time.Millisecond))
		s.platform.set(func(f *fakePlatform) { f.delay = 3 * time.Second })
		if w := s.do("GET", "/", map[string]string{"X-API-Key": keyValid}); w.Code != http.StatusServiceUnavailable || s.up.calls.Load() != 0 {
			t.Errorf("status %d, %d upstream calls; want 503 and none", w.Code, s.up.calls.Load())
		}
	})
}

// TestMiddlewarePlatformRefusals: 4xx answers of /verify are never
// "unavailable", so FailOpen does not serve them.
func TestMiddlewarePlatformRefusals(t *testing.T) {
	t.Parallel()
	t.Run("request id reused with another cost is 409", func(t *testing.T) {
		t.Parallel()
		cost := int64(1)
		s := newSetup(t, ratebill.MiddlewareOptions{FailOpen: true, Cost: func(*http.Request) int64 { return cost }})
		hdr := map[string]string{"X-API-Key": keyValid, "X-Request-Id": "req-conflict"}
		if w := s.do("GET", "/", hdr); w.Code != 200 {
			t.Fatalf("first call: %d", w.Code)
		}
		cost = 5
		w := s.do("GET", "/", hdr)
		if w.Code != http.StatusConflict || s.up.calls.Load() != 1 {
			t.Fatalf("status %d after %d upstream calls; want 409 and the upstream called once", w.Code, s.up.calls.Load())
		}
		if p := decodeProblem(t, w); p.Type != "urn:problem-type:ratebill:request-id-conflict" {
			t.Errorf("type %s, want the platform's request-id-conflict", p.Type)
		}
	})
	t.Run("unexpected 4xx is 500", func(t *testing.T) {
		t.Parallel()
		s := newSetup(t, ratebill.MiddlewareOptions{FailOpen: true})
		s.platform.set(func(f *fakePlatform) { f.status = http.StatusNotFound })
		w := s.do("GET", "/", map[string]string{"X-API-Key": keyValid})
		if w.Code != http.StatusInternalServerError || s.up.calls.Load() != 0 {
			t.Errorf("status %d, %d upstream calls; want 500 and none", w.Code, s.up.calls.Load())
		}
	})
}

// TestMiddlewareReplay: the platform's bounded replay serves again,
// marked, without a second charge; past the bound it is a 409.
func TestMiddlewareReplay(t *testing.T) {
	t.Parallel()
	s := newSetup(t, ratebill.MiddlewareOptions{})
	hdr := map[string]string{"X-API-Key": keyValid, "X-Request-Id": "req-replayed-1"}
	if w := s.do("GET", "/", hdr); w.Code != 200 || w.Header().Get("Idempotent-Replayed") != "" {
		t.Fatalf("first call: %d, Idempotent-Replayed %q", w.Code, w.Header().Get("Idempotent-Replayed"))
	}
	for i := 1; i <= 3; i++ {
		w := s.do("GET", "/", hdr)
		res := s.up.result.Load()
		if w.Code != 200 || w.Header().Get("Idempotent-Replayed") != "true" || !res.Replayed || res.Cost != 0 {
			t.Errorf("replay %d: %d, Idempotent-Replayed %q, result %+v; want served again, marked, free", i, w.Code, w.Header().Get("Idempotent-Replayed"), res)
		}
	}
	w := s.do("GET", "/", hdr)
	if w.Code != http.StatusConflict || decodeProblem(t, w).Type != "urn:problem-type:ratebill:duplicate" {
		t.Errorf("fourth replay: %d %s; want 409 duplicate", w.Code, w.Body)
	}
	if n := s.up.calls.Load(); n != 4 {
		t.Errorf("upstream called %d times, want 4", n)
	}
	// A replay of a call that failed has no token: nothing to release.
	s.up.status = 500
	if w := s.do("GET", "/", map[string]string{"X-API-Key": keyValid, "X-Request-Id": "req-replayed-1"}); w.Code != 409 || s.platform.releases.Load() != 0 {
		t.Errorf("status %d, %d releases", w.Code, s.platform.releases.Load())
	}
}

// TestMiddlewareContextResultAndLabels checks what the handler finds in
// the context, and the cost and endpoint sent to the platform.
func TestMiddlewareContextResultAndLabels(t *testing.T) {
	t.Parallel()
	if _, ok := ratebill.FromContext(httptest.NewRequest("GET", "/", nil).Context()); ok {
		t.Error("FromContext on a plain context reports a result")
	}
	platform := newFakePlatform(t)
	var got atomic.Pointer[ratebill.VerifyResult]
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/things/{id}", func(w http.ResponseWriter, r *http.Request) {
		res, _ := ratebill.FromContext(r.Context())
		got.Store(res)
	})
	mux.HandleFunc("/v1/any", func(w http.ResponseWriter, r *http.Request) {})
	cost := func(r *http.Request) int64 {
		if strings.HasPrefix(r.URL.Path, "/v1/things/") {
			return 7
		}
		return 2
	}
	h := ratebill.Middleware(platform.client(t), ratebill.MiddlewareOptions{Cost: cost, Logger: quietLogger})(mux)
	tests := []struct {
		method, path string
		wantEndpoint string
		wantCost     int64
	}{
		{"GET", "/v1/things/42", "GET /v1/things/{id}", 7},
		{"POST", "/v1/any", "POST /v1/any", 2},
		{"GET", "/nowhere/" + strings.Repeat("x", 500), "GET (unmatched)", 2},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, tt.path, nil)
		r.Header.Set("X-API-Key", keyValid)
		h.ServeHTTP(httptest.NewRecorder(), r)
		if req := platform.lastRequest(); req.Endpoint != tt.wantEndpoint || req.Cost != tt.wantCost {
			t.Errorf("%s %.30s: platform saw endpoint %q cost %d, want %q %d", tt.method, tt.path, req.Endpoint, req.Cost, tt.wantEndpoint, tt.wantCost)
		}
	}
	res := got.Load()
	if res == nil || !res.Valid || res.User == nil || res.User.Username != "alice" || res.Cost != 7 ||
		res.RateLimit == nil || res.RateLimit.Limit != 50 || res.ReleaseToken == "" || res.Unverified {
		t.Errorf("context result %+v; want alice's admitted decision", res)
	}

	// An explicit Endpoint func wins, and a long label is cut.
	h = ratebill.Middleware(platform.client(t), ratebill.MiddlewareOptions{
		Endpoint: func(r *http.Request) string { return "custom " + strings.Repeat("y", 1000) }, Logger: quietLogger,
	})(mux)
	r := httptest.NewRequest("GET", "/v1/any", nil)
	r.Header.Set("X-API-Key", keyValid)
	h.ServeHTTP(httptest.NewRecorder(), r)
	if req := platform.lastRequest(); !strings.HasPrefix(req.Endpoint, "custom y") || len(req.Endpoint) > 200 || req.Cost != 1 {
		t.Errorf("platform saw endpoint %.40q (%d bytes) cost %d; want the custom label, at most 200 bytes, cost 1", req.Endpoint, len(req.Endpoint), req.Cost)
	}
}

// TestMiddlewareConcurrent runs admitted, denied and failing calls at
// once (go test -race finds shared state).
func TestMiddlewareConcurrent(t *testing.T) {
	t.Parallel()
	platform := newFakePlatform(t)
	var served atomic.Int64
	h := ratebill.Middleware(platform.client(t), ratebill.MiddlewareOptions{Logger: quietLogger})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			served.Add(1)
			if r.URL.Path == "/fail" {
				w.WriteHeader(502)
			}
		}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	keys := []string{keyValid, keyLimited, keyRevoked}
	paths := []string{"/ok", "/fail"}
	done := make(chan struct{})
	const n = 24
	for i := range n {
		go func() {
			defer func() { done <- struct{}{} }()
			req, _ := http.NewRequest("GET", srv.URL+paths[i%2], nil)
			req.Header.Set("X-API-Key", keys[i%3])
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		}()
	}
	for range n {
		<-done
	}
	// i%3==0 is admitted: 8 calls, of which i%2==1 (/fail) are 4.
	if served.Load() != 8 || platform.releases.Load() != 4 {
		t.Errorf("served %d, released %d; want 8 and 4", served.Load(), platform.releases.Load())
	}
}
