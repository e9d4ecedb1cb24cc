// Package telemetry is the platform's OpenTelemetry instrumentation: the
// request, rate-limit, usage-write, auth-cache and dependency metrics, one
// trace per request with child spans for the Redis decision and the
// Postgres write, and their export (Setup: Prometheus text locally, Cloud
// Monitoring and Cloud Trace on Google Cloud, or nothing).
//
// A *Telemetry is built once per instance and handed to the packages on
// the hot path (gate, meter, auth, serve). Every method is safe on a nil
// *Telemetry and then does nothing, so telemetry that is off
// (OTEL_EXPORTER=none, the default) costs a nil check. Instruments are
// created once, and the attribute sets of the hot path are built once and
// reused (metric.WithAttributeSet), so recording allocates nothing.
//
// The metric names, units and attributes are listed in
// docs/observability.md; terraform/monitoring.tf reads some of them as
// workload.googleapis.com/<name>.
package telemetry

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of every instrument and span.
const ScopeName = "github.com/ratebill/platform/shared/telemetry"

// Metric names (OpenTelemetry instrument names; Prometheus replaces the
// dots with underscores and adds unit and _total suffixes, the Google
// Cloud exporter prefixes workload.googleapis.com/).
const (
	MetricRequestDuration   = "http.server.request.duration"
	MetricRequests          = "ratebill.http.requests"
	MetricDecisions         = "ratebill.ratelimit.decisions"
	MetricBatchSize         = "ratebill.usage.batch_size"
	MetricWriteDuration     = "ratebill.usage.write_duration"
	MetricWriteFailures     = "ratebill.usage.write_failures"
	MetricAuthCache         = "ratebill.auth.cache_lookups"
	MetricDependencyErrors  = "ratebill.dependency.errors"
	MetricPendingAtShutdown = "ratebill.usage.pending_at_shutdown"
)

// Span names of the children of a request's server span.
const (
	SpanDecision = "ratelimit.decide" // the Redis round trip that decides the user's limit
	SpanRecord   = "usage.record"     // the durable, group-committed Postgres write of the call
)

// Limit names the quota of a rate-limit decision (attribute "limit").
type Limit int

// The quotas the gate decides.
const (
	LimitUser   Limit = iota // a user's quota (metered routes)
	LimitSignup              // sign-ups per client address
	numLimits
)

var limitNames = [numLimits]string{"user", "signup"}

// Outcome is a rate-limit decision's outcome (attribute "outcome").
type Outcome int

// Outcomes of a decision: "error" is Redis failing to decide (the call
// is then refused with 503, or served unlimited with
// RATE_LIMIT_FAIL_OPEN).
const (
	Allowed Outcome = iota
	Denied
	Error
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"allowed", "denied", "error"}

// CacheResult is the outcome of an API-key cache lookup (attribute
// "result").
type CacheResult int

// Cache results: a cached principal, a cached refusal (the negative
// cache of unknown, revoked or expired keys), or a miss that goes to
// Postgres.
const (
	CacheHit CacheResult = iota
	CacheNegativeHit
	CacheMiss
	numCacheResults
)

var cacheNames = [numCacheResults]string{"hit", "negative_hit", "miss"}

// Dependency names a backing service (attribute "dependency").
type Dependency int

// The platform's dependencies.
const (
	Redis Dependency = iota
	Postgres
	numDependencies
)

var dependencyNames = [numDependencies]string{"redis", "postgres"}

// Telemetry holds the instruments, the tracer and the propagator of one
// instance. The zero value is not usable; a nil *Telemetry is off.
type Telemetry struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator

	duration        metric.Float64Histogram
	requests        metric.Int64Counter
	decisions       metric.Int64Counter
	batchSize       metric.Int64Histogram
	writeDuration   metric.Float64Histogram
	writeFailures   metric.Int64Counter
	authCache       metric.Int64Counter
	dependencyErrs  metric.Int64Counter
	pendingShutdown metric.Int64Gauge

	// Attribute sets of the hot path, built once, as the option slices
	// the calls take (a variadic argument built per call would escape).
	decisionAttrs [numLimits][numOutcomes][]metric.AddOption
	cacheAttrs    [numCacheResults][]metric.AddOption
	depAttrs      [numDependencies][]metric.AddOption
	writeOK       []metric.RecordOption
	writeErr      []metric.RecordOption
	serverSpan    []trace.SpanStartOption
	internalSpan  []trace.SpanStartOption

	mu        sync.RWMutex
	reqAttrs  map[requestKey]requestOpts
	shutdowns []func(context.Context) error // the providers Setup built
	metrics   string                        // the Prometheus URL, when served
}

// Propagator is what a request's trace context is read with: W3C
// traceparent, and Google's X-Cloud-Trace-Context when no traceparent
// came (a traceparent wins: the propagators run in order and the last
// one that finds a context sets it).
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(cloudTraceOneWay(), propagation.TraceContext{})
}

// New returns a Telemetry recording to mp and tracing with tp, reading
// incoming trace context with prop (nil: Propagator()). A nil tp traces
// nothing (the incoming context is still joined, so logs carry its id).
func New(mp metric.MeterProvider, tp trace.TracerProvider, prop propagation.TextMapPropagator) (*Telemetry, error) {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	if prop == nil {
		prop = Propagator()
	}
	t := &Telemetry{
		tracer:       tp.Tracer(ScopeName),
		prop:         prop,
		reqAttrs:     map[requestKey]requestOpts{},
		serverSpan:   []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)},
		internalSpan: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal)},
	}
	m := mp.Meter(ScopeName)
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	var err error
	t.duration, err = m.Float64Histogram(MetricRequestDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of HTTP requests served, by route, method and status."),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	add(err)
	t.requests, err = m.Int64Counter(MetricRequests, metric.WithUnit("{request}"),
		metric.WithDescription("HTTP requests served, by route, method and status."))
	add(err)
	t.decisions, err = m.Int64Counter(MetricDecisions, metric.WithUnit("{decision}"),
		metric.WithDescription("Rate-limit decisions, by quota (limit) and outcome (allowed, denied, error)."))
	add(err)
	t.batchSize, err = m.Int64Histogram(MetricBatchSize, metric.WithUnit("{event}"),
		metric.WithDescription("Usage events per grouped Postgres write."),
		metric.WithExplicitBucketBoundaries(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000))
	add(err)
	t.writeDuration, err = m.Float64Histogram(MetricWriteDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of grouped usage writes to Postgres (retry included), by outcome."),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
	add(err)
	t.writeFailures, err = m.Int64Counter(MetricWriteFailures, metric.WithUnit("{write}"),
		metric.WithDescription("Grouped usage writes that failed: their calls were refused with 503 and their quota given back."))
	add(err)
	t.authCache, err = m.Int64Counter(MetricAuthCache, metric.WithUnit("{lookup}"),
		metric.WithDescription("API-key cache lookups, by result (hit, negative_hit, miss)."))
	add(err)
	t.dependencyErrs, err = m.Int64Counter(MetricDependencyErrors, metric.WithUnit("{error}"),
		metric.WithDescription("Failed calls to a dependency (redis, postgres) on the request path."))
	add(err)
	t.pendingShutdown, err = m.Int64Gauge(MetricPendingAtShutdown, metric.WithUnit("{event}"),
		metric.WithDescription("Usage events accepted and not yet written when the drain began (phase=begin) and when it ended (phase=end; 0 unless the flush failed)."))
	add(err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	set := func(kv ...attribute.KeyValue) []metric.AddOption {
		return []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(kv...))}
	}
	rec := func(kv ...attribute.KeyValue) []metric.RecordOption {
		return []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(kv...))}
	}
	for l := range numLimits {
		for o := range numOutcomes {
			t.decisionAttrs[l][o] = set(attribute.String("limit", limitNames[l]), attribute.String("outcome", outcomeNames[o]))
		}
	}
	for c := range numCacheResults {
		t.cacheAttrs[c] = set(attribute.String("result", cacheNames[c]))
	}
	for d := range numDependencies {
		t.depAttrs[d] = set(attribute.String("dependency", dependencyNames[d]))
	}
	t.writeOK, t.writeErr = rec(attribute.String("outcome", "ok")), rec(attribute.String("outcome", "error"))
	return t, nil
}

// MetricsURL is the URL of the Prometheus endpoint Setup serves, or "".
func (t *Telemetry) MetricsURL() string {
	if t == nil {
		return ""
	}
	return t.metrics
}

// Shutdown flushes and stops the exporters Setup started: the last
// metrics (the pending-at-shutdown gauge among them) and the spans still
// batched are exported within ctx. Call it last in the drain, after the
// HTTP server's Shutdown and the usage flush. It does nothing for a
// Telemetry built by New, whose providers belong to the caller.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	fns := t.shutdowns
	t.shutdowns = nil
	t.mu.Unlock()
	var errs []error
	for _, f := range fns {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}

// Start starts a child span of ctx's span named name (SpanDecision,
// SpanRecord). Off, it returns ctx and a span that does nothing.
func (t *Telemetry) Start(ctx context.Context, name string) (context.Context, trace.Span) {
	if t == nil {
		return ctx, trace.SpanFromContext(context.Background()) // the no-op span, no allocation
	}
	return t.tracer.Start(ctx, name, t.internalSpan...)
}

// EndSpan ends span, marking it failed when err is not nil.
func EndSpan(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// Decision counts one rate-limit decision.
func (t *Telemetry) Decision(ctx context.Context, l Limit, o Outcome) {
	if t == nil {
		return
	}
	t.decisions.Add(ctx, 1, t.decisionAttrs[l][o]...)
}

// AuthCache counts one API-key cache lookup.
func (t *Telemetry) AuthCache(ctx context.Context, r CacheResult) {
	if t == nil {
		return
	}
	t.authCache.Add(ctx, 1, t.cacheAttrs[r]...)
}

// DependencyError counts a failed call to d.
func (t *Telemetry) DependencyError(ctx context.Context, d Dependency) {
	if t == nil {
		return
	}
	t.dependencyErrs.Add(ctx, 1, t.depAttrs[d]...)
}

// UsageWrite records one grouped usage write of events events that took
// took and failed with err (nil: committed). A failed write also counts
// as a Postgres error.
func (t *Telemetry) UsageWrite(ctx context.Context, events int, took time.Duration, err error) {
	if t == nil {
		return
	}
	t.batchSize.Record(ctx, int64(events))
	if err != nil {
		t.writeDuration.Record(ctx, took.Seconds(), t.writeErr...)
		t.writeFailures.Add(ctx, 1)
		t.dependencyErrs.Add(ctx, 1, t.depAttrs[Postgres]...)
		return
	}
	t.writeDuration.Record(ctx, took.Seconds(), t.writeOK...)
}

// PendingAtShutdown records the usage events not yet written at a phase
// of the drain ("begin" or "end").
func (t *Telemetry) PendingAtShutdown(ctx context.Context, phase string, events int) {
	if t == nil {
		return
	}
	t.pendingShutdown.Record(ctx, int64(events), metric.WithAttributes(attribute.String("phase", phase)))
}

// --- requests ---------------------------------------------------------------

type ctxKey struct{}

// request is a request's telemetry state, in its context: the route the
// router found (SetRoute) and the status written, captured by wrapping
// the ResponseWriter (one allocation for both).
type request struct {
	http.ResponseWriter
	status int
	route  string
}

func (r *request) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *request) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *request) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// SetRoute names the route of the request ctx belongs to: a path of the
// routing table such as "/admin/users/{id}", never the raw URL, so the
// metrics' cardinality stays bounded. Requests no route matched are
// labelled "unmatched". Outside Handler it does nothing.
func SetRoute(ctx context.Context, route string) {
	if rq, ok := ctx.Value(ctxKey{}).(*request); ok {
		rq.route = route
	}
}

// Unmatched is the route label of requests no route matched.
const Unmatched = "unmatched"

type requestKey struct {
	method, route string
	status        int
}

// methods are the request methods kept as attribute values; any other
// is "_OTHER" (a client chooses the method: the label must stay bounded).
var methods = map[string]string{
	http.MethodGet: http.MethodGet, http.MethodPost: http.MethodPost, http.MethodPut: http.MethodPut,
	http.MethodDelete: http.MethodDelete, http.MethodPatch: http.MethodPatch, http.MethodHead: http.MethodHead,
	http.MethodOptions: http.MethodOptions,
}

// requestOpts are the measurement options of one method, route and
// status.
type requestOpts struct {
	add []metric.AddOption
	rec []metric.RecordOption
}

// requestAttrs returns the attribute set of a request, built once per
// method, route and status.
func (t *Telemetry) requestAttrs(method, route string, status int) requestOpts {
	k := requestKey{method, route, status}
	t.mu.RLock()
	o, ok := t.reqAttrs[k]
	t.mu.RUnlock()
	if ok {
		return o
	}
	set := metric.WithAttributeSet(attribute.NewSet(
		attribute.String("http.request.method", method),
		attribute.String("http.route", route),
		attribute.Int("http.response.status_code", status)))
	o = requestOpts{add: []metric.AddOption{set}, rec: []metric.RecordOption{set}}
	t.mu.Lock()
	t.reqAttrs[k] = o
	t.mu.Unlock()
	return o
}

// Handler wraps h (the whole router, outside the request-log middleware,
// so that the log lines carry the span's trace id): it joins the
// incoming trace context (traceparent, else X-Cloud-Trace-Context),
// starts the request's server span, and when h returns records the
// request's count and duration by route, method and status and ends the
// span, named "METHOD route". Off, it returns h.
func (t *Telemetry) Handler(h http.Handler) http.Handler {
	if t == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		method, ok := methods[r.Method]
		if !ok {
			method = "_OTHER"
		}
		ctx := t.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := t.tracer.Start(ctx, method, t.serverSpan...)
		rq := &request{ResponseWriter: w}
		defer func() {
			// The request middleware recovers every panic but
			// http.ErrAbortHandler, which is counted and passed on.
			v := recover()
			status, route := rq.status, rq.route
			switch {
			case status == 0 && v != nil:
				status = http.StatusInternalServerError
			case status == 0:
				status = http.StatusOK
			}
			if route == "" {
				route = Unmatched
			}
			attrs := t.requestAttrs(method, route, status)
			t.duration.Record(ctx, time.Since(start).Seconds(), attrs.rec...)
			t.requests.Add(ctx, 1, attrs.add...)
			if span.IsRecording() {
				span.SetName(method + " " + route)
				span.SetAttributes(attribute.String("http.request.method", method), attribute.String("http.route", route),
					attribute.Int("http.response.status_code", status))
				if status >= 500 {
					span.SetStatus(codes.Error, http.StatusText(status))
				}
			}
			span.End()
			if v != nil {
				panic(v)
			}
		}()
		h.ServeHTTP(rq, r.WithContext(context.WithValue(ctx, ctxKey{}, rq)))
	})
}
