package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
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

const (
	requestIDKey ctxKey = iota
	loggerKey
)

// RequestID returns the request id of ctx ("" outside a request).
func RequestID(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey).(string)
	return s
}

// Logger returns the request's logger (with its request id and trace), or
// slog.Default outside a request.
func Logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

// validRequestID accepts client-chosen ids that are safe to log and store.
var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._:\-]{8,128}$`)

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
		if !validRequestID.MatchString(id) {
			id = newRequestID()
		}
		w.Header().Set(RequestIDHeader, id)
		log := logger.With("request_id", id)
		if trace := traceID(r); trace != "" && project != "" {
			log = log.With("logging.googleapis.com/trace", "projects/"+project+"/traces/"+trace)
		}
		ctx := context.WithValue(context.WithValue(r.Context(), requestIDKey, id), loggerKey, log)
		r = r.WithContext(ctx)
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.ErrorContext(ctx, "panic", "panic", v)
				if !rec.wrote {
					WriteProblem(rec, Problem{Type: ProblemType("internal-error"), Title: "Internal Server Error", Status: 500, RequestID: id})
				}
			}
			level := slog.LevelInfo
			if rec.status >= 500 {
				level = slog.LevelError
			}
			if !log.Enabled(ctx, level) {
				return
			}
			log.LogAttrs(ctx, level, r.Method+" "+r.URL.Path, slog.Group("httpRequest",
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

func newRequestID() string {
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
