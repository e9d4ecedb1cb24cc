// Command platform runs the whole platform on one machine: `make run`.
//
// It reads .env when present. When DATABASE_URL or REDIS_URL is unset it
// starts a private Postgres or Redis itself, with data under .data/ (kept
// across restarts), installing the server packages first where it can.
// It applies the migrations, then serves every function behind one
// gateway that routes by the shared routing table, at
// http://127.0.0.1:$PORT (8080 by default). By default all four functions
// run in this process (no extra hop); -separate runs each function as its
// own process, as on Cloud Run, behind a reverse-proxying gateway.
// Metrics are served as Prometheus text at
// http://127.0.0.1:9464/metrics (OTEL_EXPORTER=prometheus unless set;
// METRICS_ADDR moves it; with -separate each process has a port of its
// own, printed at start), never on the API's port.
// Ctrl-C or SIGTERM stops everything it started.
//
// The first run creates a local admin operator token and keeps it in
// .data/operator-token (mode 0600); every run makes sure the database
// holds it (as OPERATOR_BOOTSTRAP_TOKEN, unless that is set) and prints
// it with the API's URL.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/joho/godotenv"

	"github.com/ratebill/platform/shared/apikey"
	"github.com/ratebill/platform/shared/config"
	"github.com/ratebill/platform/shared/deps"
	"github.com/ratebill/platform/shared/httpapi"
	"github.com/ratebill/platform/shared/operator"
	"github.com/ratebill/platform/shared/routes"
	"github.com/ratebill/platform/shared/serve"
	"github.com/ratebill/platform/shared/telemetry"
	"github.com/ratebill/platform/tools/devserver"
	"github.com/ratebill/platform/tools/gateway"
	"github.com/ratebill/platform/tools/stack"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("platform: ")
	separate := flag.Bool("separate", false, "run each function as its own process behind a proxying gateway")
	usageReplicas := flag.Int("usage-replicas", 2, "with -separate: processes of the usage function")
	dataDir := flag.String("data", ".data", "folder for the private servers' data")
	flag.Parse()
	if err := godotenv.Load(); err != nil && !errors.Is(err, fs.ErrNotExist) {
		log.Fatalf(".env: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *separate, *usageReplicas, *dataDir); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, separate bool, usageReplicas int, dataDir string) error {
	host := envOr("HOST", "127.0.0.1")
	port := envOr("PORT", "8080")
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return fmt.Errorf("listening on %s:%s (set PORT to use another port): %w", host, port, err)
	}
	defer ln.Close()

	var stops []func() error
	defer func() {
		for i := len(stops) - 1; i >= 0; i-- {
			if err := stops[i](); err != nil {
				log.Printf("stopping: %v", err)
			}
		}
	}()
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return err
	}
	needPG, needRedis := os.Getenv("DATABASE_URL") == "", os.Getenv("REDIS_URL") == ""
	if needPG || needRedis {
		if err := devserver.EnsureBinaries(ctx, os.Stderr); err != nil {
			return err
		}
	}
	if needPG {
		pgLog, pgPort := logFile(abs, "postgres.log"), 0
		var url string
		pg, err := devserver.Supervise(ctx, "Postgres", func(ctx context.Context) (devserver.Server, error) {
			p, err := devserver.StartPostgres(ctx, filepath.Join(abs, "postgres"), pgPort, pgLog)
			if err == nil {
				pgPort, url = p.Port, p.URL
			}
			return p, err
		}, log.Printf)
		if err != nil {
			return fmt.Errorf("starting Postgres: %w", err)
		}
		stops = append(stops, pg.Stop)
		os.Setenv("DATABASE_URL", url)
		log.Printf("started Postgres at %s (data in %s; restarted if it dies)", url, filepath.Join(abs, "postgres"))
	} else {
		log.Printf("using DATABASE_URL from the environment")
	}
	if needRedis {
		rdLog, rdPort := logFile(abs, "redis.log"), 0
		var url string
		rd, err := devserver.Supervise(ctx, "Redis", func(ctx context.Context) (devserver.Server, error) {
			r, err := devserver.StartRedis(ctx, filepath.Join(abs, "redis"), rdPort, rdLog)
			if err == nil {
				rdPort, url = r.Port, r.URL
			}
			return r, err
		}, log.Printf)
		if err != nil {
			return fmt.Errorf("starting Redis: %w", err)
		}
		stops = append(stops, rd.Stop)
		os.Setenv("REDIS_URL", url)
		log.Printf("started Redis at %s (data in %s; restarted if it dies)", url, filepath.Join(abs, "redis"))
	} else {
		log.Printf("using REDIS_URL from the environment")
	}

	tokenFile := filepath.Join(abs, "operator-token")
	if os.Getenv("OPERATOR_BOOTSTRAP_TOKEN") == "" {
		tok, err := localOperatorToken(tokenFile)
		if err != nil {
			return err
		}
		os.Setenv("OPERATOR_BOOTSTRAP_TOKEN", tok)
	} else {
		tokenFile = "OPERATOR_BOOTSTRAP_TOKEN"
	}
	if os.Getenv("OTEL_EXPORTER") == "" {
		// Locally, metrics as Prometheus text on METRICS_ADDR
		// (127.0.0.1:9464 by default), a port of their own.
		os.Setenv("OTEL_EXPORTER", "prometheus")
	}
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	logger := httpapi.NewLogger(os.Stdout, cfg.LogLevel)
	slog.SetDefault(logger)
	tel, err := telemetry.Setup(ctx, cfg, logger)
	if err != nil {
		return fmt.Errorf("telemetry (OTEL_EXPORTER, METRICS_ADDR): %w", err)
	}
	d, err := deps.New(cfg, logger, deps.WithTelemetry(tel))
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	// Migrate now (INIT_DB), so a broken database shows before the URL.
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	err = d.Store.Open(sctx)
	cancel()
	if err != nil {
		return fmt.Errorf("connecting to Postgres: %w", err)
	}
	// The functions would insert it on the first operator request; doing
	// it now means the printed token works at once.
	sctx, cancel = context.WithTimeout(ctx, 30*time.Second)
	_, err = d.Store.EnsureBootstrapToken(sctx, apikey.Hash(cfg.OperatorBootstrapToken), operator.Token.Display(cfg.OperatorBootstrapToken))
	cancel()
	if err != nil {
		return fmt.Errorf("storing the local operator token: %w", err)
	}

	backends := map[string]http.Handler{}
	if separate {
		// The same supervisor as the test stack: each function built and
		// run as its own process, as on Cloud Run (this process migrated
		// already, so INIT_DB=false; behind the gateway's proxy, one hop).
		logDir := filepath.Join(abs, "logs")
		if err := os.MkdirAll(logDir, 0o755); err != nil {
			return err
		}
		fleet, err := stack.StartFleet(stack.FleetOptions{
			Env:      append(os.Environ(), "HOST=127.0.0.1", "INIT_DB=false", "TRUSTED_PROXY_HOPS=1"),
			Replicas: map[string]int{routes.Usage: max(usageReplicas, 1)},
			LogDir:   logDir,
			Dir:      ".",
			// Each process serves its own metrics on a port of its own.
			Metrics: cfg.OTelExporter == telemetry.ExporterPrometheus,
		})
		if err != nil {
			return err
		}
		stops = append(stops, fleet.Stop)
		log.Printf("started the functions as separate processes %v (logs in %s)", fleet.Instances, logDir)
		for fn, urls := range fleet.Metrics {
			log.Printf("metrics of %s: %v", fn, urls)
		}
		for fn, urls := range fleet.Instances {
			if backends[fn], err = gateway.Proxy(urls); err != nil {
				return err
			}
		}
	} else if backends, err = gateway.Functions(d); err != nil {
		return err
	}
	gw, err := gateway.New(backends)
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	fmt.Printf("\n  API ready at %s\n  docs:      %s/docs\n  health:    %s/health\n  dashboard: %s/dashboard (paste an API key)\n  console:   %s/console (paste the operator token below)\n", base, base, base, base, base)
	if u := tel.MetricsURL(); u != "" {
		fmt.Printf("  metrics:   %s (Prometheus text; docs/observability.md)\n", u)
	}
	fmt.Printf("  operator (admin) token, from %s:\n    export RATEBILL_URL=%s RATEBILL_TOKEN=%s\n    curl -H \"Authorization: Bearer $RATEBILL_TOKEN\" $RATEBILL_URL/admin/users\n", tokenFile, base, cfg.OperatorBootstrapToken)
	fmt.Printf("  (Ctrl-C stops everything)\n\n")
	// The same server and drain as a deployed function: timeouts, header
	// limit, Shutdown on SIGTERM, then pending usage flushed.
	return serve.Serve(ctx, ln, serve.NewServer(gw, serve.TimeoutsOf(cfg)), d)
}

// localOperatorToken returns the operator token kept in path, creating
// it (mode 0600, its folder 0700 if new) on the first run.
func localOperatorToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		tok := strings.TrimSpace(string(b))
		if operator.Token.Validate(tok) != nil {
			return "", fmt.Errorf("%s does not hold a well-formed operator token; delete it to get a new one", path)
		}
		return tok, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	tok, err := operator.Token.Generate(nil)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	// O_EXCL: two runs starting at once cannot overwrite each other's.
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", fmt.Errorf("creating %s: %w", path, err)
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	log.Printf("created a local admin operator token in %s", path)
	return tok, nil
}

func logFile(dir, name string) io.Writer {
	os.MkdirAll(dir, 0o755)
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return io.Discard
	}
	return f
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
