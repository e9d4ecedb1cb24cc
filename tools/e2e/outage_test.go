package e2e

import (
	"context"
	"io"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ratebill/platform/shared/postgres"
	"github.com/ratebill/platform/tools/devserver"
)

// eventually polls f until it returns true or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRedisOutage: with Redis stopped, metered requests are refused with
// 503 (closed by default, never silently unlimited), /health names Redis,
// and when Redis is back the service recovers without a restart.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	e := setup(t, options{replicas: 1})
	key := e.signup("outage")
	if r := e.do(req{method: "GET", path: "/usage", key: key}); r.Status != 200 {
		t.Fatalf("before outage: %d", r.Status)
	}
	e.redis.Stop()

	expectProblem(t, e.do(req{method: "GET", path: "/usage", key: key}), 503, "service-unavailable")
	expectProblem(t, e.do(req{method: "POST", path: "/users/", body: map[string]string{"username": "during", "email": "during@example.com"}}), 503, "service-unavailable")
	h := e.do(req{method: "GET", path: "/health"})
	if h.Status != 503 {
		t.Fatalf("health during outage: %d %s", h.Status, h.Body)
	}
	checks := h.JSON(t)["checks"].(map[string]any)
	if checks["redis"].(map[string]any)["status"] != "down" || checks["postgres"].(map[string]any)["status"] != "ok" {
		t.Fatalf("health does not name redis: %s", h.Body)
	}
	// Not metered, so still served: the caller can see their bill.
	if b := e.do(req{method: "GET", path: "/billing", key: key}); b.Status != 200 || b.JSON(t)["requests"] != float64(1) {
		t.Fatalf("billing during outage: %d %s", b.Status, b.Body)
	}

	e.redis.Start()
	eventually(t, 10*time.Second, "usage recovers", func() bool {
		return e.do(req{method: "GET", path: "/usage", key: key}).Status == 200
	})
	if h := e.do(req{method: "GET", path: "/health"}); h.Status != 200 {
		t.Fatalf("health after recovery: %d %s", h.Status, h.Body)
	}
	// Refused requests were neither counted nor billed.
	if n := e.queryInt(`SELECT count(*) FROM usage_events`); n != 2 {
		t.Fatalf("%d usage rows, want 2", n)
	}
}

// TestFailOpen: with RATE_LIMIT_FAIL_OPEN=true a Redis outage serves
// metered requests without a limit, still recorded and billed.
func TestFailOpen(t *testing.T) {
	t.Parallel()
	e := setup(t, options{replicas: 1, env: map[string]string{"RATE_LIMIT_FAIL_OPEN": "true"}})
	key := e.signup("open")
	e.redis.Stop()
	r := e.do(req{method: "GET", path: "/usage", key: key})
	if r.Status != 200 {
		t.Fatalf("fail-open: %d %s", r.Status, r.Body)
	}
	if body := r.JSON(t); body["window"] != nil || body["total_requests"] != float64(1) {
		t.Fatalf("fail-open body %s", r.Body)
	}
	if r.Header.Get("X-RateLimit-Remaining") != "" {
		t.Fatal("rate-limit headers sent while the limit was not enforced")
	}
	if b := e.do(req{method: "GET", path: "/billing", key: key}).JSON(t); b["requests"] != float64(1) {
		t.Fatalf("billing %v", b)
	}
	if h := e.do(req{method: "GET", path: "/health"}); h.Status != 503 {
		t.Fatalf("health must still report the outage: %d", h.Status)
	}
}

// TestPostgresOutage stops the platform's own Postgres server: metered
// requests get 503 and give their quota back, /health names Postgres,
// nothing acknowledged is lost, and the platform recovers by itself.
func TestPostgresOutage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	pg, err := devserver.StartPostgres(ctx, dir, 0, io.Discard, devserver.Fast())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Stop() })
	if err := postgres.Migrate(ctx, pg.URL); err != nil {
		t.Fatal(err)
	}
	e := setup(t, options{replicas: 1, databaseURL: pg.URL})
	key := e.signup("pgdown")
	ok := 0
	for i := 0; i < 3; i++ {
		if r := e.do(req{method: "GET", path: "/usage", key: key}); r.Status == 200 {
			ok++
		}
	}
	remainingBefore := 1000 - ok

	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	r := e.do(req{method: "GET", path: "/usage", key: key}) // key is cached; the write fails
	expectProblem(t, r, 503, "service-unavailable")
	if got := r.Header.Get("X-RateLimit-Remaining"); got != "" && got != strconv.Itoa(remainingBefore) {
		t.Fatalf("quota not given back: remaining %s, want %d", got, remainingBefore)
	}
	expectProblem(t, e.do(req{method: "GET", path: "/billing", key: key}), 503, "service-unavailable")
	h := e.do(req{method: "GET", path: "/health"})
	if h.Status != 503 || h.JSON(t)["checks"].(map[string]any)["postgres"].(map[string]any)["status"] != "down" {
		t.Fatalf("health during Postgres outage: %d %s", h.Status, h.Body)
	}

	pg2, err := devserver.StartPostgres(ctx, dir, pg.Port, io.Discard, devserver.Fast())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg2.Stop() })
	eventually(t, 20*time.Second, "usage recovers", func() bool {
		r := e.do(req{method: "GET", path: "/usage", key: key})
		if r.Status == 200 {
			ok++
			if w := r.JSON(t)["window"].(map[string]any); w["used"] != float64(ok) {
				t.Errorf("window used %v after %d admitted requests: refunds lost", w["used"], ok)
			}
			return true
		}
		return false
	})
	b := e.do(req{method: "GET", path: "/billing", key: key}).JSON(t)
	if b["requests"] != float64(ok) {
		t.Fatalf("billed %v, admitted %d", b["requests"], ok)
	}
}

// TestIdempotentRetry: a retry carrying the same X-Request-Id is served
// but neither billed nor counted against the quota again.
func TestIdempotentRetry(t *testing.T) {
	t.Parallel()
	e := setup(t, options{replicas: 1})
	key := e.signup("retrier")
	hdr := map[string]string{"X-Request-Id": "client-retry-0001"}
	first := e.do(req{method: "GET", path: "/usage", key: key, header: hdr})
	second := e.do(req{method: "GET", path: "/usage", key: key, header: hdr})
	if first.Status != 200 || second.Status != 200 {
		t.Fatalf("statuses %d %d", first.Status, second.Status)
	}
	if second.Header.Get("X-Request-Id") != "client-retry-0001" {
		t.Fatalf("request id not echoed: %q", second.Header.Get("X-Request-Id"))
	}
	if a, b := first.JSON(t)["total_requests"], second.JSON(t)["total_requests"]; a != float64(1) || b != float64(1) {
		t.Fatalf("totals %v then %v, want 1 and 1", a, b)
	}
	if got := second.Header.Get("X-RateLimit-Remaining"); got != "999" {
		t.Fatalf("retry consumed quota: remaining %s", got)
	}
	if b := e.do(req{method: "GET", path: "/billing", key: key}).JSON(t); b["requests"] != float64(1) {
		t.Fatalf("billed %v", b["requests"])
	}
}

// TestSIGTERMLosesNothing stops a usage replica while requests are in
// flight: every request answered 200 is in Postgres.
func TestSIGTERMLosesNothing(t *testing.T) {
	t.Parallel()
	e := setup(t, options{env: map[string]string{"API_RATE_LIMIT": "1000000"}})
	key := e.signup("drain")
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 16)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := e.try(req{method: "GET", path: "/usage", key: key})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				statuses[r.Status]++
				mu.Unlock()
			}
		}()
	}
	// Traffic before, during and after the drain: wait on the answers
	// counted, not on the clock.
	answered := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, c := range statuses {
			n += c
		}
		return n
	}
	eventually(t, 20*time.Second, "100 answers before SIGTERM", func() bool { return answered() >= 100 })
	if err := e.stack.StopInstance("usage", 0); err != nil {
		t.Errorf("usage[0] did not shut down cleanly: %v", err)
	}
	after := answered()
	eventually(t, 20*time.Second, "100 answers after the drain", func() bool { return answered() >= after+100 })
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for s := range statuses {
		if s != 200 && s != 503 {
			t.Fatalf("unexpected status %d (%v)", s, statuses)
		}
	}
	if n := e.queryInt(`SELECT count(*) FROM usage_events`); n != int64(statuses[200]) {
		t.Fatalf("%d rows for %d acknowledged requests (%v)", n, statuses[200], statuses)
	}
	if statuses[200] < 10 {
		t.Fatalf("too few requests to mean anything: %v", statuses)
	}
	t.Logf("statuses %v", statuses)
}

// TestRevocationBound: a revoked key stops working within AUTH_CACHE_TTL
// on instances that had it cached.
func TestRevocationBound(t *testing.T) {
	t.Parallel()
	e := setup(t, options{replicas: 1, env: map[string]string{"AUTH_CACHE_TTL": "1"}})
	key := e.signup("revoked")
	if r := e.do(req{method: "GET", path: "/me", key: key}); r.Status != 200 {
		t.Fatalf("%d", r.Status)
	}
	e.queryInt(`WITH u AS (UPDATE api_keys SET revoked_at = now() RETURNING 1) SELECT count(*) FROM u`)
	revoked := time.Now()
	eventually(t, 3*time.Second, "revoked key refused", func() bool {
		return e.do(req{method: "GET", path: "/me", key: key}).Status == 401
	})
	if d := time.Since(revoked); d > 2*time.Second {
		t.Fatalf("revoked key accepted for %v, bound is 1 s", d)
	}
	expectProblem(t, e.do(req{method: "GET", path: "/usage", key: key}), 401, "unauthorized")
}
