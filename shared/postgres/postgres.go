package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"cloud.google.com/go/cloudsqlconn"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/config"
)

// Unique constraints that mean a conflict the client can fix.
const (
	constraintUsername = "users_username_key"
	constraintEmail    = "users_email_key"
)

// mapError turns driver errors into the application's errors, so nothing
// above this package interprets a database error: no rows is ENotFound, a
// unique violation EConflict naming the field, anything that means the
// database could not be reached or did not answer in time (network,
// timeouts, shutdown, too many connections, serialization) EUnavailable.
// Other errors (a bug, a constraint the code should have prevented) stay
// internal: logged with their cause, shown to no client.
func mapError(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return &shared.Error{Code: shared.ENotFound, Message: "not found", Err: fmt.Errorf("%s: %w", op, err)}
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505":
			return conflict(pgErr.ConstraintName, fmt.Errorf("%s: %w", op, err))
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			strings.HasPrefix(pgErr.Code, "53"), // insufficient resources
			strings.HasPrefix(pgErr.Code, "57"), // operator intervention (shutdown)
			pgErr.Code == "40001", pgErr.Code == "40P01":
			return shared.Unavailable("postgres", fmt.Errorf("%s: %w", op, err))
		}
		return fmt.Errorf("%s: %w", op, err)
	}
	if shared.ErrorCode(err) != shared.EInternal {
		return err // already an application error (shutting down)
	}
	return shared.Unavailable("postgres", fmt.Errorf("%s: %w", op, err))
}

// conflict names the field whose unique constraint was hit.
func conflict(constraint string, cause error) *shared.Error {
	field := "username"
	switch constraint {
	case constraintEmail:
		return &shared.Error{Code: shared.EConflict, Message: "email is already registered",
			Fields: []shared.FieldError{{Field: "email", Detail: "is already registered"}}, Err: cause}
	case constraintUsername:
	default:
		field = constraint
	}
	return &shared.Error{Code: shared.EConflict, Message: field + " is taken",
		Fields: []shared.FieldError{{Field: field, Detail: "is taken"}}, Err: cause}
}

// Dialer dials a Cloud SQL instance; *cloudsqlconn.Dialer implements it.
type Dialer interface {
	Dial(ctx context.Context, instance string, opts ...cloudsqlconn.DialOption) (net.Conn, error)
	Close() error
}

// NewDialer builds the Cloud SQL dialer for cfg: lazy certificate refresh
// (Cloud Run gives no CPU between requests, so background refresh would
// stall), IAM database authentication when configured, and the private IP
// by default.
func NewDialer(ctx context.Context, cfg config.Config) (Dialer, error) {
	opts := []cloudsqlconn.Option{cloudsqlconn.WithLazyRefresh()}
	if cfg.CloudSQLIAMAuth {
		opts = append(opts, cloudsqlconn.WithIAMAuthN())
	}
	if cfg.CloudSQLPrivateIP {
		opts = append(opts, cloudsqlconn.WithDefaultDialOptions(cloudsqlconn.WithPrivateIP()))
	}
	d, err := cloudsqlconn.NewDialer(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("creating Cloud SQL dialer: %w", err)
	}
	return d, nil
}

// PoolConfig maps cfg onto pgxpool settings:
//
//	DB_POOL_SIZE + DB_MAX_OVERFLOW  -> MaxConns
//	DB_POOL_RECYCLE                 -> MaxConnLifetime
//	DB_POOL_TIMEOUT                 -> ConnectTimeout (and, by callers, acquire deadlines)
//
// With CLOUD_SQL_INSTANCE set, connections go through dialer (host and
// port of the URL are ignored; TLS is the connector's).
func PoolConfig(cfg config.Config, dialer Dialer) (*pgxpool.Config, error) {
	dsn := NormalizeURL(cfg.DatabaseURL)
	if dsn == "" && cfg.CloudSQLInstance != "" {
		dsn = keyValue(map[string]string{"user": cfg.DBUser, "password": cfg.DBPassword, "dbname": cfg.DBName, "sslmode": "disable"})
	}
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	pc.MaxConns = int32(cfg.MaxConns())
	pc.MinConns = 0
	pc.MaxConnLifetime = cfg.DBPoolRecycle
	pc.MaxConnLifetimeJitter = cfg.DBPoolRecycle / 10
	pc.MaxConnIdleTime = 5 * time.Minute
	pc.HealthCheckPeriod = 30 * time.Second
	pc.ConnConfig.ConnectTimeout = cfg.DBPoolTimeout
	if pc.ConnConfig.RuntimeParams == nil {
		pc.ConnConfig.RuntimeParams = map[string]string{}
	}
	pc.ConnConfig.RuntimeParams["application_name"] = "ratebill"
	pc.ConnConfig.RuntimeParams["timezone"] = "UTC"
	if cfg.CloudSQLInstance != "" {
		if dialer == nil {
			return nil, errors.New("CLOUD_SQL_INSTANCE is set but no Cloud SQL dialer was given")
		}
		if cfg.DBUser != "" {
			pc.ConnConfig.User = cfg.DBUser
		}
		if cfg.DBName != "" {
			pc.ConnConfig.Database = cfg.DBName
		}
		if cfg.DBPassword != "" {
			pc.ConnConfig.Password = cfg.DBPassword
		}
		instance := cfg.CloudSQLInstance
		pc.ConnConfig.TLSConfig = nil
		pc.ConnConfig.Fallbacks = nil
		pc.ConnConfig.DialFunc = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.Dial(ctx, instance)
		}
	}
	return pc, nil
}

// Open creates the pool for cfg. It does not wait for a connection: pools
// open lazily, and the first query reports an unreachable database.
func Open(ctx context.Context, cfg config.Config) (*pgxpool.Pool, error) {
	var dialer Dialer
	if cfg.CloudSQLInstance != "" {
		d, err := NewDialer(ctx, cfg)
		if err != nil {
			return nil, err
		}
		dialer = d
	}
	pc, err := PoolConfig(cfg, dialer)
	if err != nil {
		if dialer != nil {
			dialer.Close()
		}
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		if dialer != nil {
			dialer.Close()
		}
		return nil, fmt.Errorf("creating pool: %w", err)
	}
	return pool, nil
}

// NormalizeURL accepts the seed's SQLAlchemy URLs
// (postgresql+psycopg2://…) as well as plain postgres:// URLs.
func NormalizeURL(s string) string {
	for _, p := range []string{"postgresql+psycopg2://", "postgresql+psycopg://", "postgresql+asyncpg://"} {
		if strings.HasPrefix(s, p) {
			return "postgres://" + strings.TrimPrefix(s, p)
		}
	}
	return s
}

func keyValue(m map[string]string) string {
	var b strings.Builder
	for _, k := range []string{"user", "password", "dbname", "sslmode"} {
		v := m[k]
		if v == "" {
			continue
		}
		v = strings.ReplaceAll(v, `\`, `\\`)
		v = strings.ReplaceAll(v, `'`, `\'`)
		fmt.Fprintf(&b, "%s='%s' ", k, v)
	}
	return strings.TrimSpace(b.String())
}

// Ping checks that the database answers a query.
func Ping(ctx context.Context, pool *pgxpool.Pool) error {
	var one int
	return mapError("pinging", pool.QueryRow(ctx, "SELECT 1").Scan(&one))
}
