// Package instance holds one function instance's dependencies and the
// request pipeline every function shares: authentication, rate limiting
// and metering, probes, and shutdown.
//
// Nothing connects at start-up or in init(): the Postgres pool and the
// Redis client are created on first use, once, safely under concurrency,
// and a failed creation (for example migrations while Postgres is down)
// is retried by the next request rather than remembered.
package instance

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/auth"
	"github.com/ratebill/platform/shared/config"
	"github.com/ratebill/platform/shared/httpapi"
	"github.com/ratebill/platform/shared/postgres"
	"github.com/ratebill/platform/shared/ratelimit"
	"github.com/ratebill/platform/shared/usage"
)

// Instance is one function instance's configuration and dependencies.
type Instance struct {
	Config config.Config
	Logger *slog.Logger

	mu       sync.Mutex
	pool     *pgxpool.Pool
	store    *postgres.Store
	auth     *auth.Authenticator
	recorder *usage.Recorder
	rdb      *redis.Client
	limiter  *ratelimit.Limiter
	closed   bool
	inflight atomic.Int64
}

// New returns an Instance for cfg. It does no I/O.
func New(cfg config.Config, logger *slog.Logger) *Instance {
	if logger == nil {
		logger = slog.Default()
	}
	return &Instance{Config: cfg, Logger: logger}
}

var (
	defaultMu   sync.Mutex
	defaultInst *Instance
)

// Default returns the process's Instance, configured from the environment
// on first use. A configuration error is returned every time (it cannot
// heal without a restart); cmd mains call Default at start-up so a bad
// variable stops the process with one line naming it.
func Default() (*Instance, error) {
	defaultMu.Lock()
	defer defaultMu.Unlock()
	if defaultInst != nil {
		return defaultInst, nil
	}
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return nil, err
	}
	logger := NewLogger(cfg)
	slog.SetDefault(logger)
	defaultInst = New(cfg, logger)
	return defaultInst, nil
}

// ErrClosed is returned after Close.
var ErrClosed = errors.New("instance: shutting down")

// Store returns the Postgres store, opening the pool (and migrating, with
// INIT_DB) on first use.
func (i *Instance) Store(ctx context.Context) (*postgres.Store, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed {
		return nil, ErrClosed
	}
	if i.store != nil {
		return i.store, nil
	}
	if err := i.Config.RequireDatabase(); err != nil {
		return nil, err
	}
	pool, err := postgres.Open(ctx, i.Config)
	if err != nil {
		return nil, err
	}
	if i.Config.InitDB {
		mctx, cancel := context.WithTimeout(ctx, i.Config.DBPoolTimeout)
		err := postgres.MigratePool(mctx, pool)
		cancel()
		if err != nil {
			pool.Close()
			return nil, fmt.Errorf("applying migrations: %w", err)
		}
	}
	i.pool = pool
	i.store = postgres.NewStore(pool)
	i.auth = auth.New(i.store, i.Config.AuthCacheTTL, i.Config.AuthCacheSize)
	i.recorder = usage.New(i.store, usage.Options{MaxBatch: i.Config.UsageBatchMax, Timeout: i.Config.UsageWriteTimeout})
	return i.store, nil
}

// Authenticator returns the key authenticator (needs the store).
func (i *Instance) Authenticator(ctx context.Context) (*auth.Authenticator, error) {
	if _, err := i.Store(ctx); err != nil {
		return nil, err
	}
	return i.auth, nil
}

// Recorder returns the usage recorder (needs the store).
func (i *Instance) Recorder(ctx context.Context) (*usage.Recorder, error) {
	if _, err := i.Store(ctx); err != nil {
		return nil, err
	}
	return i.recorder, nil
}

// Limiter returns the rate limiter, creating the Redis client on first use.
func (i *Instance) Limiter() (*ratelimit.Limiter, error) {
	rdb, err := i.Redis()
	if err != nil {
		return nil, err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.limiter == nil {
		i.limiter = ratelimit.New(rdb)
	}
	return i.limiter, nil
}

// Redis returns the Redis client, created on first use.
func (i *Instance) Redis() (*redis.Client, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed {
		return nil, ErrClosed
	}
	if i.rdb != nil {
		return i.rdb, nil
	}
	opt, err := RedisOptions(i.Config)
	if err != nil {
		return nil, err
	}
	i.rdb = redis.NewClient(opt)
	return i.rdb, nil
}

// RedisOptions maps the configuration onto go-redis options: the URL,
// the AUTH string override, and Memorystore's server CA for rediss://.
// Timeouts are short: a rate-limit decision that cannot be made quickly
// is answered with 503 (or served unlimited with RATE_LIMIT_FAIL_OPEN).
func RedisOptions(cfg config.Config) (*redis.Options, error) {
	if err := cfg.RequireRedis(); err != nil {
		return nil, err
	}
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	if cfg.RedisPassword != "" {
		opt.Password = cfg.RedisPassword
	}
	if cfg.RedisCACert != "" {
		if opt.TLSConfig == nil {
			return nil, errors.New("REDIS_CA_CERT is set but REDIS_URL is not rediss://")
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(cfg.RedisCACert)) {
			return nil, errors.New("REDIS_CA_CERT: no PEM certificate found")
		}
		opt.TLSConfig.RootCAs = pool
		opt.TLSConfig.MinVersion = tls.VersionTLS12
	}
	opt.DialTimeout = 2 * time.Second
	opt.ReadTimeout = time.Second
	opt.WriteTimeout = time.Second
	opt.PoolTimeout = 2 * time.Second
	opt.MaxRetries = 1
	opt.PoolSize = 128
	opt.MinIdleConns = 0
	return opt, nil
}

// Check is the outcome of one readiness check.
type Check struct {
	Name    string
	Err     error
	Latency time.Duration
}

// Check pings Postgres and Redis concurrently and reports each.
func (i *Instance) Check(ctx context.Context) []Check {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	out := make([]Check, 2)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		start := time.Now()
		s, err := i.Store(ctx)
		if err == nil {
			err = s.Ping(ctx)
		}
		out[0] = Check{Name: "postgres", Err: err, Latency: time.Since(start)}
	}()
	go func() {
		defer wg.Done()
		start := time.Now()
		rdb, err := i.Redis()
		if err == nil {
			err = rdb.Ping(ctx).Err()
		}
		out[1] = Check{Name: "redis", Err: err, Latency: time.Since(start)}
	}()
	wg.Wait()
	return out
}

// Close flushes pending usage writes, then closes the pool and the Redis
// client. Requests arriving afterwards get 503.
func (i *Instance) Close(ctx context.Context) error {
	i.mu.Lock()
	i.closed = true
	rec, pool, rdb := i.recorder, i.pool, i.rdb
	i.mu.Unlock()
	var errs []error
	if rec != nil {
		if err := rec.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("flushing usage: %w", err))
		}
	}
	if pool != nil {
		pool.Close()
	}
	if rdb != nil {
		if err := rdb.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Lazy returns an http.HandlerFunc for functions.HTTP that builds the
// function's handler from the Default instance on first request. A
// configuration error answers 503 (and was already fatal at start-up in
// the cmd mains).
func Lazy(build func(*Instance) http.Handler) http.HandlerFunc {
	var (
		mu    sync.Mutex
		built atomic.Pointer[http.Handler]
	)
	return func(w http.ResponseWriter, r *http.Request) {
		if h := built.Load(); h != nil {
			(*h).ServeHTTP(w, r)
			return
		}
		mu.Lock()
		if built.Load() == nil {
			inst, err := Default()
			if err != nil {
				mu.Unlock()
				// No instance, so no middleware: answer like it would.
				id := uuid.NewString()
				slog.Error("configuration", "error", err.Error(), "request_id", id)
				w.Header().Set(httpapi.RequestIDHeader, id)
				w.Header().Set("Retry-After", "30")
				httpapi.WriteProblem(w, httpapi.Problem{Type: httpapi.ProblemType(shared.EUnavailable), Title: "Service Unavailable",
					Status: http.StatusServiceUnavailable, Detail: "the service is misconfigured", Instance: r.URL.Path, RequestID: id})
				return
			}
			h := build(inst)
			built.Store(&h)
		}
		mu.Unlock()
		(*built.Load()).ServeHTTP(w, r)
	}
}
