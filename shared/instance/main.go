package instance

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
	"github.com/joho/godotenv"
)

// ShutdownGrace bounds the drain on SIGTERM; Cloud Run allows 10 s.
const ShutdownGrace = 8 * time.Second

// Main runs one function alone the way Cloud Run does: it reads .env when
// present (local runs), validates the configuration (a bad variable exits
// with one line naming it), serves the function registered as target with
// functions-framework-go on $PORT (default 8080), and on SIGTERM or
// SIGINT waits for in-flight requests, flushes pending usage writes and
// closes the pools before exiting.
func Main(target string) {
	if err := godotenv.Load(); err != nil && !errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(os.Stderr, ".env: %v\n", err)
		os.Exit(2)
	}
	inst, err := Default()
	if err != nil {
		fmt.Fprintf(os.Stderr, "configuration: %v\n", err)
		os.Exit(2)
	}
	if os.Getenv("FUNCTION_TARGET") == "" {
		os.Setenv("FUNCTION_TARGET", target)
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- funcframework.StartHostPort(os.Getenv("HOST"), port) }()
	inst.Logger.Info("serving function", "function", os.Getenv("FUNCTION_TARGET"), "port", port)
	select {
	case err := <-errc:
		fmt.Fprintf(os.Stderr, "serving: %v\n", err)
		os.Exit(1)
	case <-ctx.Done():
	}
	inst.Logger.Info("shutting down: draining requests and flushing usage")
	dctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	if err := inst.Shutdown(dctx); err != nil {
		inst.Logger.Error("shutdown", "error", err.Error())
		os.Exit(1)
	}
	inst.Logger.Info("shutdown complete")
}

// Shutdown waits until in-flight requests have finished (or ctx ends),
// then closes the instance (flushing usage).
func (i *Instance) Shutdown(ctx context.Context) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for i.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			slog.Warn("shutdown: requests still in flight at the deadline", "inflight", i.inflight.Load())
			return i.Close(ctx)
		case <-tick.C:
		}
	}
	return i.Close(ctx)
}

// track counts in-flight requests for Shutdown.
func (i *Instance) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i.inflight.Add(1)
		defer i.inflight.Add(-1)
		h.ServeHTTP(w, r)
	})
}
