// Package depstest builds an instance's dependencies for a test, on the
// test's own database (package testdb) and the test Redis server.
package depstest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ratebill/platform/shared/config"
	"github.com/ratebill/platform/shared/deps"
	"github.com/ratebill/platform/shared/testdb"
)

// New returns dependencies configured by vars over the defaults
// DATABASE_URL (a fresh database cloned from the migrated template),
// REDIS_URL (the test server), INIT_DB=false and LOG_LEVEL=warn, with
// logs discarded, and opts (deps.WithTelemetry). They are closed at the
// test's cleanup.
func New(t testing.TB, vars map[string]string, opts ...deps.Option) *deps.Deps {
	t.Helper()
	env := map[string]string{"INIT_DB": "false", "LOG_LEVEL": "warn"}
	if _, ok := vars["DATABASE_URL"]; !ok {
		env["DATABASE_URL"] = testdb.DatabaseURL(t)
	}
	if _, ok := vars["REDIS_URL"]; !ok {
		env["REDIS_URL"] = testdb.RedisURL(t)
	}
	for k, v := range vars {
		env[k] = v
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("configuration: %v", err)
	}
	d, err := deps.New(cfg, slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn})), opts...)
	if err != nil {
		t.Fatalf("dependencies: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		d.Close(ctx)
	})
	return d
}
