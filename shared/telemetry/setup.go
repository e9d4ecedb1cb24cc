//lint:file-ignore SA1019 Google's Cloud Monitoring and Cloud Trace exporters and its X-Cloud-Trace-Context propagator are deprecated in favour of OTLP to telemetry.googleapis.com; they are still the way to write workload.googleapis.com metrics, which terraform/monitoring.tf reads (docs/observability.md says what moving to OTLP would change).

package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	mexporter "github.com/GoogleCloudPlatform/opentelemetry-operations-go/exporter/metric"
	texporter "github.com/GoogleCloudPlatform/opentelemetry-operations-go/exporter/trace"
	gcppropagator "github.com/GoogleCloudPlatform/opentelemetry-operations-go/propagator"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/detectors/gcp"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.39.0"
	"google.golang.org/api/option"

	"github.com/ratebill/platform/shared/config"
)

// Exporters (OTEL_EXPORTER).
const (
	ExporterNone       = "none"
	ExporterPrometheus = "prometheus"
	ExporterGCP        = "gcp"
)

// GCPExportInterval is how often metrics are sent to Cloud Monitoring
// (OTEL_METRIC_EXPORT_INTERVAL, in milliseconds, overrides it). Cloud
// Monitoring accepts a point per series at most every 5 s; a minute is
// what its charts and alerts align to.
const GCPExportInterval = time.Minute

// DefaultTraceRatio is the share of requests without a sampled parent
// that are traced on Google Cloud, unless OTEL_TRACES_SAMPLER says
// otherwise. A request whose traceparent (or X-Cloud-Trace-Context) says
// sampled is always traced: Cloud Run's front end samples on its own.
const DefaultTraceRatio = 0.1

// cloudTraceOneWay reads X-Cloud-Trace-Context (and never writes it).
func cloudTraceOneWay() propagation.TextMapPropagator {
	return gcppropagator.CloudTraceOneWayPropagator{}
}

// Setup starts the exporters cfg.OTelExporter names and returns the
// instance's Telemetry (nil for "none": everything off). Its Shutdown
// flushes them; call it last in the drain.
//
//   - "prometheus": metrics as Prometheus text at
//     http://cfg.MetricsAddr/metrics, on a listener of its own (never the
//     public router); spans are not recorded, but each request has a span
//     context (the caller's trace or a new one) whose id the logs carry.
//   - "gcp": metrics to Cloud Monitoring (workload.googleapis.com/…) every
//     GCPExportInterval, spans to Cloud Trace in batches, under the
//     resource the Cloud Run detector reports (service, revision,
//     instance), so two instances never write the same time series.
//     Shutdown exports what is left: Cloud Run gives CPU during the
//     SIGTERM drain even when it throttles it between requests.
func Setup(ctx context.Context, cfg config.Config, logger *slog.Logger) (*Telemetry, error) {
	if logger == nil {
		logger = slog.Default()
	}
	switch cfg.OTelExporter {
	case "", ExporterNone:
		return nil, nil
	case ExporterPrometheus:
		return setupPrometheus(cfg.MetricsAddr, logger)
	case ExporterGCP:
		return setupGCP(ctx, cfg.Project, logger)
	}
	return nil, fmt.Errorf("OTEL_EXPORTER=%q: want none, prometheus or gcp", cfg.OTelExporter)
}

// errorHandler logs what the SDK and exporters fail to do (an export
// refused, a collection error) at warning level: telemetry never fails a
// request.
func errorHandler(logger *slog.Logger) {
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("telemetry", "error", err.Error())
	}))
}

func setupPrometheus(addr string, logger *slog.Logger) (*Telemetry, error) {
	errorHandler(logger)
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	res, err := resource.New(context.Background(), resource.WithAttributes(semconv.ServiceName(serviceName())))
	if err != nil {
		return nil, err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
	// Nothing exports spans here: never record them. The SDK still gives
	// each request a span context (the caller's trace, or a new one), so
	// the log lines carry a trace id.
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSampler(sdktrace.NeverSample()))
	t, err := New(mp, tp, nil)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("METRICS_ADDR: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("serving metrics", "error", err.Error())
		}
	}()
	t.metrics = "http://" + ln.Addr().String() + "/metrics"
	t.shutdowns = []func(context.Context) error{srv.Shutdown, mp.Shutdown, tp.Shutdown}
	return t, nil
}

func setupGCP(ctx context.Context, project string, logger *slog.Logger, clientOpts ...option.ClientOption) (*Telemetry, error) {
	errorHandler(logger)
	res, err := resource.New(ctx,
		resource.WithDetectors(gcp.NewDetector()),
		resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName(serviceName())))
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("detecting the Cloud Run resource: %w", err)
	}
	mopts := []mexporter.Option{mexporter.WithProjectID(project)}
	topts := []texporter.Option{texporter.WithProjectID(project)}
	if len(clientOpts) > 0 {
		mopts = append(mopts, mexporter.WithMonitoringClientOptions(clientOpts...))
		topts = append(topts, texporter.WithTraceClientOptions(clientOpts))
	}
	mexp, err := mexporter.New(mopts...)
	if err != nil {
		return nil, fmt.Errorf("cloud monitoring exporter: %w", err)
	}
	texp, err := texporter.New(topts...)
	if err != nil {
		return nil, fmt.Errorf("cloud trace exporter: %w", err)
	}
	interval := GCPExportInterval
	if os.Getenv("OTEL_METRIC_EXPORT_INTERVAL") != "" {
		interval = 0 // the SDK reads the variable
	}
	var ropts []sdkmetric.PeriodicReaderOption
	if interval > 0 {
		ropts = append(ropts, sdkmetric.WithInterval(interval))
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp, ropts...)), sdkmetric.WithResource(res))
	topt := []sdktrace.TracerProviderOption{sdktrace.WithBatcher(texp), sdktrace.WithResource(res)}
	if os.Getenv("OTEL_TRACES_SAMPLER") == "" {
		topt = append(topt, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(DefaultTraceRatio))))
	}
	tp := sdktrace.NewTracerProvider(topt...)
	t, err := New(mp, tp, nil)
	if err != nil {
		return nil, err
	}
	t.shutdowns = []func(context.Context) error{mp.Shutdown, tp.Shutdown}
	return t, nil
}

// serviceName is the Cloud Run service (K_SERVICE), or "ratebill".
func serviceName() string {
	if s := os.Getenv("K_SERVICE"); s != "" {
		return s
	}
	return "ratebill"
}
