package usage_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/ratebill/platform/functions/usage"
	"github.com/ratebill/platform/shared/apikey"
	"github.com/ratebill/platform/shared/deps/depstest"
	"github.com/ratebill/platform/shared/testdb"
)

// BenchmarkMeteredHandler measures the whole metered GET /usage in
// process (no network between client and handler): key check, cached
// lookup, one Redis decision, the grouped usage write to the real
// Postgres, and the JSON answer; 64 users round robin, with the
// parallelism of a busy instance. LOG_LEVEL is warn (no request logs).
func BenchmarkMeteredHandler(b *testing.B) {
	// Redis database 9: user ids restart at 1 in every test database, so
	// keep this benchmark's counters away from the tests' (database 0).
	ru, err := url.Parse(testdb.RedisURL(b))
	if err != nil {
		b.Fatal(err)
	}
	ru.Path = "/9"
	d := depstest.New(b, map[string]string{"REDIS_URL": ru.String(), "API_RATE_LIMIT": "1000000000000"})
	ctx := context.Background()
	if err := d.Redis.FlushDB(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	keys := make([]string, 64)
	for i := range keys {
		keys[i], _ = apikey.Generate(nil)
		name := fmt.Sprintf("bench%d", i)
		if _, err := d.Store.CreateUser(ctx, name, name+"@example.com", apikey.Hash(keys[i]), apikey.Display(keys[i])); err != nil {
			b.Fatal(err)
		}
	}
	h, err := usage.Handler(d)
	if err != nil {
		b.Fatal(err)
	}
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
	b.ReportMetric(float64(d.Recorder.Stats().Events), "events")
}
