package telemetry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/api/option"

	"github.com/ratebill/platform/shared/config"
)

func newTest(t *testing.T) (*Telemetry, *sdkmetric.ManualReader, *tracetest.SpanRecorder) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	rec := tracetest.NewSpanRecorder()
	tel, err := New(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)), sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)), nil)
	if err != nil {
		t.Fatal(err)
	}
	return tel, reader, rec
}

// points collects name's data points as "attr=value,...": value.
func points(t *testing.T, r *sdkmetric.ManualReader, name string) map[string]float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	key := func(s attribute.Set) string {
		var parts []string
		for _, kv := range s.ToSlice() {
			parts = append(parts, string(kv.Key)+"="+kv.Value.String())
		}
		return strings.Join(parts, ",")
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[key(p.Attributes)] += float64(p.Value)
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					out[key(p.Attributes)] = float64(p.Value)
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[key(p.Attributes)] += float64(p.Count)
				}
			case metricdata.Histogram[int64]:
				for _, p := range d.DataPoints {
					out[key(p.Attributes)] += float64(p.Sum)
				}
			default:
				t.Fatalf("%s: unexpected data %T", name, m.Data)
			}
		}
	}
	return out
}

// A nil Telemetry is off: every method is safe and Handler returns the
// handler itself.
func TestNilIsOff(t *testing.T) {
	var tel *Telemetry
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	if got := tel.Handler(h); got == nil {
		t.Fatal("nil handler")
	}
	ctx, span := tel.Start(context.Background(), SpanDecision)
	if span.IsRecording() || ctx != context.Background() {
		t.Fatal("a nil Telemetry made a span")
	}
	EndSpan(span, errors.New("x"))
	tel.Decision(ctx, LimitUser, Allowed)
	tel.AuthCache(ctx, CacheHit)
	tel.DependencyError(ctx, Redis)
	tel.UsageWrite(ctx, 3, time.Millisecond, nil)
	tel.PendingAtShutdown(ctx, "begin", 1)
	if err := tel.Shutdown(ctx); err != nil || tel.MetricsURL() != "" {
		t.Fatal(err)
	}
}

func TestHandlerLabelsByRoute(t *testing.T) {
	tel, reader, rec := newTest(t)
	h := tel.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/admin/users/") {
			SetRoute(r.Context(), "/admin/users/{id}")
		}
		if r.URL.Path == "/boom" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	for _, c := range []struct{ method, path string }{
		{"GET", "/admin/users/1"}, {"GET", "/admin/users/2"}, {"BREW", "/admin/users/3"}, {"GET", "/x/y"}, {"POST", "/boom"},
	} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(c.method, c.path, nil))
	}
	got := points(t, reader, MetricRequests)
	want := map[string]float64{
		"http.request.method=GET,http.response.status_code=200,http.route=/admin/users/{id}":    2,
		"http.request.method=_OTHER,http.response.status_code=200,http.route=/admin/users/{id}": 1,
		"http.request.method=GET,http.response.status_code=200,http.route=unmatched":            1,
		"http.request.method=POST,http.response.status_code=503,http.route=unmatched":           1,
	}
	if len(got) != len(want) {
		t.Fatalf("series %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	if d := points(t, reader, MetricRequestDuration); d["http.request.method=GET,http.response.status_code=200,http.route=/admin/users/{id}"] != 2 {
		t.Errorf("durations %v", d)
	}
	names := map[string]bool{}
	for _, s := range rec.Ended() {
		names[s.Name()] = true
	}
	for _, n := range []string{"GET /admin/users/{id}", "_OTHER /admin/users/{id}", "GET unmatched", "POST unmatched"} {
		if !names[n] {
			t.Errorf("no span %q among %v", n, names)
		}
	}
}

func TestHandlerAbortCounted(t *testing.T) {
	tel, reader, _ := newTest(t)
	h := tel.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	func() {
		defer func() {
			if v := recover(); v != http.ErrAbortHandler {
				t.Errorf("recovered %v, want http.ErrAbortHandler passed on", v)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	}()
	if got := points(t, reader, MetricRequests); got["http.request.method=GET,http.response.status_code=500,http.route=unmatched"] != 1 {
		t.Fatalf("aborted request not counted as 500: %v", got)
	}
}

func TestRecorders(t *testing.T) {
	tel, reader, _ := newTest(t)
	ctx := context.Background()
	tel.Decision(ctx, LimitUser, Allowed)
	tel.Decision(ctx, LimitUser, Allowed)
	tel.Decision(ctx, LimitSignup, Denied)
	tel.Decision(ctx, LimitUser, Error)
	tel.AuthCache(ctx, CacheMiss)
	tel.AuthCache(ctx, CacheNegativeHit)
	tel.UsageWrite(ctx, 7, time.Millisecond, nil)
	tel.UsageWrite(ctx, 2, time.Millisecond, errors.New("down"))
	tel.DependencyError(ctx, Redis)
	tel.PendingAtShutdown(ctx, "begin", 4)
	tel.PendingAtShutdown(ctx, "end", 0)
	checks := []struct {
		metric string
		want   map[string]float64
	}{
		{MetricDecisions, map[string]float64{"limit=user,outcome=allowed": 2, "limit=signup,outcome=denied": 1, "limit=user,outcome=error": 1}},
		{MetricAuthCache, map[string]float64{"result=miss": 1, "result=negative_hit": 1}},
		{MetricBatchSize, map[string]float64{"": 9}},
		{MetricWriteDuration, map[string]float64{"outcome=ok": 1, "outcome=error": 1}},
		{MetricWriteFailures, map[string]float64{"": 1}},
		{MetricDependencyErrors, map[string]float64{"dependency=redis": 1, "dependency=postgres": 1}},
		{MetricPendingAtShutdown, map[string]float64{"phase=begin": 4, "phase=end": 0}},
	}
	for _, c := range checks {
		got := points(t, reader, c.metric)
		if len(got) != len(c.want) {
			t.Errorf("%s: %v, want %v", c.metric, got, c.want)
			continue
		}
		for k, v := range c.want {
			if g, ok := got[k]; !ok || g != v {
				t.Errorf("%s{%s} = %v, want %v", c.metric, k, g, v)
			}
		}
	}
}

// The hot path's recording allocates nothing.
func TestRecordingAllocatesNothing(t *testing.T) {
	tel, _, _ := newTest(t)
	ctx := context.Background()
	tel.requestAttrs("GET", "/usage", 200)
	allocs := testing.AllocsPerRun(100, func() {
		tel.Decision(ctx, LimitUser, Allowed)
		tel.AuthCache(ctx, CacheHit)
		tel.requests.Add(ctx, 1, tel.requestAttrs("GET", "/usage", 200).add...)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per recording", allocs)
	}
}

// Setup with "prometheus" serves the metrics as Prometheus text on its own
// listener, and Shutdown closes it.
func TestSetupPrometheus(t *testing.T) {
	cfg := config.Defaults()
	cfg.OTelExporter, cfg.MetricsAddr = ExporterPrometheus, "127.0.0.1:0"
	tel, err := Setup(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	tel.Decision(context.Background(), LimitUser, Denied)
	u := tel.MetricsURL()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `ratebill_ratelimit_decisions_total{limit="user",outcome="denied"} 1`) {
		t.Fatalf("%s: %d\n%s", u, resp.StatusCode, body)
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(u); err == nil {
		t.Fatal("metrics still served after Shutdown")
	}
}

func TestSetupNone(t *testing.T) {
	for _, e := range []string{"", ExporterNone} {
		cfg := config.Defaults()
		cfg.OTelExporter = e
		if tel, err := Setup(context.Background(), cfg, nil); tel != nil || err != nil {
			t.Fatalf("%q: %v %v, want nil (off)", e, tel, err)
		}
	}
	cfg := config.Defaults()
	cfg.OTelExporter = "jaeger"
	if _, err := Setup(context.Background(), cfg, nil); err == nil {
		t.Fatal("unknown exporter accepted")
	}
}

// The Google Cloud path builds its exporters and providers without
// touching the network (the clients dial lazily; here an unreachable
// endpoint with no credentials), and Shutdown returns within its deadline.
// What Cloud Monitoring and Cloud Trace do with the data cannot be tested
// offline.
func TestSetupGCPConstruction(t *testing.T) {
	t.Setenv("K_SERVICE", "ratebill-usage")
	tel, err := setupGCP(context.Background(), "test-project", slog.New(slog.DiscardHandler),
		option.WithoutAuthentication(), option.WithEndpoint("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	if tel == nil || len(tel.shutdowns) != 2 || tel.MetricsURL() != "" {
		t.Fatalf("telemetry %+v", tel)
	}
	ctx, span := tel.Start(context.Background(), SpanRecord)
	span.End()
	tel.UsageWrite(ctx, 1, time.Millisecond, nil)
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	tel.Shutdown(sctx) // the export fails (nothing listens); it must give up at the deadline
	if took := time.Since(start); took > 4*time.Second {
		t.Fatalf("Shutdown took %v with a 2 s deadline", took)
	}
}
