package loadtest_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ratebill/platform/shared/config"
	"github.com/ratebill/platform/shared/deps"
	"github.com/ratebill/platform/shared/httpapi"
	"github.com/ratebill/platform/tools/gateway"
	"github.com/ratebill/platform/tools/loadtest"
	"github.com/ratebill/platform/tools/stack"
)

// platform serves the four functions in this process behind the gateway
// (as `make run` does), on the test's own database and Redis.
func platform(t *testing.T, env map[string]string) (base, dbURL string) {
	return platformTB(t, env)
}

func platformTB(t testing.TB, env map[string]string) (base, dbURL string) {
	t.Helper()
	dbURL = stack.Postgres(t)
	rd := stack.Redis(t)
	vars := map[string]string{"DATABASE_URL": dbURL, "REDIS_URL": rd.URL, "INIT_DB": "false"}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	d, err := deps.New(cfg, httpapi.NewLogger(io.Discard, cfg.LogLevel))
	if err != nil {
		t.Fatal(err)
	}
	fns, err := gateway.Functions(d)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(fns)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.Close(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return srv.URL, dbURL
}

// TestAgainstRealPlatform runs the load tool, closed and open loop,
// against the real handlers with real Postgres and Redis, with a limit
// small enough that a third of the requests are denied: every check must
// pass, and the rows in Postgres must equal the admitted requests.
func TestAgainstRealPlatform(t *testing.T) {
	t.Parallel()
	base, dbURL := platform(t, map[string]string{"API_RATE_LIMIT": "40", "LOG_LEVEL": "warn"})
	var admitted int
	for _, rate := range []float64{0, 400} {
		rep, err := loadtest.Run(context.Background(), loadtest.Config{
			Base: base, Users: 5, Requests: 300, Concurrency: 10, Endpoint: "/usage", Rate: rate,
		})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK {
			t.Fatalf("rate %v: checks failed: %+v", rate, rep.Checks)
		}
		// 5 fresh users × limit 40 = 200 admitted, 100 denied.
		if rep.Requests != 300 || rep.Admitted != 200 || rep.Status[http.StatusTooManyRequests] != 100 || len(rep.Checks) != 3 {
			t.Fatalf("rate %v: report %+v: want 200 admitted, 100 denied, 3 checks", rate, rep)
		}
		admitted += rep.Admitted
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var rows int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM usage_events`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != admitted {
		t.Fatalf("%d usage rows in Postgres, want the %d admitted requests", rows, admitted)
	}
}

// TestVerifyAgainstRealPlatform: LT_ENDPOINT=/verify against the real
// handlers: denials are 200s with valid false, and the checks (limit,
// billing equals admitted) pass on the real platform.
func TestVerifyAgainstRealPlatform(t *testing.T) {
	t.Parallel()
	base, _ := platform(t, map[string]string{"API_RATE_LIMIT": "40", "LOG_LEVEL": "warn"})
	rep, err := loadtest.Run(context.Background(), loadtest.Config{Base: base, Users: 5, Requests: 300, Concurrency: 10, Endpoint: "/verify"})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Requests != 300 || rep.Admitted != 200 || rep.Status[http.StatusOK] != 300 || len(rep.Checks) != 3 {
		t.Fatalf("report %+v: want 300 answers of 200, 200 admitted, 3 checks ok", rep)
	}
}

// BenchmarkInProcessPlatform runs the load tool against the in-process
// platform (handlers + gateway + HTTP server in this process), so that
// `-cpuprofile` shows the client and server side of the hot path in one
// profile. One op is one request; 50 workers, closed loop.
func BenchmarkInProcessPlatform(b *testing.B) {
	base, _ := platformTB(b, map[string]string{"API_RATE_LIMIT": "1000000000", "LOG_LEVEL": "warn"})
	rep, err := loadtest.Run(context.Background(), loadtest.Config{
		Base: base, Users: 100, Requests: max(b.N, 100), Concurrency: 50, Endpoint: "/usage",
	})
	if err != nil {
		b.Fatal(err)
	}
	if !rep.OK {
		b.Fatalf("checks failed: %+v", rep.Checks)
	}
	b.ReportMetric(rep.RPS, "req/s")
	b.ReportMetric(rep.Latency.P99, "p99-ms")
}
