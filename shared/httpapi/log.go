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

	"github.com/google/uuid"

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
// line with status and latency. project links logs to Cloud Trace.
func Middleware(h http.Handler, logger *slog.Logger, project string) http.Handler {
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
		if trace := traceID(r); trace != "" && project != "" {
			ri.trace = "projects/" + project + "/traces/" + trace
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
			ri.logger().LogAttrs(ctx, level, r.Method+" "+r.URL.Path, slog.Group("httpRequest",
				slog.String("requestMethod", r.Method),
				slog.String("requestUrl", r.URL.RequestURI()),
				slog.Int("status", rec.status),
				slog.Int64("responseSize", rec.size),
				slog.String("userAgent", r.UserAgent()),
				slog.String("remoteIp", r.RemoteAddr),
				slog.String("protocol", r.Proto),
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

// traceID extracts the trace id from traceparent or X-Cloud-Trace-Context.
func traceID(r *http.Request) string {
	if tp := r.Header.Get("traceparent"); len(tp) >= 55 && tp[2] == '-' {
		return tp[3:35]
	}
	if xc := r.Header.Get("X-Cloud-Trace-Context"); xc != "" {
		id, _, _ := strings.Cut(xc, "/")
		return id
	}
	return ""
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
