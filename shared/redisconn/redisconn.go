// Package redisconn maps the configuration onto a go-redis client: the
// URL, Memorystore's AUTH string and server CA, and timeouts short enough
// that a rate-limit decision which cannot be made quickly is answered
// with 503 (or served unlimited with RATE_LIMIT_FAIL_OPEN).
//
// Creating a client does no I/O: go-redis connects on the first command,
// so a function instance starts without waiting for Redis.
package redisconn

import (
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratebill/platform/shared/config"
	"github.com/ratebill/platform/shared/redistls"
)

// Options maps cfg onto go-redis options.
func Options(cfg config.Config) (*redis.Options, error) {
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
		// Memorystore's certificate names its IP only in the legacy CN:
		// verify the chain against the instance's CA, not the host name.
		tc, err := redistls.Config([]byte(cfg.RedisCACert))
		if err != nil {
			return nil, fmt.Errorf("REDIS_CA_CERT: %w", err)
		}
		opt.TLSConfig = tc
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

// New returns a client for cfg. It does not connect.
func New(cfg config.Config) (*redis.Client, error) {
	opt, err := Options(cfg)
	if err != nil {
		return nil, err
	}
	return redis.NewClient(opt), nil
}
