package ratebill

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultKeyHeader is the request header Middleware reads the API key from
// unless MiddlewareOptions.KeyHeader names another.
const DefaultKeyHeader = "X-API-Key"

// maxKeyLen bounds the key Middleware sends to the platform. Platform keys
// are 52 characters; anything far longer is refused as MALFORMED_KEY
// without a call, so a hostile client cannot make the middleware post
// megabytes.
const maxKeyLen = 256

// maxEndpointLen bounds the endpoint label Middleware sends.
const maxEndpointLen = 200

// MiddlewareOptions configure Middleware. The zero value is usable: key in
// X-API-Key, cost 1, fail closed, release on upstream 5xx.
type MiddlewareOptions struct {
	// KeyHeader is the request header holding the API key
	// (DefaultKeyHeader when empty).
	KeyHeader string
	// Cost prices a request in units (1 when nil). It must not be
	// negative; 0 lets the platform charge its default of 1.
	Cost func(*http.Request) int64
	// Endpoint labels a request in usage reports. When nil the label is
	// the method and the route pattern that serves the request (from
	// r.Pattern, or from the wrapped handler when it is an
	// *http.ServeMux: "GET (unmatched)" for a path it does not route),
	// else the method and the path.
	Endpoint func(*http.Request) string
	// FailOpen serves requests when the platform cannot be reached,
	// unverified and unmetered, with a context result whose Unverified is
	// true. The default, false, fails closed: 503 with Retry-After.
	// Platform answers that are not "unavailable" (a 4xx) never fail open.
	FailOpen bool
	// KeepOnUpstream5xx keeps a call metered when the wrapped handler
	// answers 5xx (or panics). By default such a call is released with
	// its release token before Middleware returns, so the API's client is
	// not billed for the API's failure.
	KeepOnUpstream5xx bool
	// Timeout bounds the /verify call of one request, and separately its
	// release; 0 leaves the Client's timeout.
	Timeout time.Duration
	// Logger receives failures the client is not told about (a release
	// that failed, an unexpected platform answer). slog.Default() when
	// nil. Keys are never logged.
	Logger *slog.Logger
}

// Middleware protects an http.Handler with the platform: each request's
// API key is verified, and the call metered, by c before the handler
// runs. See the package documentation for the statuses it answers.
func Middleware(c *Client, o MiddlewareOptions) func(http.Handler) http.Handler {
	if o.KeyHeader == "" {
		o.KeyHeader = DefaultKeyHeader
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return func(next http.Handler) http.Handler {
		g := &gate{c: c, o: o, next: next}
		if g.o.Endpoint == nil {
			mux, _ := next.(*http.ServeMux)
			g.o.Endpoint = func(r *http.Request) string { return defaultEndpoint(mux, r) }
		}
		return g
	}
}

// ctxKey is the context key of a request's VerifyResult.
type ctxKey struct{}

// FromContext returns the platform's decision on the request whose context
// is ctx, as Middleware stored it for the handler. With FailOpen the
// result may have Unverified set and nothing else.
func FromContext(ctx context.Context) (*VerifyResult, bool) {
	r, ok := ctx.Value(ctxKey{}).(*VerifyResult)
	return r, ok && r != nil
}

// NewContext returns a copy of ctx carrying r, as Middleware does; handler
// tests use it to stand in for the middleware.
func NewContext(ctx context.Context, r *VerifyResult) context.Context {
	return context.WithValue(ctx, ctxKey{}, r)
}

// gate is the middleware around one handler.
type gate struct {
	c    *Client
	o    MiddlewareOptions
	next http.Handler
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ids := r.Header.Values("X-Request-Id")
	var id string
	switch {
	case len(ids) == 0 || (len(ids) == 1 && ids[0] == ""):
		id = NewRequestID()
		r.Header.Set("X-Request-Id", id)
	case len(ids) == 1 && ValidRequestID(ids[0]):
		id = ids[0]
	default:
		writeProblem(w, r, "", http.StatusBadRequest, "invalid-request-id",
			"X-Request-Id must be one value of 8 to 128 characters of A-Z a-z 0-9 . _ : -")
		return
	}
	w.Header().Set("X-Request-Id", id)

	key := r.Header.Get(g.o.KeyHeader)
	if key == "" {
		g.unauthorized(w, r, id, "missing-key", "the "+g.o.KeyHeader+" header with an API key is required")
		return
	}
	if len(key) > maxKeyLen {
		g.unauthorized(w, r, id, kebab(CodeMalformedKey), detail(CodeMalformedKey, nil))
		return
	}
	var cost int64 = 1
	if g.o.Cost != nil {
		cost = g.o.Cost(r)
	}
	endpoint := g.o.Endpoint(r)
	if len(endpoint) > maxEndpointLen {
		endpoint = endpoint[:maxEndpointLen]
	}

	ctx, cancel := g.withTimeout(r.Context())
	res, err := g.c.Verify(ctx, key, VerifyOptions{Cost: cost, Endpoint: endpoint, RequestID: id})
	cancel()
	if err != nil {
		g.failed(w, r, id, err)
		return
	}
	h := w.Header()
	for name, v := range res.Headers {
		if name != "X-Request-Id" {
			h[name] = append([]string(nil), v...)
		}
	}
	if res.Replayed {
		h.Set("Idempotent-Replayed", "true")
	}
	if !res.Valid {
		g.deny(w, r, id, res)
		return
	}
	g.serve(w, r.WithContext(NewContext(r.Context(), res)), res)
}

// serve runs the handler for an admitted call and releases the call when
// the handler failed, before returning.
func (g *gate) serve(w http.ResponseWriter, r *http.Request, res *VerifyResult) {
	sw := &statusWriter{ResponseWriter: w}
	release := !g.o.KeepOnUpstream5xx && res.ReleaseToken != ""
	if release {
		defer func() {
			if p := recover(); p != nil {
				// A panic is a failure too (net/http drops the
				// connection): release, then let it go on.
				g.release(r, res)
				panic(p)
			}
		}()
	}
	g.next.ServeHTTP(sw, r)
	if release && sw.status >= http.StatusInternalServerError {
		g.release(r, res)
	}
}

// release releases an admitted call, logging a failure: the answer is
// already on its way, so the client cannot be told.
func (g *gate) release(r *http.Request, res *VerifyResult) {
	ctx, cancel := g.withTimeout(context.WithoutCancel(r.Context()))
	defer cancel()
	if err := g.c.Release(ctx, res.ReleaseToken); err != nil {
		g.o.Logger.WarnContext(ctx, "ratebill: releasing a failed call", "request_id", res.RequestID, "error", err.Error())
	}
}

func (g *gate) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if g.o.Timeout > 0 {
		return context.WithTimeout(ctx, g.o.Timeout)
	}
	return context.WithCancel(ctx)
}

// deny answers a call the platform did not admit.
func (g *gate) deny(w http.ResponseWriter, r *http.Request, id string, res *VerifyResult) {
	status := res.Code.HTTPStatus()
	if status < 400 {
		// valid:false with code VALID: a denial all the same.
		status = http.StatusForbidden
	}
	switch status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `ApiKey header="`+g.o.KeyHeader+`"`)
	case http.StatusTooManyRequests:
		if w.Header().Get("Retry-After") == "" {
			secs := int64(1)
			if res.RateLimit != nil && res.RateLimit.RetryAfter > 0 {
				secs = res.RateLimit.RetryAfter
			}
			w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		}
	}
	writeProblem(w, r, id, status, kebab(res.Code), detail(res.Code, res.RateLimit))
}

// unauthorized answers 401 without asking the platform.
func (g *gate) unauthorized(w http.ResponseWriter, r *http.Request, id, typ, msg string) {
	w.Header().Set("WWW-Authenticate", `ApiKey header="`+g.o.KeyHeader+`"`)
	writeProblem(w, r, id, http.StatusUnauthorized, typ, msg)
}

// failed answers a call the platform did not decide.
func (g *gate) failed(w http.ResponseWriter, r *http.Request, id string, err error) {
	var apiErr *APIError
	unavailable := errors.Is(err, ErrUnavailable) ||
		(errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil)
	switch {
	case unavailable && g.o.FailOpen:
		g.o.Logger.WarnContext(r.Context(), "ratebill: platform unavailable; serving unverified (FailOpen)", "request_id", id, "error", err.Error())
		g.next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), &VerifyResult{RequestID: id, Unverified: true})))
	case unavailable:
		g.o.Logger.WarnContext(r.Context(), "ratebill: platform unavailable", "request_id", id, "error", err.Error())
		w.Header().Set("Retry-After", "1")
		writeProblem(w, r, id, http.StatusServiceUnavailable, "service-unavailable",
			"the API cannot verify keys right now; retry later")
	case errors.As(err, &apiErr) && (apiErr.Status == http.StatusBadRequest || apiErr.Status == http.StatusConflict):
		// About the client's request (its id): the client's to fix.
		typ := strings.TrimPrefix(apiErr.Type, problemTypePrefix)
		if typ == apiErr.Type {
			typ = "invalid-request"
		}
		writeProblem(w, r, id, apiErr.Status, typ, apiErr.Detail)
	case r.Context().Err() != nil:
		// The client went away; nobody reads this.
		writeProblem(w, r, id, http.StatusServiceUnavailable, "service-unavailable", "request canceled")
	default:
		g.o.Logger.ErrorContext(r.Context(), "ratebill: unexpected verify failure", "request_id", id, "error", err.Error())
		writeProblem(w, r, id, http.StatusInternalServerError, "internal-error",
			"internal error; quote the request id when reporting it")
	}
}

// problemTypePrefix starts every problem type URI of the platform.
const problemTypePrefix = "urn:problem-type:ratebill:"

// kebab turns a code into the last part of its problem type:
// RATE_LIMITED -> rate-limited.
func kebab(c Code) string {
	if c == "" {
		return "denied"
	}
	return strings.ReplaceAll(strings.ToLower(string(c)), "_", "-")
}

// detail is the client-facing explanation of a denial.
func detail(c Code, rl *RateLimit) string {
	switch c {
	case CodeMalformedKey:
		return "the API key is malformed"
	case CodeNotFound:
		return "the API key is not known"
	case CodeRevoked:
		return "the API key was revoked"
	case CodeExpired:
		return "the API key has expired"
	case CodeSuspended:
		return "the account is suspended"
	case CodeRateLimited:
		if rl != nil && rl.RetryAfter > 0 {
			return "rate limit exceeded; retry in " + strconv.FormatInt(rl.RetryAfter, 10) + " s"
		}
		return "rate limit exceeded"
	case CodeSpendCapExceeded:
		return "the account's spend cap is reached; retrying does not help until it is raised"
	case CodeDuplicate:
		return "this request id was replayed too often; send a new X-Request-Id"
	default:
		return "the call was denied (" + string(c) + ")"
	}
}

// writeProblem writes an RFC 9457 problem in the platform's shape.
func writeProblem(w http.ResponseWriter, r *http.Request, id string, status int, typ, msg string) {
	body, _ := json.Marshal(problem{
		Type:      problemTypePrefix + typ,
		Title:     http.StatusText(status),
		Status:    status,
		Detail:    msg,
		Instance:  r.URL.Path,
		RequestID: id,
	})
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// defaultEndpoint labels r by the route pattern that serves it, with the
// method in front unless the pattern has one.
func defaultEndpoint(mux *http.ServeMux, r *http.Request) string {
	pattern := r.Pattern
	if pattern == "" && mux != nil {
		_, pattern = mux.Handler(r)
	}
	if pattern == "" && mux != nil {
		// The mux will answer 404 or redirect: one label for all such
		// paths keeps the labels bounded.
		return r.Method + " (unmatched)"
	}
	if pattern == "" {
		return r.Method + " " + r.URL.Path
	}
	if strings.Contains(pattern, " ") {
		return pattern
	}
	return r.Method + " " + pattern
}

// statusWriter records the status the handler answers with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush lets streaming handlers flush through the middleware.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
