package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fake is a small stand-in for the platform: sign-up, a metered endpoint
// with a per-user limit, GET /me and GET /billing, with knobs to make it
// misbehave the ways the checks must catch.
type fake struct {
	mu       sync.Mutex
	keys     map[string]string // key → username
	admitted map[string]int64

	limit       int64 // reported by /me and enforced unless overAdmit
	overAdmit   bool  // admit beyond the limit
	billExtra   int64 // added to the first user's billing
	status500At int   // answer 500 to the n-th metered request (1-based)
	delay       time.Duration
	served      int
}

func newFake(limit int64) *fake {
	return &fake{keys: map[string]string{}, admitted: map[string]int64{}, limit: limit}
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.Method == http.MethodPost && r.URL.Path == "/users/" {
		var in struct{ Username, Email string }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Username == "" || !strings.Contains(in.Email, "@") {
			http.Error(w, "bad sign-up", http.StatusUnprocessableEntity)
			return
		}
		f.mu.Lock()
		key := "key-" + in.Username
		f.keys[key] = in.Username
		f.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"username":%q,"api_key":%q}`, in.Username, key)
		return
	}
	key := r.Header.Get("X-API-Key")
	if r.Method == http.MethodPost && r.URL.Path == "/verify" {
		var in struct{ Key string }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad verify body", http.StatusUnprocessableEntity)
			return
		}
		key = in.Key
	}
	f.mu.Lock()
	name, ok := f.keys[key]
	f.mu.Unlock()
	if !ok {
		http.Error(w, "no key", http.StatusUnauthorized)
		return
	}
	switch r.URL.Path {
	case "/me":
		fmt.Fprintf(w, `{"username":%q,"rate_limit":{"limit":%d,"window_seconds":86400}}`, name, f.limit)
	case "/billing":
		f.mu.Lock()
		n := f.admitted[name]
		if strings.HasSuffix(name, "-0") {
			n += f.billExtra
		}
		f.mu.Unlock()
		fmt.Fprintf(w, `{"requests":%d,"amount":"0.00"}`, n)
	case "/verify":
		// POST /verify: every answer is a 200; a denial says valid false.
		f.mu.Lock()
		admit := f.admitted[name] < f.limit || f.overAdmit
		if admit {
			f.admitted[name]++
		}
		f.mu.Unlock()
		w.Header().Set("X-RateLimit-Reset", "1000")
		fmt.Fprintf(w, `{"valid":%v,"code":"VALID"}`, admit)
	case "/usage":
		if f.delay > 0 {
			time.Sleep(f.delay)
		}
		f.mu.Lock()
		f.served++
		if f.served == f.status500At {
			f.mu.Unlock()
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		if f.admitted[name] >= f.limit && !f.overAdmit {
			f.mu.Unlock()
			w.Header().Set("X-RateLimit-Reset", "1000")
			http.Error(w, "limited", http.StatusTooManyRequests)
			return
		}
		f.admitted[name]++
		f.mu.Unlock()
		w.Header().Set("X-RateLimit-Reset", "1000")
		fmt.Fprint(w, `{"total_requests":1}`)
	default:
		http.NotFound(w, r)
	}
}

func start(t *testing.T, f *fake) string {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv.URL
}

func check(t *testing.T, rep *Report, name string) CheckResult {
	t.Helper()
	for _, c := range rep.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in %+v", name, rep.Checks)
	return CheckResult{}
}

const (
	errorsCheck  = "no 5xx and no transport errors"
	limitCheck   = "no user admitted beyond its limit"
	billingCheck = "billing counts exactly the admitted requests"
)

func TestRunClosedLoopHonestServer(t *testing.T) {
	t.Parallel()
	f := newFake(1000)
	rep, err := Run(context.Background(), Config{Base: start(t, f), Users: 7, Requests: 500, Concurrency: 8, Endpoint: "/usage"})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK {
		t.Fatalf("checks failed: %+v", rep.Checks)
	}
	if rep.Requests != 500 || rep.Admitted != 500 || rep.Status[200] != 500 || rep.Unsent != 0 {
		t.Fatalf("report %+v: want 500 requests, all 200", rep)
	}
	if rep.Mode != "closed" || rep.RPS <= 0 || rep.Latency.P50 <= 0 || rep.Latency.Max < rep.Latency.P99 || rep.Latency.P99 < rep.Latency.P50 {
		t.Fatalf("implausible figures: %+v", rep)
	}
	// Spread round robin: 500 over 7 users is 72 or 71 each.
	for name, n := range f.admitted {
		if n != 71 && n != 72 {
			t.Fatalf("user %s got %d requests, want 71 or 72", name, n)
		}
	}
	if len(f.admitted) != 7 {
		t.Fatalf("%d users served, want 7", len(f.admitted))
	}
}

func TestDenialsAreNotFailures(t *testing.T) {
	t.Parallel()
	f := newFake(5)
	rep, err := Run(context.Background(), Config{Base: start(t, f), Users: 4, Requests: 100, Concurrency: 10, Endpoint: "/usage"})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Admitted != 20 || rep.Status[429] != 80 {
		t.Fatalf("want 20 admitted, 80 denied, all checks ok: %+v", rep)
	}
}

// TestVerifyEndpoint: LT_ENDPOINT=/verify posts each user's key in the
// body; a 200 counts as admitted only with "valid": true, and the checks
// still catch a server admitting beyond the limit.
func TestVerifyEndpoint(t *testing.T) {
	t.Parallel()
	f := newFake(5)
	rep, err := Run(context.Background(), Config{Base: start(t, f), Users: 4, Requests: 100, Concurrency: 10, Endpoint: "/verify"})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Admitted != 20 || rep.Status[200] != 100 || len(rep.Checks) != 3 {
		t.Fatalf("want 100 answers, 20 admitted, three checks ok: %+v", rep)
	}
	bad := newFake(5)
	bad.overAdmit = true
	rep, err = Run(context.Background(), Config{Base: start(t, bad), Users: 2, Requests: 20, Concurrency: 4, Endpoint: "/verify"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || check(t, rep, limitCheck).OK {
		t.Fatalf("over-admission not caught: %+v", rep.Checks)
	}
}

func TestCheckFailsWhenBillingDisagrees(t *testing.T) {
	t.Parallel()
	f := newFake(1000)
	f.billExtra = 1
	rep, err := Run(context.Background(), Config{Base: start(t, f), Users: 3, Requests: 30, Concurrency: 3, Endpoint: "/usage"})
	if err != nil {
		t.Fatal(err)
	}
	c := check(t, rep, billingCheck)
	if rep.OK || c.OK || len(c.Errors) != 1 || !strings.Contains(c.Errors[0], "billed 11, admitted 10") {
		t.Fatalf("billing check should fail for one user: %+v", c)
	}
	if !check(t, rep, limitCheck).OK {
		t.Fatal("limit check failed, want only billing to fail")
	}
}

func TestCheckFailsWhenLimitExceeded(t *testing.T) {
	t.Parallel()
	f := newFake(5)
	f.overAdmit = true
	rep, err := Run(context.Background(), Config{Base: start(t, f), Users: 2, Requests: 20, Concurrency: 4, Endpoint: "/usage"})
	if err != nil {
		t.Fatal(err)
	}
	c := check(t, rep, limitCheck)
	if rep.OK || c.OK || len(c.Errors) != 2 {
		t.Fatalf("limit check should fail for both users: %+v", c)
	}
}

func TestCheckFailsOn5xx(t *testing.T) {
	t.Parallel()
	f := newFake(1000)
	f.status500At = 3
	rep, err := Run(context.Background(), Config{Base: start(t, f), Users: 2, Requests: 10, Concurrency: 1, Endpoint: "/usage"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || check(t, rep, errorsCheck).OK || rep.Status[500] != 1 {
		t.Fatalf("a 500 must fail the run: %+v", rep)
	}
	// The 500 was not admitted and not billed: billing still agrees.
	if !check(t, rep, billingCheck).OK {
		t.Fatalf("billing check: %+v", check(t, rep, billingCheck))
	}
}

func TestTransportErrorsAreReported(t *testing.T) {
	t.Parallel()
	f := newFake(1000)
	f.delay = 300 * time.Millisecond
	rep, err := Run(context.Background(), Config{Base: start(t, f), Users: 1, Requests: 4, Concurrency: 2, Endpoint: "/usage", Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || rep.Errors["timeout"] != 4 || check(t, rep, errorsCheck).OK {
		t.Fatalf("want 4 timeouts failing the run: %+v", rep)
	}
	// Timed-out requests may or may not have been billed: the billing
	// check bounds them instead of failing.
	if c := check(t, rep, billingCheck); !c.OK {
		t.Fatalf("billing check: %+v", c)
	}
}

func TestOpenLoopMeasuresFromIntendedSendTime(t *testing.T) {
	t.Parallel()
	f := newFake(1000)
	f.delay = 40 * time.Millisecond
	// 10 requests due every 10 ms, one worker, 40 ms each: the server
	// falls behind by 30 ms per request, so the last one is answered
	// about 9*30+40 = 310 ms after it was due. Closed-loop timing would
	// say 40 ms.
	rep, err := Run(context.Background(), Config{Base: start(t, f), Users: 1, Requests: 10, Concurrency: 1, Endpoint: "/usage", Rate: 100})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Mode != "open" || !rep.OK {
		t.Fatalf("report %+v", rep)
	}
	if rep.Latency.Max < 250 || rep.Latency.P50 < 100 {
		t.Fatalf("latency %+v: want queueing delay counted (max ≥ 250 ms, p50 ≥ 100 ms)", rep.Latency)
	}
}

func TestOpenLoopKeepsTheSchedule(t *testing.T) {
	t.Parallel()
	f := newFake(1000)
	rep, err := Run(context.Background(), Config{Base: start(t, f), Users: 2, Requests: 100, Concurrency: 4, Endpoint: "/usage", Rate: 500})
	if err != nil {
		t.Fatal(err)
	}
	// 100 requests at 500/s take about 0.2 s: not faster.
	if rep.Seconds < 0.19 || rep.RPS > 530 || !rep.OK {
		t.Fatalf("open loop ran at %.0f req/s over %.3f s, want about 500: %+v", rep.RPS, rep.Seconds, rep)
	}
}

func TestMaxDurationBoundsTheRun(t *testing.T) {
	t.Parallel()
	f := newFake(1000)
	rep, err := Run(context.Background(), Config{Base: start(t, f), Users: 1, Requests: 1000, Concurrency: 1, Endpoint: "/usage", Rate: 100, MaxDuration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Unsent < 900 || rep.Requests > 100 || rep.OK || check(t, rep, errorsCheck).OK {
		t.Fatalf("want most requests unsent and the run failed: %+v", rep)
	}
	if !check(t, rep, billingCheck).OK {
		t.Fatal("billing must agree for what was sent")
	}
}

func TestProgressLines(t *testing.T) {
	t.Parallel()
	f := newFake(1000)
	var buf bytes.Buffer
	_, err := Run(context.Background(), Config{Base: start(t, f), Users: 1, Requests: 50, Concurrency: 1, Endpoint: "/usage", Rate: 200, Progress: &buf, ProgressEvery: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[len(lines)-1], "progress: 50/50 (100%)") || strings.Contains(buf.String(), "\r") {
		t.Fatalf("want several plain progress lines ending at 50/50:\n%s", buf.String())
	}
	var bar bytes.Buffer
	_, err = Run(context.Background(), Config{Base: start(t, f), Users: 1, Requests: 20, Concurrency: 1, Endpoint: "/usage", Progress: &bar, Terminal: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(bar.String(), "\r[==============================] 100% 20/20") {
		t.Fatalf("want a redrawn bar ending full: %q", bar.String())
	}
}

func TestFromEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{"API_BASE": "http://127.0.0.1:9", "LT_USERS": "3", "LT_REQUESTS": "40", "LT_CONCURRENCY": "5", "LT_ENDPOINT": "/me"}
	c, err := FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Base != "http://127.0.0.1:9" || c.Users != 3 || c.Requests != 40 || c.Concurrency != 5 || c.Endpoint != "/me" || c.metered() {
		t.Fatalf("config %+v", c)
	}
	d, err := FromEnv(func(string) string { return "" })
	if err != nil || d.Base != "http://127.0.0.1:8080" || d.Users != 100 || d.Requests != 10000 || d.Concurrency != 100 || d.Endpoint != "/usage" || !d.metered() {
		t.Fatalf("defaults %+v, %v: want the seed's", d, err)
	}
	for _, bad := range []string{"0", "-1", "x", "1.5"} {
		if _, err := FromEnv(func(k string) string {
			if k == "LT_USERS" {
				return bad
			}
			return ""
		}); err == nil || !strings.Contains(err.Error(), "LT_USERS") {
			t.Errorf("LT_USERS=%s: err %v, want one naming LT_USERS", bad, err)
		}
	}
}

func TestSignUpFailureStopsTheRun(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no sign-ups today", http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	_, err := Run(context.Background(), Config{Base: srv.URL, Users: 3, Requests: 10, Concurrency: 2, Endpoint: "/usage"})
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("err %v, want the sign-up's 503", err)
	}
}

func TestReportText(t *testing.T) {
	t.Parallel()
	rep := &Report{Base: "http://x", Endpoint: "/usage", Mode: "open", Rate: 100, Users: 1, Concurrency: 2, Requests: 3, Seconds: 1, RPS: 3,
		Status: map[int]int{200: 2, 429: 1}, Errors: map[string]int{"timeout": 1},
		Checks: []CheckResult{{Name: "c", OK: false, Detail: "d", Errors: []string{"e1"}}}}
	var b bytes.Buffer
	rep.WriteText(&b)
	for _, want := range []string{"open loop at 100 req/s", "200×2  429×1", "1× timeout", "check FAIL c: d", "e1"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

func TestWarmupIsBilledButNotMeasured(t *testing.T) {
	t.Parallel()
	f := newFake(1000)
	rep, err := Run(context.Background(), Config{Base: start(t, f), Users: 3, Requests: 30, Concurrency: 4, Endpoint: "/usage", Warmup: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Warmup != 3 || rep.Requests != 30 || rep.Admitted != 30 || rep.Status[200] != 30 {
		t.Fatalf("want 3 warm-up and 30 measured requests, checks ok: %+v", rep)
	}
	// The billing check saw the warm-up: every user was billed 11.
	for name, n := range f.admitted {
		if n != 11 {
			t.Fatalf("%s billed %d, want 11", name, n)
		}
	}
	if c := check(t, rep, billingCheck); !strings.Contains(c.Detail, "billed 33, admitted 33") {
		t.Fatalf("billing check %+v: want the warm-up counted", c)
	}
}
