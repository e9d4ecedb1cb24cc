// Command loadtest is the platform's load test: `make loadtest`.
//
// It reads the seed's variables, API_BASE (http://127.0.0.1:8080),
// LT_USERS (100), LT_REQUESTS (10000), LT_CONCURRENCY (100) and
// LT_ENDPOINT (/usage); flags override them. It signs up fresh users,
// sends the requests spread over them, shows progress, reports
// throughput, latency percentiles, statuses and errors, and checks that
// no user was admitted beyond its limit and that GET /billing counts
// exactly the admitted requests. It exits 1 when a check fails, 2 when
// the run could not happen.
//
//	go run ./tools/cmd/loadtest -c 50 -n 20000          # closed loop
//	go run ./tools/cmd/loadtest -rate 10000 -n 100000   # open loop
//	go run ./tools/cmd/loadtest -json                   # machine-readable
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/ratebill/platform/tools/loadtest"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cfg, err := loadtest.FromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		return 2
	}
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.StringVar(&cfg.Base, "base", cfg.Base, "API base URL (API_BASE)")
	fs.IntVar(&cfg.Users, "users", cfg.Users, "users to sign up (LT_USERS)")
	fs.IntVar(&cfg.Requests, "n", cfg.Requests, "requests to send (LT_REQUESTS)")
	fs.IntVar(&cfg.Concurrency, "c", cfg.Concurrency, "workers: requests in flight at most (LT_CONCURRENCY)")
	fs.StringVar(&cfg.Endpoint, "endpoint", cfg.Endpoint, "path to request with each user's key (LT_ENDPOINT)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "open loop: requests per second offered on a fixed schedule (0: closed loop)")
	fs.DurationVar(&cfg.MaxDuration, "max-duration", 10*time.Minute, "stop sending after this long")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "timeout of one request")
	fs.BoolVar(&cfg.Warmup, "warmup", false, "send one unmeasured request per user first (fills the servers' key caches)")
	fs.BoolVar(&cfg.NoChecks, "no-checks", false, "skip the limit and billing checks (for a server that is not the platform)")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "report the CPU time this process and its descendants use per request (Linux)")
	asJSON := fs.Bool("json", false, "print the report as JSON on stdout")
	asTSV := fs.Bool("tsv", false, "print one tab-separated line: "+tsvHeader)
	quiet := fs.Bool("q", false, "no progress display")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	progress := os.Stdout
	if *asJSON || *asTSV {
		progress = os.Stderr
	}
	if !*quiet {
		cfg.Progress = progress
		cfg.Terminal = term.IsTerminal(int(progress.Fd()))
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rep, err := loadtest.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		return 2
	}
	switch {
	case *asTSV:
		fmt.Println(tsv(rep))
	case *asJSON:
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	default:
		rep.WriteText(os.Stdout)
	}
	if !rep.OK {
		return 1
	}
	return 0
}

// tsvHeader names the columns of -tsv, for scripts (scripts/bench.sh).
const tsvHeader = "rps p50_ms p90_ms p99_ms p999_ms max_ms client_cpu_us server_cpu_us requests admitted non2xx_non429 errors ok"

func tsv(r *loadtest.Report) string {
	odd, errs := 0, 0
	for code, n := range r.Status {
		if code != 200 && code != 429 {
			odd += n
		}
	}
	for _, n := range r.Errors {
		errs += n
	}
	return fmt.Sprintf("%.0f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.1f\t%.1f\t%d\t%d\t%d\t%d\t%t",
		r.RPS, r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.P999, r.Latency.Max,
		r.ClientCPUPerRequest, r.ServerCPUPerRequest, r.Requests, r.Admitted, odd, errs, r.OK)
}
