package postgres_test

import (
	"context"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/cloudsqlconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ratebill/platform/shared/config"
	"github.com/ratebill/platform/shared/postgres"
	"github.com/ratebill/platform/shared/testdb"
)

// fakeDialer stands in for cloudsqlconn.Dialer, which needs Google Cloud:
// it records the instance asked for and dials the test server instead.
type fakeDialer struct {
	addr      string
	mu        sync.Mutex
	instances []string
	closed    bool
}

var _ postgres.Dialer = (*fakeDialer)(nil)

func (d *fakeDialer) Dial(ctx context.Context, instance string, _ ...cloudsqlconn.DialOption) (net.Conn, error) {
	d.mu.Lock()
	d.instances = append(d.instances, instance)
	d.mu.Unlock()
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", d.addr)
}

func (d *fakeDialer) Close() error { d.closed = true; return nil }

func TestCloudSQLWiringThroughDialer(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(testdb.DatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.CloudSQLInstance = "proj:us-central1:db"
	cfg.CloudSQLIAMAuth = true
	cfg.DBUser = u.User.Username()
	cfg.DBName = u.Path[1:]
	cfg.DBPoolSize, cfg.DBMaxOverflow = 3, 2
	cfg.DBPoolRecycle = 90 * time.Second
	d := &fakeDialer{addr: u.Host}

	pc, err := postgres.PoolConfig(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	if pc.MaxConns != 5 || pc.MaxConnLifetime != 90*time.Second || pc.ConnConfig.ConnectTimeout != cfg.DBPoolTimeout {
		t.Fatalf("pool settings: max %d lifetime %v timeout %v", pc.MaxConns, pc.MaxConnLifetime, pc.ConnConfig.ConnectTimeout)
	}
	if pc.ConnConfig.TLSConfig != nil {
		t.Fatal("TLS must be left to the connector")
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := postgres.Ping(context.Background(), pool); err != nil {
		t.Fatalf("ping through the dialer: %v", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.instances) == 0 || d.instances[0] != "proj:us-central1:db" {
		t.Fatalf("dialer asked for %v", d.instances)
	}
}

func TestPoolConfigNeedsDialerForCloudSQL(t *testing.T) {
	t.Parallel()
	cfg := config.Defaults()
	cfg.CloudSQLInstance = "p:r:i"
	cfg.DBUser, cfg.DBName = "u", "d"
	if _, err := postgres.PoolConfig(cfg, nil); err == nil {
		t.Fatal("want an error without a dialer")
	}
}

func TestPoolConfigFromSeedURL(t *testing.T) {
	t.Parallel()
	cfg := config.Defaults()
	cfg.DatabaseURL = "postgresql+psycopg2://user:pw@db.internal:5433/apidb"
	pc, err := postgres.PoolConfig(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := pc.ConnConfig
	if c.Host != "db.internal" || c.Port != 5433 || c.Database != "apidb" || c.User != "user" || c.Password != "pw" || pc.MaxConns != 60 {
		t.Fatalf("parsed %s:%d/%s user %s max %d", c.Host, c.Port, c.Database, c.User, pc.MaxConns)
	}
}
