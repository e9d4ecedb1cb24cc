package telemetry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// BenchmarkHotPath is what telemetry adds to one metered request, without
// the request's own work (no I/O): the server span joined to a
// traceparent, the two child spans, the decision, the auth-cache and the
// usage-write records, and the request's count and duration. off is a
// nil *Telemetry (OTEL_EXPORTER=none); sampled traces and measures every
// request (the worst case); unsampled measures every request and makes
// non-recording spans (what most requests cost on Google Cloud, where
// 10 % of requests without a sampled parent are traced). Compare with
// BenchmarkMeteredHandler's cpu-µs/op (functions/usage).
func BenchmarkHotPath(b *testing.B) {
	run := func(b *testing.B, tel *Telemetry) {
		h := tel.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			SetRoute(ctx, "/usage")
			tel.AuthCache(ctx, CacheHit)
			_, span := tel.Start(ctx, SpanDecision)
			EndSpan(span, nil)
			tel.Decision(ctx, LimitUser, Allowed)
			_, span = tel.Start(ctx, SpanRecord)
			EndSpan(span, nil)
			tel.UsageWrite(ctx, 1, 1000, nil)
			w.WriteHeader(http.StatusOK)
		}))
		r := httptest.NewRequest(http.MethodGet, "/usage", nil)
		r.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
		w := httptest.NewRecorder()
		b.ReportAllocs()
		cpu0 := cpuTime()
		for b.Loop() {
			h.ServeHTTP(w, r)
		}
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
	}
	b.Run("off", func(b *testing.B) { run(b, nil) })
	for _, c := range []struct {
		name    string
		sampler sdktrace.Sampler
	}{{"sampled", sdktrace.AlwaysSample()}, {"unsampled", sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.1))}} {
		b.Run(c.name, func(b *testing.B) {
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(c.sampler), sdktrace.WithBatcher(tracetest.NewNoopExporter()))
			defer tp.Shutdown(context.Background())
			tel, err := New(mp, tp, nil)
			if err != nil {
				b.Fatal(err)
			}
			run(b, tel)
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
