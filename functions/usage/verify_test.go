package usage

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ratebill/platform/shared/apikey"
	"github.com/ratebill/platform/shared/deps"
	"github.com/ratebill/platform/shared/deps/depstest"
	"github.com/ratebill/platform/shared/testdb"
)

// verifyEnv is one test's usage function on its own database, the test
// Redis (users start at a random id, so counters never collide) and a
// user with key.
type verifyEnv struct {
	d    *deps.Deps
	h    http.Handler
	key  string
	user int64
}

func newVerifyEnv(t *testing.T, vars map[string]string) verifyEnv {
	t.Helper()
	env := map[string]string{"API_RATE_LIMIT": "50", "API_RATE_WINDOW": "3600", "AUTH_CACHE_TTL": "0", "MAX_BODY_BYTES": "16384"}
	for k, v := range vars {
		env[k] = v
	}
	if _, ok := env["DATABASE_URL"]; !ok {
		env["DATABASE_URL"] = testdb.DatabaseURL(t)
	}
	d := depstest.New(t, env)
	ctx := context.Background()
	e := verifyEnv{d: d}
	if !strings.Contains(env["DATABASE_URL"], "127.0.0.1:1/") {
		// Tests share one Redis: start user ids at a random offset so
		// their counters never collide.
		conn, err := pgx.Connect(ctx, env["DATABASE_URL"])
		if err != nil {
			t.Fatal(err)
		}
		_, err = conn.Exec(ctx, fmt.Sprintf("ALTER TABLE users ALTER COLUMN id RESTART WITH %d", 1_000_000+rand.Int64N(1<<40)))
		conn.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		e.key, _ = apikey.Generate(nil)
		name := fmt.Sprintf("u%d", rand.Int64())
		u, err := d.Store.CreateUser(ctx, name, name+"@example.com", apikey.Hash(e.key), apikey.Display(e.key))
		if err != nil {
			t.Fatal(err)
		}
		e.user = u.ID
	}
	h, err := Handler(d)
	if err != nil {
		t.Fatal(err)
	}
	e.h = h
	return e
}

type verifyAnswer struct {
	code   int
	header http.Header
	raw    string
	resp   VerifyResponse
	prob   map[string]any
}

func (e verifyEnv) post(t *testing.T, body string, header map[string]string) verifyAnswer {
	t.Helper()
	r := httptest.NewRequest("POST", "/verify", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	a := verifyAnswer{code: w.Code, header: w.Header(), raw: w.Body.String()}
	if w.Code == 200 {
		dec := json.NewDecoder(strings.NewReader(a.raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&a.resp); err != nil {
			t.Fatalf("200 body %s: %v", a.raw, err)
		}
	} else {
		json.Unmarshal(w.Body.Bytes(), &a.prob)
		if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
			t.Fatalf("%d with Content-Type %q: %s", w.Code, ct, a.raw)
		}
	}
	return a
}

func verifyBody(fields map[string]any) string {
	b, _ := json.Marshal(fields)
	return string(b)
}

// recorded returns the user's recorded requests and units and the units
// taken from its quota in Redis.
func (e verifyEnv) recorded(t *testing.T) (requests, units, quota int64) {
	t.Helper()
	ctx := context.Background()
	p, err := e.d.Store.RequestsInLast(ctx, e.user, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.d.Limiter.AllowUser(ctx, e.user, e.d.Gate.UserLimit(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return p.Requests, p.Units, res.Used
}

// TestVerifyCodes walks every code /verify answers today, in order on one
// user with a limit of 50.
func TestVerifyCodes(t *testing.T) {
	t.Parallel()
	e := newVerifyEnv(t, nil)
	unknown, _ := apikey.Generate(nil)

	// VALID, cost 20, the body's request id.
	a := e.post(t, verifyBody(map[string]any{"key": e.key, "cost": 20, "endpoint": "GET /forecast", "request_id": "verify-0001"}), nil)
	if a.code != 200 || !a.resp.Valid || a.resp.Code != "VALID" || a.resp.Cost != 20 || a.resp.TotalUnits != 20 || a.resp.Replayed ||
		a.resp.RequestID != "verify-0001" || a.resp.User == nil || a.resp.User.ID != e.user || a.resp.RateLimit == nil ||
		a.resp.RateLimit.Limit != 50 || a.resp.RateLimit.Remaining != 30 || a.resp.RateLimit.RetryAfter != 0 ||
		a.header.Get("X-Ratelimit-Remaining") != "30" || a.header.Get(ReplayedHeader) != "" {
		t.Fatalf("valid: %d %s %v", a.code, a.raw, a.header)
	}
	if !strings.Contains(a.raw, `"resets_at":"`) || a.resp.RateLimit.ResetsAt.Unix()%3600 != 0 {
		t.Fatalf("resets_at: %s", a.raw)
	}
	// The same id again: served, replayed, costs nothing.
	a = e.post(t, verifyBody(map[string]any{"key": e.key, "cost": 20, "endpoint": "GET /forecast", "request_id": "verify-0001"}), nil)
	if a.code != 200 || !a.resp.Valid || !a.resp.Replayed || a.resp.Cost != 0 || a.resp.TotalUnits != 20 ||
		a.header.Get(ReplayedHeader) != "true" || a.resp.RateLimit.Remaining != 30 {
		t.Fatalf("replay: %d %s %v", a.code, a.raw, a.header)
	}
	// No request_id in the body: the X-Request-Id header's; no cost: 1.
	a = e.post(t, verifyBody(map[string]any{"key": e.key}), map[string]string{"X-Request-Id": "header-id-0001"})
	if a.code != 200 || a.resp.Code != "VALID" || a.resp.RequestID != "header-id-0001" || a.resp.Cost != 1 || a.resp.TotalUnits != 21 {
		t.Fatalf("header id: %d %s", a.code, a.raw)
	}
	// Neither: the id the middleware assigned (the response's header).
	a = e.post(t, verifyBody(map[string]any{"key": e.key, "cost": 9}), nil)
	if a.code != 200 || a.resp.RequestID == "" || a.resp.RequestID != a.header.Get("X-Request-Id") || a.resp.TotalUnits != 30 {
		t.Fatalf("assigned id: %d %s %v", a.code, a.raw, a.header)
	}
	// 20 left: 21 does not fit, and is neither counted nor billed.
	a = e.post(t, verifyBody(map[string]any{"key": e.key, "cost": 21}), nil)
	if a.code != 200 || a.resp.Valid || a.resp.Code != "RATE_LIMITED" || a.resp.Cost != 0 || a.resp.TotalUnits != 0 || a.resp.User == nil ||
		a.resp.RateLimit == nil || a.resp.RateLimit.Remaining != 20 || a.resp.RateLimit.RetryAfter < 1 || a.resp.RateLimit.RetryAfter > 3600 ||
		a.header.Get("Retry-After") != strconv.FormatInt(a.resp.RateLimit.RetryAfter, 10) {
		t.Fatalf("rate limited: %d %s %v", a.code, a.raw, a.header)
	}
	// 20 fits exactly.
	if a = e.post(t, verifyBody(map[string]any{"key": e.key, "cost": 20}), nil); a.resp.Code != "VALID" || a.resp.RateLimit.Remaining != 0 {
		t.Fatalf("exact fit: %s", a.raw)
	}
	// Keys: wrong shape, unknown, revoked.
	for _, tt := range []struct{ name, key, want string }{
		{"short", "sk_short", "MALFORMED_KEY"},
		{"checksum", e.key[:len(e.key)-1] + "x", "MALFORMED_KEY"},
		{"no prefix", strings.Repeat("a", 52), "MALFORMED_KEY"},
		{"spaces", " " + e.key, "MALFORMED_KEY"},
		{"huge", "sk_" + strings.Repeat("A", 8000), "MALFORMED_KEY"},
		{"control", "sk_\u0000\u001b", "MALFORMED_KEY"},
		{"unknown", unknown, "NOT_FOUND"},
	} {
		a := e.post(t, verifyBody(map[string]any{"key": tt.key, "cost": 1}), nil)
		if a.code != 200 || a.resp.Valid || a.resp.Code != tt.want || a.resp.User != nil || a.resp.RateLimit != nil || a.resp.Cost != 0 {
			t.Fatalf("%s: %d %s", tt.name, a.code, a.raw)
		}
	}
	if err := e.d.Store.RevokeKey(context.Background(), apikey.Hash(e.key)); err != nil {
		t.Fatal(err)
	}
	if a := e.post(t, verifyBody(map[string]any{"key": e.key}), nil); a.code != 200 || a.resp.Code != "REVOKED" {
		t.Fatalf("revoked: %d %s", a.code, a.raw)
	}
	requests, units, quota := e.recorded(t)
	if requests != 4 || units != 50 || quota != 50 {
		t.Fatalf("recorded %d requests, %d units, quota used %d; want 4, 50, 50", requests, units, quota)
	}
}

// TestVerifyConcurrentCostsExact: 100 concurrent calls of cost 1..5 on a
// limit of 50 units admit at most 50 units, and exactly the admitted
// units are recorded, billed and taken from the quota.
func TestVerifyConcurrentCostsExact(t *testing.T) {
	t.Parallel()
	e := newVerifyEnv(t, nil)
	var (
		mu                sync.Mutex
		admitted, granted int64
		wg                sync.WaitGroup
		start             = make(chan struct{})
	)
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			cost := int64(1 + i%5)
			a := e.post(t, verifyBody(map[string]any{"key": e.key, "cost": cost, "request_id": fmt.Sprintf("conc-%04d", i)}), nil)
			if a.code != 200 {
				t.Errorf("status %d: %s", a.code, a.raw)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			switch a.resp.Code {
			case "VALID":
				admitted += cost
				granted += a.resp.Cost
			case "RATE_LIMITED":
				if a.resp.RateLimit.Remaining >= cost {
					t.Errorf("refused cost %d with %d remaining", cost, a.resp.RateLimit.Remaining)
				}
			default:
				t.Errorf("code %s", a.resp.Code)
			}
		}()
	}
	close(start)
	wg.Wait()
	requests, units, quota := e.recorded(t)
	if admitted > 50 || admitted < 46 || granted != admitted || units != admitted || quota != admitted || requests == 0 {
		t.Fatalf("admitted %d units (cost sum %d); billed %d units in %d requests; quota used %d", admitted, granted, units, requests, quota)
	}
}

// TestVerifyHostileInputs: every malformed body is a 4xx problem, never a
// 5xx, and records nothing.
func TestVerifyHostileInputs(t *testing.T) {
	t.Parallel()
	e := newVerifyEnv(t, nil)
	key := func(rest string) string { return `{"key":"` + e.key + `"` + rest + `}` }
	tests := []struct {
		name, body, contentType string
		header                  map[string]string
		status                  int
		problem, field          string
	}{
		{"no key", `{"cost":1}`, "", nil, 422, "validation-failed", "key"},
		{"empty key", `{"key":""}`, "", nil, 422, "validation-failed", "key"},
		{"key not a string", `{"key":5}`, "", nil, 422, "validation-failed", "key"},
		{"cost 0", key(`,"cost":0`), "", nil, 422, "validation-failed", "cost"},
		{"cost negative", key(`,"cost":-3`), "", nil, 422, "validation-failed", "cost"},
		{"cost huge", key(`,"cost":10001`), "", nil, 422, "validation-failed", "cost"},
		{"cost enormous", key(`,"cost":1e400`), "", nil, 422, "validation-failed", "cost"},
		{"cost beyond int64", key(`,"cost":99999999999999999999999`), "", nil, 422, "validation-failed", "cost"},
		{"cost fraction", key(`,"cost":2.5`), "", nil, 422, "validation-failed", "cost"},
		{"cost tiny", key(`,"cost":1e-400`), "", nil, 422, "validation-failed", "cost"},
		{"cost string", key(`,"cost":"2"`), "", nil, 422, "validation-failed", "cost"},
		{"cost null", key(`,"cost":null`), "", nil, 422, "validation-failed", "cost"},
		{"cost bool", key(`,"cost":true`), "", nil, 422, "validation-failed", "cost"},
		{"endpoint too long", key(`,"endpoint":"` + strings.Repeat("é", 129) + `"`), "", nil, 422, "validation-failed", "endpoint"},
		{"endpoint newline", key(`,"endpoint":"GET /a\nX-Evil: 1"`), "", nil, 422, "validation-failed", "endpoint"},
		{"endpoint NUL", key(`,"endpoint":"GET /a\u0000"`), "", nil, 422, "validation-failed", "endpoint"},
		{"endpoint escape", key(`,"endpoint":"\u001b[31m"`), "", nil, 422, "validation-failed", "endpoint"},
		{"endpoint bidi", key(`,"endpoint":"a\u202eb"`), "", nil, 422, "validation-failed", "endpoint"},
		{"unknown field", key(`,"admin":true`), "", nil, 422, "validation-failed", "admin"},
		{"request_id short", key(`,"request_id":"abc"`), "", nil, 400, "invalid-request-id", ""},
		{"request_id empty", key(`,"request_id":""`), "", nil, 400, "invalid-request-id", ""},
		{"request_id control", key(`,"request_id":"abcdefgh\n"`), "", nil, 400, "invalid-request-id", ""},
		{"request_id space", key(`,"request_id":"abcd efgh"`), "", nil, 400, "invalid-request-id", ""},
		{"request_id long", key(`,"request_id":"` + strings.Repeat("a", 129) + `"`), "", nil, 400, "invalid-request-id", ""},
		{"header request id bad", key(``), "", map[string]string{"X-Request-Id": "bad id!"}, 400, "invalid-request-id", ""},
		{"not JSON", `key=sk_x`, "application/x-www-form-urlencoded", nil, 415, "unsupported-media-type", ""},
		{"text", key(``), "text/plain", nil, 415, "unsupported-media-type", ""},
		{"latin1", key(``), "application/json; charset=latin1", nil, 415, "unsupported-media-type", ""},
		{"malformed", `{"key":`, "", nil, 400, "malformed-request", ""},
		{"array", `[1]`, "", nil, 400, "malformed-request", ""},
		// httpapi.DecodeJSON reads the second object strictly as well, so it
		// is refused as an unknown field rather than as trailing data.
		{"two objects", key(``) + key(``), "", nil, 422, "validation-failed", ""},
		{"1 MiB", key(`,"endpoint":"` + strings.Repeat("a", 1<<20) + `"`), "", nil, 413, "payload-too-large", ""},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("POST", "/verify", strings.NewReader(tt.body))
		ct := tt.contentType
		if ct == "" {
			ct = "application/json"
		}
		r.Header.Set("Content-Type", ct)
		for k, v := range tt.header {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		var p map[string]any
		json.Unmarshal(w.Body.Bytes(), &p)
		if w.Code != tt.status || p["type"] != "urn:problem-type:ratebill:"+tt.problem || w.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s, want %d %s", tt.name, w.Code, w.Body, tt.status, tt.problem)
			continue
		}
		if tt.field != "" && !namesField(p, tt.field) {
			t.Errorf("%s: errors %v do not name %s", tt.name, p["errors"], tt.field)
		}
	}
	if requests, units, quota := e.recorded(t); requests != 0 || units != 0 || quota != 0 {
		t.Fatalf("hostile inputs recorded %d requests, %d units, quota %d", requests, units, quota)
	}
	// Costs that are integers by value are accepted.
	for i, c := range []string{"2.0", "2e0", "20e-1"} {
		a := e.post(t, key(`,"cost":`+c+`,"request_id":"int-cost-`+strconv.Itoa(i)+`"`), nil)
		if a.code != 200 || a.resp.Cost != 2 {
			t.Fatalf("cost %s: %d %s", c, a.code, a.raw)
		}
	}
	// Printable non-ASCII endpoints are fine.
	if a := e.post(t, key(`,"endpoint":"GET /wetter/zürich ☀"`), nil); a.code != 200 || !a.resp.Valid {
		t.Fatalf("unicode endpoint: %d %s", a.code, a.raw)
	}
}

// namesField reports whether problem p's errors name field.
func namesField(p map[string]any, field string) bool {
	errs, _ := p["errors"].([]any)
	for _, e := range errs {
		if m, _ := e.(map[string]any); m["field"] == field {
			return true
		}
	}
	return false
}

// TestVerifyDependencyDown: Redis or Postgres down is a 503 problem,
// never an answer of valid false.
func TestVerifyDependencyDown(t *testing.T) {
	t.Parallel()
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		e := newVerifyEnv(t, map[string]string{"REDIS_URL": "redis://127.0.0.1:1/0"})
		a := e.post(t, verifyBody(map[string]any{"key": e.key}), nil)
		if a.code != 503 || a.prob["type"] != "urn:problem-type:ratebill:service-unavailable" || a.header.Get("Retry-After") == "" {
			t.Fatalf("%d %s", a.code, a.raw)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		e := newVerifyEnv(t, map[string]string{"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none?connect_timeout=1"})
		unknown, _ := apikey.Generate(nil) // well formed: only Postgres can say it is unknown
		a := e.post(t, verifyBody(map[string]any{"key": unknown}), nil)
		if a.code != 503 || a.prob["type"] != "urn:problem-type:ratebill:service-unavailable" {
			t.Fatalf("%d %s", a.code, a.raw)
		}
	})
}

// TestVerifyCostParsing is the pure half of cost validation.
func TestVerifyCostParsing(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		raw  string
		want int64
		ok   bool
	}{
		{"", 1, true}, {"1", 1, true}, {"10000", 10000, true}, {"1.0", 1, true}, {"1e4", 10000, true},
		{"0", 0, false}, {"-1", 0, false}, {"10001", 0, false}, {"1.5", 0, false}, {"1e99999999", 0, false},
		{`"1"`, 0, false}, {"null", 0, false}, {"1.0000000000000000000000000000000000000000000000000001", 0, false},
	} {
		got, ok := parseCost(json.RawMessage(tt.raw))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseCost(%q) = %d, %v; want %d, %v", tt.raw, got, ok, tt.want, tt.ok)
		}
	}
}
