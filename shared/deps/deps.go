// Package deps builds one function instance's dependencies from its
// configuration, without I/O: the Postgres store opens its pool on first
// use, the Redis client connects on its first command. A cmd main builds
// them once, hands each handler the few it uses, and closes them on
// SIGTERM (Close flushes pending usage before closing the pools).
//
// Deps is a constructor and an owner, not a container handlers reach
// into: nothing on the request path holds it.
package deps

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratebill/platform/shared/auth"
	"github.com/ratebill/platform/shared/config"
	"github.com/ratebill/platform/shared/gate"
	"github.com/ratebill/platform/shared/httpapi"
	"github.com/ratebill/platform/shared/meter"
	"github.com/ratebill/platform/shared/postgres"
	"github.com/ratebill/platform/shared/pricing"
	"github.com/ratebill/platform/shared/ratelimit"
	"github.com/ratebill/platform/shared/redisconn"
	"github.com/ratebill/platform/shared/telemetry"
)

// Deps is one instance's dependencies.
type Deps struct {
	Config   config.Config
	Logger   *slog.Logger
	Store    *postgres.Store
	Redis    *redis.Client
	Limiter  *ratelimit.Limiter
	Auth     *auth.Authenticator
	Recorder *meter.Recorder
	Denials  *meter.Denials
	Gate     *gate.Gate
	// Telemetry is the instance's metrics and tracing; nil: off.
	Telemetry *telemetry.Telemetry
}

// Option changes what New builds.
type Option func(*Deps)

// WithTelemetry instruments the dependencies (gate, recorder,
// authenticator, and the routers built on them) with t, which Close
// flushes last.
func WithTelemetry(t *telemetry.Telemetry) Option {
	return func(d *Deps) { d.Telemetry = t }
}

// New builds the dependencies for cfg. It does no I/O; an error is a
// configuration error (say, a REDIS_URL that does not parse).
func New(cfg config.Config, logger *slog.Logger, opts ...Option) (*Deps, error) {
	if logger == nil {
		logger = slog.Default()
	}
	rdb, err := redisconn.New(cfg)
	if err != nil {
		return nil, err
	}
	store := postgres.New(cfg)
	d := &Deps{Config: cfg, Logger: logger, Store: store, Redis: rdb}
	for _, o := range opts {
		o(d)
	}
	d.Limiter = ratelimit.New(rdb).WithLedger(store)
	d.Auth = auth.New(store, cfg.AuthCacheTTL, cfg.AuthCacheSize).WithNegativeCache(cfg.AuthNegativeTTL, cfg.AuthCacheSize).
		WithUseTracking(store, cfg.KeyLastUsedFlush, logger).WithTelemetry(d.Telemetry)
	d.Recorder = meter.New(store, meter.Options{MaxBatch: cfg.UsageBatchMax, Timeout: cfg.UsageWriteTimeout, Telemetry: d.Telemetry})
	d.Denials = meter.NewDenials(store, cfg.UsageDeniedFlush, logger)
	d.Gate = gate.New(d.Auth, d.Limiter, d.Recorder, gate.Options{
		UserLimit:     ratelimit.Limit{Requests: cfg.RateLimit, Window: cfg.RateWindow},
		SignupLimit:   ratelimit.Limit{Requests: cfg.SignupRateLimit, Window: cfg.SignupRateWindow},
		FailOpen:      cfg.RateLimitFailOpen,
		ClientAddr:    httpapi.ClientAddr{Header: cfg.ClientIPHeader, Hops: cfg.TrustedProxyHops},
		AuthFailLimit: ratelimit.Limit{Requests: cfg.AuthFailLimit, Window: cfg.AuthFailWindow},
		DefaultPlan:   pricing.DefaultPlan(cfg.RateLimit, cfg.RateWindow, cfg.UnitPrice, cfg.Currency),
	}).WithReleaser(store).WithTelemetry(d.Telemetry).WithDenials(d.Denials)
	return d, nil
}

// Check is the outcome of one readiness check.
type Check struct {
	Name    string
	Err     error
	Latency time.Duration
}

// Check pings Postgres and Redis concurrently and reports each.
func (d *Deps) Check(ctx context.Context) []Check {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	checks := []struct {
		name string
		ping func(context.Context) error
	}{
		{"postgres", d.Store.Ping},
		{"redis", func(ctx context.Context) error { return d.Redis.Ping(ctx).Err() }},
	}
	out := make([]Check, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			err := c.ping(ctx)
			out[i] = Check{Name: c.name, Err: err, Latency: time.Since(start)}
		}()
	}
	wg.Wait()
	return out
}

// Close flushes pending usage writes, then closes the pool and the Redis
// client, and last flushes the telemetry (the usage still pending when
// the drain began and when it ended, the last batches' metrics and
// spans). Calls arriving afterwards get shared.ErrShuttingDown (503).
func (d *Deps) Close(ctx context.Context) error {
	var errs []error
	d.Telemetry.PendingAtShutdown(ctx, "begin", d.Recorder.Pending())
	if err := d.Recorder.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("flushing usage: %w", err))
	}
	d.Telemetry.PendingAtShutdown(ctx, "end", d.Recorder.Pending())
	// Last use is approximate by design: a flush that fails (Postgres is
	// down) loses only those timestamps, acknowledged to nobody, so it
	// is logged and does not fail the shutdown.
	if err := d.Auth.FlushUse(ctx); err != nil {
		d.Logger.Warn("recording key use at shutdown failed; last_used_at stays older", "error", err.Error())
	}
	// Denials are approximate and never billed: a failed write is logged.
	if err := d.Denials.Flush(ctx); err != nil {
		d.Logger.Warn("recording denials at shutdown failed; they are dropped", "error", err.Error())
	}
	d.Store.Close()
	if err := d.Redis.Close(); err != nil {
		errs = append(errs, fmt.Errorf("closing redis: %w", err))
	}
	// Export failures are logged (telemetry.Setup's error handler); they
	// never fail the drain of a service whose usage is safe.
	if err := d.Telemetry.Shutdown(ctx); err != nil {
		d.Logger.Warn("flushing telemetry at shutdown failed", "error", err.Error())
	}
	return errors.Join(errs...)
}
