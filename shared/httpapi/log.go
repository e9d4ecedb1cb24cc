package httpapi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"github.com/ratebill/platform/shared"
)

// NewLogger returns a JSON logger whose records Cloud Logging understands:
// "severity" and "message" instead of slog's "level" and "msg".
func NewLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.LevelKey:
				a.Key = "severity"
				if l, ok := a.Value.Any().(slog.Level); ok && l == slog.LevelWarn {
					a.Value = slog.StringValue("WARNING")
				}
			case slog.MessageKey:
				a.Key = "message"
			case slog.TimeKey:
				a.Key = "time"
			}
			return a
		},
	}))
}

type ctxKey int

const requestKey ctxKey = iota

// requestInfo is what Middleware puts in a request's context: one value,
// and the request's logger built only when something logs (most requests
// at LOG_LEVEL=warn never do; building it costs allocations).
type requestInfo struct {
	id    string
	base  *slog.Logger
	trace string // "projects/P/traces/T", or ""
	// span is the request's span (shared/telemetry) when one is in the
	// context: its id goes into the log lines beside the trace.
	span trace.SpanContext
	// malformedID: the client sent an X-Request-Id that breaks the rule.
	malformedID bool
	once        sync.Once
	log         *slog.Logger
}

func (ri *requestInfo) logger() *slog.Logger {
	ri.once.Do(func() {
		ri.log = ri.base.With("request_id", ri.id)
		if ri.trace != "" {
			ri.log = ri.log.With("logging.googleapis.com/trace", ri.trace)
			if ri.span.IsValid() {
				ri.log = ri.log.With("logging.googleapis.com/spanId", ri.span.SpanID().String(),
					"logging.googleapis.com/trace_sampled", ri.span.IsSampled())
			}
		}
	})
	return ri.log
}

// RequestID returns the request id of ctx ("" outside a request).
func RequestID(ctx context.Context) string {
	if ri, ok := ctx.Value(requestKey).(*requestInfo); ok {
		return ri.id
	}
	return ""
}

// ErrMalformedRequestID is the answer to a malformed client request id
// on routes where the id is the idempotency key.
var ErrMalformedRequestID = &shared.Error{Code: shared.EInvalidRequestID, Message: "X-Request-Id must be 8 to 128 characters of A-Z a-z 0-9 . _ : -"}

// MalformedRequestID reports whether the client sent an X-Request-Id that
// breaks the rule (ValidRequestID); RequestID is then one of our own.
func MalformedRequestID(ctx context.Context) bool {
	ri, ok := ctx.Value(requestKey).(*requestInfo)
	return ok && ri.malformedID
}

// Logger returns the request's logger (with its request id and trace), or
// slog.Default outside a request.
func Logger(ctx context.Context) *slog.Logger {
	if ri, ok := ctx.Value(requestKey).(*requestInfo); ok {
		return ri.logger()
	}
	return slog.Default()
}

// ValidRequestID reports whether a client-chosen id is kept (the gateways
// use the same rule): ids that are safe to log and store:
// 8 to 128 of A-Z a-z 0-9 . _ : - (a loop rather than a regular
// expression: it runs on every request).
func ValidRequestID(id string) bool {
	if len(id) < 8 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// RequestIDHeader carries the request id both ways. A client that sends
// one makes its request idempotent for metering: a retry with the same id
// is not billed twice.
const RequestIDHeader = "X-Request-Id"

// Middleware wraps h with what every function does around a request:
// a request id (the client's X-Request-Id when well-formed, else a new
// UUIDv7), a panic guard answering 500, and one Cloud Logging request log
// line with status and latency. project links logs to Cloud Trace: the
// lines carry the trace id of the request's span when telemetry put one
// in the context (shared/telemetry's Handler runs outside this one),
// else of its traceparent or X-Cloud-Trace-Context header.
func Middleware(h http.Handler, logger *slog.Logger, project string) http.Handler {
	sampler := &logSampler{limit: refusedLogsPerSecond}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(RequestIDHeader)
		// A client's id is its idempotency key: a malformed one is noted
		// (MalformedRequestID) so that metered routes refuse it (400
		// invalid-request-id) rather than bill a retry twice under a
		// replacement; the answer and the logs carry an id of our own.
		malformed := id != "" && !ValidRequestID(id)
		if id == "" || malformed {
			id = NewRequestID()
		}
		w.Header()[RequestIDHeader] = []string{id} // canonical already
		ri := &requestInfo{id: id, base: logger, malformedID: malformed}
		if project != "" {
			// The request's span (telemetry on) has joined the incoming
			// trace or started one: its trace id is the one to log.
			// Without a span, the client's header's.
			if sc := trace.SpanContextFromContext(r.Context()); sc.HasTraceID() {
				ri.trace, ri.span = "projects/"+project+"/traces/"+sc.TraceID().String(), sc
			} else if id := traceID(r); id != "" {
				ri.trace = "projects/" + project + "/traces/" + id
			}
		}
		ctx := context.WithValue(r.Context(), requestKey, ri)
		r = r.WithContext(ctx)
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				err := fmt.Errorf("panic: %v", v)
				if rec.wrote {
					ri.logger().ErrorContext(ctx, "internal error", "error", err.Error())
				} else {
					Error(rec, r, err)
				}
			}
			level := slog.LevelInfo
			if rec.status >= 500 {
				level = slog.LevelError
			}
			if !logger.Enabled(ctx, level) {
				return
			}
			if refused(rec.status) {
				if ok, suppressed := sampler.allow(time.Now()); !ok {
					return
				} else if suppressed > 0 {
					logger.LogAttrs(ctx, slog.LevelWarn, "refused requests not logged one by one",
						slog.Int64("suppressed", suppressed), slog.Int("per_second", refusedLogsPerSecond))
				}
			}
			method := clip(r.Method)
			ri.logger().LogAttrs(ctx, level, method+" "+clip(r.URL.Path), slog.Group("httpRequest",
				slog.String("requestMethod", method),
				slog.String("requestUrl", clip(r.URL.RequestURI())),
				slog.Int("status", rec.status),
				slog.Int64("responseSize", rec.size),
				slog.String("userAgent", clip(r.UserAgent())),
				slog.String("remoteIp", clip(r.RemoteAddr)),
				slog.String("protocol", clip(r.Proto)),
				slog.String("latency", strconv.FormatFloat(time.Since(start).Seconds(), 'f', 6, 64)+"s"),
			))
		}()
		h.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
	})
}

// NewRequestID returns a new request id (a UUIDv7, time-ordered): the one
// generator of the platform, its gateways and its middleware.
func NewRequestID() string {
	u, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return u.String()
}

// traceID returns the trace id of r's traceparent header (W3C Trace
// Context) or, failing that, of its X-Cloud-Trace-Context header, and ""
// when neither is well-formed: a client's header reaches the log only
// when it is exactly 32 lowercase hex digits, not all zeros.
func traceID(r *http.Request) string {
	if id, ok := traceparentID(r.Header.Get("traceparent")); ok {
		return id
	}
	if xc := r.Header.Get("X-Cloud-Trace-Context"); xc != "" {
		// TRACE_ID/SPAN_ID;o=OPTIONS; only the trace id is used.
		id, _, _ := strings.Cut(xc, "/")
		if len(id) == 32 && isHex(id, true) && !allZeros(id) {
			return strings.ToLower(id)
		}
	}
	return ""
}

// traceparentID validates a traceparent header value,
// version-traceid-parentid-flags (2, 32, 16 and 2 lowercase hex digits;
// version ff and all-zero ids are invalid; a version above 00 may carry
// more fields after a dash), and returns its trace id.
func traceparentID(tp string) (string, bool) {
	if len(tp) < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' {
		return "", false
	}
	version, trace, parent, flags := tp[0:2], tp[3:35], tp[36:52], tp[53:55]
	if !isHex(version, false) || version == "ff" || !isHex(trace, false) || allZeros(trace) ||
		!isHex(parent, false) || allZeros(parent) || !isHex(flags, false) {
		return "", false
	}
	if len(tp) > 55 && (version == "00" || tp[55] != '-') {
		return "", false
	}
	return trace, true
}

func isHex(s string, upperOK bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || upperOK && 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func allZeros(s string) bool { return strings.Trim(s, "0") == "" }

// Request log bounds: every client-supplied value in the request log
// (method, URL, user agent, remote address, protocol) takes at most
// maxLogField bytes of the JSON line once escaped, so a request log line
// stays under maxLogLine whatever the client sends (a 500 KB User-Agent
// was once a 500 KB line).
const (
	maxLogField     = 512
	maxLogLine      = 8 << 10
	truncatedMarker = "...[truncated]"
)

// clip returns s, or its longest prefix followed by truncatedMarker that
// fits maxLogField bytes as slog's JSON handler escapes it (a control
// character takes 6 bytes, an invalid byte becomes the 6 bytes \ufffd).
func clip(s string) string {
	if len(s) <= maxLogField/6 {
		return s // even fully escaped it fits
	}
	const budget = maxLogField - len(truncatedMarker)
	w, cut := 0, -1
	for i := 0; i < len(s); {
		c, size := s[i], 1
		var n int
		switch {
		case c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\':
			n = 1
		case c == '"', c == '\\', c == '\n', c == '\r', c == '\t':
			n = 2
		case c < utf8.RuneSelf:
			n = 6
		default:
			var r rune
			r, size = utf8.DecodeRuneInString(s[i:])
			switch {
			case r == utf8.RuneError && size == 1, r == '\u2028', r == '\u2029':
				n = 6
			default:
				n = size
			}
		}
		if cut < 0 && w+n > budget {
			cut = i
		}
		w += n
		if w > maxLogField {
			return s[:cut] + truncatedMarker
		}
		i += size
	}
	return s
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	size   int64
	wrote  bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if !s.wrote {
		s.status, s.wrote = http.StatusOK, true
	}
	n, err := s.ResponseWriter.Write(b)
	s.size += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// refusedLogsPerSecond bounds the request log lines of refused requests
// (401, 403, 429) per second per instance: a flood of bad keys must not
// fill the disk or the Cloud Logging bill. What is left out is counted and
// reported in one line with the next refused request that is logged.
const refusedLogsPerSecond = 20

func refused(status int) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusTooManyRequests
}

// logSampler lets limit lines through per wall-clock second.
type logSampler struct {
	limit      int
	mu         sync.Mutex
	second     int64
	n          int
	suppressed int64
}

// allow reports whether a line may be logged now and, when it may, how
// many were suppressed since the last one logged.
func (s *logSampler) allow(now time.Time) (bool, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec := now.Unix(); sec != s.second {
		s.second, s.n = sec, 0
	}
	if s.n >= s.limit {
		s.suppressed++
		return false, 0
	}
	s.n++
	sup := s.suppressed
	s.suppressed = 0
	return true, sup
}
