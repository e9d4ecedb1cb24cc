package usage_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/ratebill/platform/functions/usage"
	"github.com/ratebill/platform/shared/apikey"
	"github.com/ratebill/platform/shared/config"
	"github.com/ratebill/platform/shared/instance"
	"github.com/ratebill/platform/shared/testenv"
)

// BenchmarkMeteredHandler measures the whole metered GET /usage in
// process (no network between client and handler): key check, cached
// lookup, one Redis decision, the grouped usage write to the real
// Postgres, and the JSON answer; 64 users round robin, with the
// parallelism of a busy instance. LOG_LEVEL is warn (no request logs).
func BenchmarkMeteredHandler(b *testing.B) {
	dbURL := testenv.DatabaseURL(b)
	// Redis database 9: user ids restart at 1 in every test database, so
	// keep this benchmark's counters away from the tests' (database 0).
	ru, err := url.Parse(testenv.RedisURL(b))
	if err != nil {
		b.Fatal(err)
	}
	ru.Path = "/9"
	vars := map[string]string{
		"DATABASE_URL": dbURL, "REDIS_URL": ru.String(), "INIT_DB": "false",
		"API_RATE_LIMIT": "1000000000000", "LOG_LEVEL": "warn",
	}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		b.Fatal(err)
	}
	inst := instance.New(cfg, slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn})))
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		inst.Shutdown(ctx)
	})
	ctx := context.Background()
	store, err := inst.Store(ctx)
	if err != nil {
		b.Fatal(err)
	}
	rdb, err := inst.Redis()
	if err != nil {
		b.Fatal(err)
	}
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	keys := make([]string, 64)
	for i := range keys {
		keys[i], _ = apikey.Generate(nil)
		name := fmt.Sprintf("bench%d", i)
		if _, err := store.CreateUser(ctx, name, name+"@example.com", apikey.Hash(keys[i]), apikey.Display(keys[i])); err != nil {
			b.Fatal(err)
		}
	}
	h := usage.NewHandler(inst)
	b.ReportAllocs()
	b.SetParallelism(25) // 50 requests in flight on 2 cores
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			r := httptest.NewRequest(http.MethodGet, "/usage", nil)
			r.Header.Set("X-API-Key", keys[i%len(keys)])
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
			i++
		}
	})
	b.StopTimer()
	var rows int64
	if err := store.Pool().QueryRow(ctx, `SELECT count(*) FROM usage_events`).Scan(&rows); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(rows), "rows")
}
