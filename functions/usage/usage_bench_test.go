package usage_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"syscall"
	"testing"
	"time"

	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratebill/platform/functions/usage"
	"github.com/ratebill/platform/shared/apikey"
	"github.com/ratebill/platform/shared/deps"
	"github.com/ratebill/platform/shared/deps/depstest"
	"github.com/ratebill/platform/shared/telemetry"
	"github.com/ratebill/platform/shared/testdb"
)

// BenchmarkMeteredHandler measures the whole metered GET /usage in
// process (no network between client and handler): key check, cached
// lookup, one Redis decision, the grouped usage write to the real
// Postgres, and the JSON answer; 64 users round robin, with the
// parallelism of a busy instance. LOG_LEVEL is warn (no request logs).
//
// Sub-benchmarks, run one after the other in the same process:
// telemetry=off (OTEL_EXPORTER=none: a nil *telemetry.Telemetry);
// telemetry=on, as deployed (OTEL_EXPORTER=gcp's sampler: requests
// without a sampled parent traced at telemetry.DefaultTraceRatio, spans
// batched to an exporter that drops them, every metric recorded to a
// Prometheus reader); and telemetry=traced, the worst case, every request
// traced (a server span and two children). The cost of instrumentation
// is their difference; cpu-µs/op is this process's CPU (user + system,
// getrusage) per request, which is what instrumentation adds to
// (Postgres and Redis are other processes).
func BenchmarkMeteredHandler(b *testing.B) {
	b.Run("telemetry=off", func(b *testing.B) { benchMetered(b, nil) })
	for _, c := range []struct {
		name    string
		sampler sdktrace.Sampler
	}{
		{"telemetry=on", sdktrace.ParentBased(sdktrace.TraceIDRatioBased(telemetry.DefaultTraceRatio))},
		{"telemetry=traced", sdktrace.AlwaysSample()},
	} {
		b.Run(c.name, func(b *testing.B) {
			exp, err := otelprom.New(otelprom.WithRegisterer(prometheus.NewRegistry()))
			if err != nil {
				b.Fatal(err)
			}
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(c.sampler), sdktrace.WithBatcher(tracetest.NewNoopExporter()))
			b.Cleanup(func() {
				mp.Shutdown(context.Background())
				tp.Shutdown(context.Background())
			})
			tel, err := telemetry.New(mp, tp, nil)
			if err != nil {
				b.Fatal(err)
			}
			benchMetered(b, tel)
		})
	}
}

func benchMetered(b *testing.B, tel *telemetry.Telemetry) {
	// Redis database 9: user ids restart at 1 in every test database, so
	// keep this benchmark's counters away from the tests' (database 0).
	ru, err := url.Parse(testdb.RedisURL(b))
	if err != nil {
		b.Fatal(err)
	}
	ru.Path = "/9"
	d := depstest.New(b, map[string]string{"REDIS_URL": ru.String(), "API_RATE_LIMIT": "1000000000000"}, deps.WithTelemetry(tel))
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
	cpu0 := cpuTime()
	b.ResetTimer()
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
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(d.Recorder.Stats().Events), "events")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
