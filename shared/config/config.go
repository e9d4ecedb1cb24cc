// Package config reads the platform's settings from the environment.
//
// The variables of the original service keep their names and defaults
// (DATABASE_URL, REDIS_URL, API_RATE_LIMIT, API_RATE_WINDOW,
// BILLING_UNIT_PRICE, INIT_DB, DB_POOL_SIZE, DB_MAX_OVERFLOW,
// DB_POOL_TIMEOUT, DB_POOL_RECYCLE); Google Cloud adds the Cloud SQL
// connector and Memorystore settings. Load takes the lookup function as an
// argument so it is tested without touching the process environment.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/ratebill/platform/shared/apikey"
)

// Config is the whole configuration of one function instance.
type Config struct {
	// DatabaseURL is a libpq-style URL or key/value string. Required unless
	// CloudSQLInstance is set.
	DatabaseURL string
	// CloudSQLInstance is the Cloud SQL instance connection name
	// ("project:region:instance"). When set, connections are dialed through
	// cloud.google.com/go/cloudsqlconn and DatabaseURL only supplies the
	// user, database and options (DB_USER/DB_NAME/DB_PASSWORD also work).
	CloudSQLInstance string
	// CloudSQLIAMAuth enables IAM database authentication: no password, the
	// service account's token is the credential.
	CloudSQLIAMAuth bool
	// CloudSQLPrivateIP dials the instance's private IP (the default on
	// Google Cloud, where instances have no public IP).
	CloudSQLPrivateIP bool
	// DBUser, DBPassword and DBName complete the connection when
	// CloudSQLInstance is set and DatabaseURL is empty.
	DBUser, DBPassword, DBName string

	// RedisURL is redis://[:password@]host:port/db or rediss:// for TLS.
	RedisURL string
	// RedisPassword overrides the URL's password (Memorystore AUTH string,
	// injected from Secret Manager). Never logged.
	RedisPassword string
	// RedisCACert is a PEM bundle trusted for rediss:// (Memorystore's
	// server CA). Empty means the system roots.
	RedisCACert string

	// RateLimit is the number of metered requests a user may make per
	// RateWindow (API_RATE_LIMIT, default 1000).
	RateLimit int64
	// RateWindow is the length of a rate-limit window (API_RATE_WINDOW in
	// whole seconds, default 86400). Windows are aligned to the Unix epoch.
	RateWindow time.Duration
	// RateLimitFailOpen serves metered requests without a limit when Redis
	// is unreachable (RATE_LIMIT_FAIL_OPEN, default false: answer 503).
	RateLimitFailOpen bool
	// SignupRateLimit and SignupRateWindow limit POST /users/ per client IP.
	SignupRateLimit  int64
	SignupRateWindow time.Duration
	// TrustedProxyHops is how many proxies in front of the function append
	// to X-Forwarded-For; the client IP is the entry that many places from
	// the right. 0 means the TCP peer address is the client.
	TrustedProxyHops int
	// ClientIPHeader names a header that the proxy in front sets to the
	// client's address (CLIENT_IP_HEADER; Terraform sets it to the header
	// the Google load balancer adds, X-Ratebill-Client-Ip). When set and
	// present it wins over TrustedProxyHops.
	ClientIPHeader string

	// UnitPrice is the price of one metered request (BILLING_UNIT_PRICE,
	// default 0.01), exact.
	UnitPrice decimal.Decimal
	// Currency is the ISO 4217 code amounts are stated in (BILLING_CURRENCY,
	// default USD).
	Currency string

	// InitDB applies the embedded schema migrations at start-up, under an
	// advisory lock (INIT_DB, default true).
	InitDB bool
	// DBPoolSize and DBMaxOverflow keep the original SQLAlchemy meaning: the
	// pool holds at most DBPoolSize+DBMaxOverflow connections (pgxpool
	// MaxConns) and keeps DBPoolSize of them once opened (MinIdleConns is
	// not forced: connections open lazily).
	DBPoolSize    int
	DBMaxOverflow int
	// DBPoolTimeout bounds the wait for a free connection and the dial.
	DBPoolTimeout time.Duration
	// DBPoolRecycle is pgxpool's MaxConnLifetime.
	DBPoolRecycle time.Duration

	// AuthCacheTTL is how long an instance may trust a looked-up API key
	// without asking Postgres again; a revoked key stops working within it.
	// Zero disables the cache.
	AuthCacheTTL time.Duration
	// AuthCacheSize bounds the number of cached keys per instance.
	AuthCacheSize int
	// AuthNegativeTTL is how long an instance remembers that a
	// well-formed key is unknown, so repeating it costs no lookup
	// (AUTH_NEGATIVE_CACHE_TTL, default 30 s; 0 disables). A key that is
	// issued later cannot be in it: keys are 256 random bits.
	AuthNegativeTTL time.Duration
	// AuthFailLimit failed authentications per AuthFailWindow from one
	// client address are looked up; beyond it, keys that are not cached
	// are refused with 429 without a lookup (AUTH_FAIL_LIMIT, default 100;
	// AUTH_FAIL_WINDOW, default 60 s). 0 disables the limit.
	AuthFailLimit  int64
	AuthFailWindow time.Duration

	// KeysPerUserMax bounds a user's active keys (not revoked, not expired;
	// keys in a rotation's grace period count): POST /keys beyond it is a
	// 409 (KEYS_PER_USER_MAX, default 20).
	KeysPerUserMax int
	// KeyLastUsedFlush is how often at most an instance writes the keys it
	// saw used to api_keys.last_used_at, in one statement
	// (KEYS_LAST_USED_FLUSH, default 60 s): last_used_at lags real use by
	// up to this much.
	KeyLastUsedFlush time.Duration
	// UsageDeniedFlush is how often at most an instance adds the rate-limit
	// denials it counted to the minute rollups, in one statement
	// (USAGE_DENIED_FLUSH, default 10 s): denials in the usage history lag
	// by up to this much, and a crash loses the counts not yet written.
	UsageDeniedFlush time.Duration

	// UsageBatchMax bounds how many usage events share one grouped write.
	UsageBatchMax int
	// UsageWriteTimeout bounds one grouped write.
	UsageWriteTimeout time.Duration

	// HTTPReadHeaderTimeout, HTTPReadTimeout, HTTPWriteTimeout and
	// HTTPIdleTimeout bound how long one client may hold a connection of a
	// function's server (HTTP_READ_HEADER_TIMEOUT 5 s, HTTP_READ_TIMEOUT
	// 10 s, HTTP_WRITE_TIMEOUT 15 s, HTTP_IDLE_TIMEOUT 120 s): a slow client
	// (slowloris on headers or body) is cut off, never served.
	HTTPReadHeaderTimeout, HTTPReadTimeout, HTTPWriteTimeout, HTTPIdleTimeout time.Duration

	// MaxBodyBytes bounds request bodies; larger ones get 413.
	MaxBodyBytes int64
	// LogLevel is the minimum level logged.
	LogLevel slog.Level
	// Project is the Google Cloud project, used to link logs to traces.
	Project string

	// OTelExporter says where metrics and traces go (OTEL_EXPORTER):
	// "none" (the default: no instruments, nothing exported), "prometheus"
	// (metrics as Prometheus text on MetricsAddr; spans are recorded for
	// the logs' trace ids but not exported) or "gcp" (Cloud Monitoring and
	// Cloud Trace). See docs/observability.md.
	OTelExporter string
	// MetricsAddr is the listener of the Prometheus endpoint
	// (METRICS_ADDR, host:port, default 127.0.0.1:9464), a port of its own
	// that no public router reaches.
	MetricsAddr string

	// OperatorBootstrapToken (OPERATOR_BOOTSTRAP_TOKEN; on Google Cloud
	// from Secret Manager) becomes an admin operator token named
	// "bootstrap" on the first operator request, if no token has its
	// hash yet. Empty: none. Never logged.
	OperatorBootstrapToken string
}

// Defaults returns the configuration used when no variable is set.
func Defaults() Config {
	return Config{
		CloudSQLPrivateIP:     true,
		RateLimit:             1000,
		RateWindow:            86400 * time.Second,
		SignupRateLimit:       1000,
		SignupRateWindow:      3600 * time.Second,
		UnitPrice:             decimal.RequireFromString("0.01"),
		Currency:              "USD",
		InitDB:                true,
		DBPoolSize:            20,
		DBMaxOverflow:         40,
		DBPoolTimeout:         30 * time.Second,
		DBPoolRecycle:         1800 * time.Second,
		AuthCacheTTL:          10 * time.Second,
		AuthCacheSize:         100_000,
		AuthNegativeTTL:       30 * time.Second,
		HTTPReadHeaderTimeout: 5 * time.Second,
		HTTPReadTimeout:       10 * time.Second,
		HTTPWriteTimeout:      15 * time.Second,
		HTTPIdleTimeout:       120 * time.Second,
		AuthFailLimit:         100,
		AuthFailWindow:        60 * time.Second,
		KeysPerUserMax:        20,
		KeyLastUsedFlush:      60 * time.Second,
		UsageDeniedFlush:      10 * time.Second,
		UsageBatchMax:         1000,
		UsageWriteTimeout:     5 * time.Second,
		MaxBodyBytes:          16 << 10,
		LogLevel:              slog.LevelInfo,
		OTelExporter:          "none",
		MetricsAddr:           "127.0.0.1:9464",
	}
}

var headerNameRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

// Variables lists every variable Load reads, for documentation and tests.
var Variables = []string{
	"DATABASE_URL", "CLOUD_SQL_INSTANCE", "CLOUD_SQL_IAM_AUTH", "CLOUD_SQL_PRIVATE_IP",
	"DB_USER", "DB_PASSWORD", "DB_NAME",
	"REDIS_URL", "REDIS_PASSWORD", "REDIS_CA_CERT",
	"API_RATE_LIMIT", "API_RATE_WINDOW", "RATE_LIMIT_FAIL_OPEN",
	"SIGNUP_RATE_LIMIT", "SIGNUP_RATE_WINDOW", "TRUSTED_PROXY_HOPS",
	"BILLING_UNIT_PRICE", "BILLING_CURRENCY",
	"INIT_DB", "DB_POOL_SIZE", "DB_MAX_OVERFLOW", "DB_POOL_TIMEOUT", "DB_POOL_RECYCLE",
	"AUTH_CACHE_TTL", "AUTH_CACHE_SIZE", "AUTH_NEGATIVE_CACHE_TTL", "AUTH_FAIL_LIMIT", "AUTH_FAIL_WINDOW",
	"CLIENT_IP_HEADER", "HTTP_READ_HEADER_TIMEOUT", "HTTP_READ_TIMEOUT", "HTTP_WRITE_TIMEOUT", "HTTP_IDLE_TIMEOUT",
	"USAGE_BATCH_MAX", "USAGE_WRITE_TIMEOUT", "KEYS_PER_USER_MAX", "KEYS_LAST_USED_FLUSH", "USAGE_DENIED_FLUSH",
	"MAX_BODY_BYTES", "LOG_LEVEL", "GOOGLE_CLOUD_PROJECT", "OPERATOR_BOOTSTRAP_TOKEN",
	"OTEL_EXPORTER", "METRICS_ADDR",
}

// Load reads the configuration through getenv (os.Getenv in production).
// Unset or empty variables take their defaults. Every invalid variable is
// reported, one line each, naming the variable and what it accepts.
func Load(getenv func(string) string) (Config, error) {
	c := Defaults()
	p := parser{getenv: getenv}

	c.DatabaseURL = p.str("DATABASE_URL")
	c.CloudSQLInstance = p.str("CLOUD_SQL_INSTANCE")
	p.boolean("CLOUD_SQL_IAM_AUTH", &c.CloudSQLIAMAuth)
	p.boolean("CLOUD_SQL_PRIVATE_IP", &c.CloudSQLPrivateIP)
	c.DBUser, c.DBPassword, c.DBName = p.str("DB_USER"), p.str("DB_PASSWORD"), p.str("DB_NAME")
	c.RedisURL = p.str("REDIS_URL")
	c.RedisPassword = p.str("REDIS_PASSWORD")
	c.RedisCACert = p.str("REDIS_CA_CERT")

	p.integer("API_RATE_LIMIT", &c.RateLimit, 1, 1<<40)
	p.seconds("API_RATE_WINDOW", &c.RateWindow, 1, 366*86400)
	p.boolean("RATE_LIMIT_FAIL_OPEN", &c.RateLimitFailOpen)
	p.integer("SIGNUP_RATE_LIMIT", &c.SignupRateLimit, 1, 1<<40)
	p.seconds("SIGNUP_RATE_WINDOW", &c.SignupRateWindow, 1, 366*86400)
	p.integerInt("TRUSTED_PROXY_HOPS", &c.TrustedProxyHops, 0, 16)
	c.ClientIPHeader = p.str("CLIENT_IP_HEADER")
	if c.ClientIPHeader != "" && !headerNameRE.MatchString(c.ClientIPHeader) {
		p.fail("CLIENT_IP_HEADER", c.ClientIPHeader, "an HTTP header name such as X-Ratebill-Client-Ip")
	}

	if v := p.str("BILLING_UNIT_PRICE"); v != "" {
		d, err := decimal.NewFromString(v)
		switch {
		case err != nil || strings.ContainsAny(v, "eE"):
			p.fail("BILLING_UNIT_PRICE", v, "a plain decimal amount such as 0.01")
		case d.IsNegative():
			p.fail("BILLING_UNIT_PRICE", v, "an amount of zero or more")
		case -d.Exponent() > 9:
			p.fail("BILLING_UNIT_PRICE", v, "at most 9 decimal places")
		default:
			c.UnitPrice = d
		}
	}
	if v := p.str("BILLING_CURRENCY"); v != "" {
		if !currencyRE.MatchString(v) {
			p.fail("BILLING_CURRENCY", v, "a three-letter ISO 4217 code such as USD")
		} else {
			c.Currency = v
		}
	}

	p.boolean("INIT_DB", &c.InitDB)
	p.integerInt("DB_POOL_SIZE", &c.DBPoolSize, 1, 10_000)
	p.integerInt("DB_MAX_OVERFLOW", &c.DBMaxOverflow, 0, 10_000)
	p.seconds("DB_POOL_TIMEOUT", &c.DBPoolTimeout, 1, 3600)
	p.seconds("DB_POOL_RECYCLE", &c.DBPoolRecycle, 1, 7*86400)
	p.seconds("AUTH_CACHE_TTL", &c.AuthCacheTTL, 0, 3600)
	p.integerInt("AUTH_CACHE_SIZE", &c.AuthCacheSize, 1, 100_000_000)
	p.seconds("AUTH_NEGATIVE_CACHE_TTL", &c.AuthNegativeTTL, 0, 3600)
	p.seconds("HTTP_READ_HEADER_TIMEOUT", &c.HTTPReadHeaderTimeout, 1, 300)
	p.seconds("HTTP_READ_TIMEOUT", &c.HTTPReadTimeout, 1, 300)
	p.seconds("HTTP_WRITE_TIMEOUT", &c.HTTPWriteTimeout, 1, 300)
	p.seconds("HTTP_IDLE_TIMEOUT", &c.HTTPIdleTimeout, 1, 3600)
	p.integer("AUTH_FAIL_LIMIT", &c.AuthFailLimit, 0, 1_000_000_000)
	p.seconds("AUTH_FAIL_WINDOW", &c.AuthFailWindow, 1, 86400)
	p.integerInt("USAGE_BATCH_MAX", &c.UsageBatchMax, 1, 100_000)
	p.integerInt("KEYS_PER_USER_MAX", &c.KeysPerUserMax, 1, 1000)
	p.seconds("KEYS_LAST_USED_FLUSH", &c.KeyLastUsedFlush, 1, 3600)
	p.seconds("USAGE_DENIED_FLUSH", &c.UsageDeniedFlush, 1, 3600)
	p.seconds("USAGE_WRITE_TIMEOUT", &c.UsageWriteTimeout, 1, 60)
	p.integer("MAX_BODY_BYTES", &c.MaxBodyBytes, 64, 1<<30)
	if v := p.str("LOG_LEVEL"); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			p.fail("LOG_LEVEL", v, "debug, info, warn or error")
		}
	}
	c.Project = p.str("GOOGLE_CLOUD_PROJECT")
	switch v := p.str("OTEL_EXPORTER"); v {
	case "":
	case "none", "prometheus", "gcp":
		c.OTelExporter = v
	default:
		p.fail("OTEL_EXPORTER", v, "none, prometheus or gcp")
	}
	if v := p.str("METRICS_ADDR"); v != "" {
		if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
			p.fail("METRICS_ADDR", v, "host:port such as 127.0.0.1:9464")
		} else {
			c.MetricsAddr = v
		}
	}
	if c.OperatorBootstrapToken = p.str("OPERATOR_BOOTSTRAP_TOKEN"); c.OperatorBootstrapToken != "" {
		if (apikey.Format{Prefix: "rbo_"}).Validate(c.OperatorBootstrapToken) != nil {
			// The value is a secret: never repeated in the message.
			p.errs = append(p.errs, errors.New("OPERATOR_BOOTSTRAP_TOKEN: not a well-formed operator token (rbo_ + 49 base62 characters with a valid checksum); generate one with `go run ./tools/cmd/optoken`"))
			c.OperatorBootstrapToken = ""
		}
	}

	if c.DatabaseURL != "" {
		if err := checkDatabaseURL(c.DatabaseURL); err != nil {
			p.errs = append(p.errs, fmt.Errorf("DATABASE_URL: %v", err))
		}
	}
	if c.RedisURL != "" {
		u, err := url.Parse(c.RedisURL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			p.errs = append(p.errs, errors.New("REDIS_URL: want redis://[:password@]host:port[/db] or rediss://… for TLS"))
		}
	}
	if len(p.errs) > 0 {
		return Config{}, errors.Join(p.errs...)
	}
	return c, nil
}

// RequireDatabase reports an error unless a database is configured.
func (c Config) RequireDatabase() error {
	if c.DatabaseURL == "" && c.CloudSQLInstance == "" {
		return errors.New("DATABASE_URL: not set (or set CLOUD_SQL_INSTANCE with DB_USER and DB_NAME)")
	}
	return nil
}

// RequireRedis reports an error unless Redis is configured.
func (c Config) RequireRedis() error {
	if c.RedisURL == "" {
		return errors.New("REDIS_URL: not set; want redis://host:port/db")
	}
	return nil
}

// MaxConns is the largest number of Postgres connections one instance opens.
func (c Config) MaxConns() int { return c.DBPoolSize + c.DBMaxOverflow }

var currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)

// checkDatabaseURL accepts postgres:// URLs and the seed's SQLAlchemy form
// (postgresql+psycopg2://), which is normalised later by the postgres
// package, and libpq key/value strings.
func checkDatabaseURL(s string) error {
	if !strings.Contains(s, "://") {
		if strings.Contains(s, "=") {
			return nil
		}
		return errors.New("want postgres://user:password@host:port/db or a key=value connection string")
	}
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a valid URL; want postgres://user:password@host:port/db")
	}
	switch u.Scheme {
	case "postgres", "postgresql", "postgresql+psycopg2", "postgresql+psycopg", "postgresql+asyncpg":
		return nil
	}
	return fmt.Errorf("scheme %q not supported; want postgres://user:password@host:port/db", u.Scheme)
}

type parser struct {
	getenv func(string) string
	errs   []error
}

func (p *parser) str(name string) string { return strings.TrimSpace(p.getenv(name)) }

func (p *parser) fail(name, value, want string) {
	p.errs = append(p.errs, fmt.Errorf("%s=%q: want %s", name, value, want))
}

func (p *parser) integer(name string, dst *int64, lo, hi int64) {
	v := p.str(name)
	if v == "" {
		return
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		p.fail(name, v, fmt.Sprintf("a whole number from %d to %d", lo, hi))
		return
	}
	*dst = n
}

func (p *parser) integerInt(name string, dst *int, lo, hi int64) {
	n := int64(*dst)
	p.integer(name, &n, lo, hi)
	*dst = int(n)
}

func (p *parser) seconds(name string, dst *time.Duration, lo, hi int64) {
	v := p.str(name)
	if v == "" {
		return
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		p.fail(name, v, fmt.Sprintf("whole seconds from %d to %d", lo, hi))
		return
	}
	*dst = time.Duration(n) * time.Second
}

func (p *parser) boolean(name string, dst *bool) {
	v := p.str(name)
	if v == "" {
		return
	}
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		*dst = true
	case "0", "false", "no", "off":
		*dst = false
	default:
		p.fail(name, v, "true or false")
	}
}
