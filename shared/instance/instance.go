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

	// Dependencies are built once, under their mutex, and then read on
	// every request without locking.
	pgMu     sync.Mutex
	pg       atomic.Pointer[pgDeps]
	redisMu  sync.Mutex
	redis    atomic.Pointer[redisDeps]
	closed   atomic.Bool
	inflight atomic.Int64
}

// pgDeps is everything built on the Postgres pool.
type pgDeps struct {
	pool     *pgxpool.Pool
	store    *postgres.Store
	auth     *auth.Authenticator
	recorder *usage.Recorder
}

// redisDeps is everything built on the Redis client.
type redisDeps struct {
	rdb     *redis.Client
	limiter *ratelimit.Limiter
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

// postgresDeps returns the Postgres dependencies, opening the pool (and
// migrating, with INIT_DB) on first use. A failure is returned, not
// remembered: the next request tries again. Building holds only pgMu, so a
// slow or failing database never delays requests that need only Redis.
func (i *Instance) postgresDeps(ctx context.Context) (*pgDeps, error) {
	if i.closed.Load() {
		return nil, ErrClosed
	}
	if d := i.pg.Load(); d != nil {
		return d, nil
	}
	i.pgMu.Lock()
	defer i.pgMu.Unlock()
	if i.closed.Load() {
		return nil, ErrClosed
	}
	if d := i.pg.Load(); d != nil {
		return d, nil
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
	store := postgres.NewStore(pool)
	d := &pgDeps{
		pool:     pool,
		store:    store,
		auth:     auth.New(store, i.Config.AuthCacheTTL, i.Config.AuthCacheSize),
		recorder: usage.New(store, usage.Options{MaxBatch: i.Config.UsageBatchMax, Timeout: i.Config.UsageWriteTimeout}),
	}
	i.pg.Store(d)
	return d, nil
}

// Store returns the Postgres store, opening the pool on first use.
func (i *Instance) Store(ctx context.Context) (*postgres.Store, error) {
	d, err := i.postgresDeps(ctx)
	if err != nil {
		return nil, err
	}
	return d.store, nil
}

// Authenticator returns the key authenticator (needs the store).
func (i *Instance) Authenticator(ctx context.Context) (*auth.Authenticator, error) {
	d, err := i.postgresDeps(ctx)
	if err != nil {
		return nil, err
	}
	return d.auth, nil
}

// Recorder returns the usage recorder (needs the store).
func (i *Instance) Recorder(ctx context.Context) (*usage.Recorder, error) {
	d, err := i.postgresDeps(ctx)
	if err != nil {
		return nil, err
	}
	return d.recorder, nil
}

// redisDeps returns the Redis client and the limiter, created on first use.
func (i *Instance) redisDeps() (*redisDeps, error) {
	if i.closed.Load() {
		return nil, ErrClosed
	}
	if d := i.redis.Load(); d != nil {
		return d, nil
	}
	i.redisMu.Lock()
	defer i.redisMu.Unlock()
	if i.closed.Load() {
		return nil, ErrClosed
	}
	if d := i.redis.Load(); d != nil {
		return d, nil
	}
	opt, err := RedisOptions(i.Config)
	if err != nil {
		return nil, err
	}
	rdb := redis.NewClient(opt)
	d := &redisDeps{rdb: rdb, limiter: ratelimit.New(rdb)}
	i.redis.Store(d)
	return d, nil
}

// Limiter returns the rate limiter, creating the Redis client on first use.
func (i *Instance) Limiter() (*ratelimit.Limiter, error) {
	d, err := i.redisDeps()
	if err != nil {
		return nil, err
	}
	return d.limiter, nil
}

// Redis returns the Redis client, created on first use.
func (i *Instance) Redis() (*redis.Client, error) {
	d, err := i.redisDeps()
	if err != nil {
		return nil, err
	}
	return d.rdb, nil
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
	i.closed.Store(true)
	// Taking the mutexes waits for a creation in progress, so whatever
	// it builds is closed here too.
	i.pgMu.Lock()
	pg := i.pg.Load()
	i.pgMu.Unlock()
	i.redisMu.Lock()
	rd := i.redis.Load()
	i.redisMu.Unlock()
	var errs []error
	if pg != nil {
		if err := pg.recorder.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("flushing usage: %w", err))
		}
		pg.pool.Close()
	}
	if rd != nil {
		if err := rd.rdb.Close(); err != nil {
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
