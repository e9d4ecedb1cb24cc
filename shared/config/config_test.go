package config

import (
	"strings"
	"testing"
	"time"

	"github.com/ratebill/platform/shared/apikey"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDefaultsAreTheSeeds(t *testing.T) {
	t.Parallel()
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.RateLimit != 1000 || c.RateWindow != 86400*time.Second || c.UnitPrice.String() != "0.01" || !c.InitDB ||
		c.DBPoolSize != 20 || c.DBMaxOverflow != 40 || c.DBPoolTimeout != 30*time.Second || c.DBPoolRecycle != 1800*time.Second {
		t.Fatalf("defaults %+v", c)
	}
	if c.MaxConns() != 60 || c.RateLimitFailOpen || c.Currency != "USD" {
		t.Fatalf("derived defaults: max conns %d fail-open %v", c.MaxConns(), c.RateLimitFailOpen)
	}
}

func TestLoadValues(t *testing.T) {
	t.Parallel()
	c, err := Load(env(map[string]string{
		"DATABASE_URL":         "postgresql+psycopg2://user:password@localhost:5432/apidb",
		"REDIS_URL":            "rediss://:secret@10.0.0.3:6378/0",
		"API_RATE_LIMIT":       " 50 ",
		"API_RATE_WINDOW":      "60",
		"BILLING_UNIT_PRICE":   "0.0015",
		"INIT_DB":              "false",
		"RATE_LIMIT_FAIL_OPEN": "yes",
		"TRUSTED_PROXY_HOPS":   "2",
		"LOG_LEVEL":            "warn",
		"AUTH_CACHE_TTL":       "0",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.RateLimit != 50 || c.RateWindow != time.Minute || c.UnitPrice.String() != "0.0015" || c.InitDB || !c.RateLimitFailOpen ||
		c.TrustedProxyHops != 2 || c.LogLevel.String() != "WARN" || c.AuthCacheTTL != 0 {
		t.Fatalf("loaded %+v", c)
	}
}

// TestBadValues: each bad variable is reported on its own line, naming
// the variable and what it accepts.
func TestBadValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, value, want string
	}{
		{"API_RATE_LIMIT", "lots", "API_RATE_LIMIT=\"lots\": want a whole number from 1"},
		{"API_RATE_LIMIT", "0", "API_RATE_LIMIT=\"0\": want a whole number from 1"},
		{"API_RATE_WINDOW", "1.5", "API_RATE_WINDOW=\"1.5\": want whole seconds"},
		{"KEYS_PER_USER_MAX", "0", "KEYS_PER_USER_MAX=\"0\": want a whole number from 1 to 1000"},
		{"KEYS_LAST_USED_FLUSH", "0", "KEYS_LAST_USED_FLUSH=\"0\": want whole seconds from 1 to 3600"},
		{"BILLING_UNIT_PRICE", "1e-2", "BILLING_UNIT_PRICE=\"1e-2\": want a plain decimal"},
		{"BILLING_UNIT_PRICE", "-0.01", "want an amount of zero or more"},
		{"BILLING_UNIT_PRICE", "0.0000000001", "at most 9 decimal places"},
		{"BILLING_UNIT_PRICE", "$1", "want a plain decimal"},
		{"BILLING_CURRENCY", "usd", "three-letter ISO 4217"},
		{"INIT_DB", "maybe", "INIT_DB=\"maybe\": want true or false"},
		{"DB_POOL_SIZE", "0", "DB_POOL_SIZE=\"0\""},
		{"LOG_LEVEL", "loud", "LOG_LEVEL=\"loud\": want debug, info, warn or error"},
		{"OTEL_EXPORTER", "jaeger", "OTEL_EXPORTER=\"jaeger\": want none, prometheus or gcp"},
		{"METRICS_ADDR", "9464", "METRICS_ADDR=\"9464\": want host:port such as 127.0.0.1:9464"},
		{"DATABASE_URL", "mysql://x", "DATABASE_URL: scheme \"mysql\" not supported"},
		{"REDIS_URL", "localhost:6379", "REDIS_URL: want redis://"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			_, err := Load(env(map[string]string{tt.name: tt.value}))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if strings.Count(err.Error(), "\n") != 0 {
				t.Fatalf("one bad variable, several lines: %q", err)
			}
		})
	}
	_, err := Load(env(map[string]string{"API_RATE_LIMIT": "x", "INIT_DB": "y"}))
	if err == nil || strings.Count(err.Error(), "\n") != 1 {
		t.Fatalf("two bad variables must give two lines: %v", err)
	}
}

func TestRequire(t *testing.T) {
	t.Parallel()
	c, _ := Load(env(nil))
	if c.RequireDatabase() == nil || c.RequireRedis() == nil {
		t.Fatal("unset URLs must be reported when needed")
	}
	c.CloudSQLInstance = "p:r:i"
	if c.RequireDatabase() != nil {
		t.Fatal("a Cloud SQL instance is a database")
	}
}

func TestVariablesListed(t *testing.T) {
	t.Parallel()
	// Every listed variable is read: setting it to garbage changes the
	// outcome, or it is a free-form string.
	free := map[string]bool{"DATABASE_URL": true, "CLOUD_SQL_INSTANCE": true, "DB_USER": true, "DB_PASSWORD": true, "DB_NAME": true,
		"REDIS_PASSWORD": true, "REDIS_CA_CERT": true, "GOOGLE_CLOUD_PROJECT": true}
	for _, v := range Variables {
		if free[v] {
			continue
		}
		if _, err := Load(env(map[string]string{v: "garbage!"})); err == nil {
			t.Errorf("%s=garbage! accepted: is it read at all?", v)
		}
	}
}

func TestOperatorBootstrapToken(t *testing.T) {
	t.Parallel()
	good, _ := apikey.Format{Prefix: "rbo_"}.Generate(nil)
	c, err := Load(env(map[string]string{"OPERATOR_BOOTSTRAP_TOKEN": good}))
	if err != nil || c.OperatorBootstrapToken != good {
		t.Fatalf("well-formed token: %v", err)
	}
	// A mistyped token is refused, and the message never repeats it.
	bad := good[:20] + "0" + good[21:]
	if bad == good {
		bad = good[:20] + "1" + good[21:]
	}
	_, err = Load(env(map[string]string{"OPERATOR_BOOTSTRAP_TOKEN": bad}))
	if err == nil || !strings.Contains(err.Error(), "OPERATOR_BOOTSTRAP_TOKEN") || strings.Contains(err.Error(), bad[4:]) {
		t.Fatalf("mistyped token: %v", err)
	}
}
