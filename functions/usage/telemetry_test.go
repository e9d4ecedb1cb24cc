package usage_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ratebill/platform/functions/usage"
	"github.com/ratebill/platform/shared/apikey"
	"github.com/ratebill/platform/shared/deps"
	"github.com/ratebill/platform/shared/deps/depstest"
	"github.com/ratebill/platform/shared/httpapi"
	"github.com/ratebill/platform/shared/telemetry"
)

// syncBuffer is a log sink safe for the handler's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines(t *testing.T) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(s.b.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// TestTrace: a metered GET /usage is one trace, joined to the caller's
// traceparent or X-Cloud-Trace-Context: a server span named for its
// route with that trace id and the caller's span as parent, children for
// the Redis decision and the Postgres write, and the request log line
// carrying the same trace and span ids.
func TestTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tel, err := telemetry.New(sdkmetric.NewMeterProvider(), tp, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := depstest.New(t, map[string]string{"GOOGLE_CLOUD_PROJECT": "proj"}, deps.WithTelemetry(tel))
	logs := &syncBuffer{}
	d.Logger = httpapi.NewLogger(logs, slog.LevelDebug)
	key, _ := apikey.Generate(nil)
	if _, err := d.Store.CreateUser(context.Background(), "tracer", "tracer@example.com", apikey.Hash(key), apikey.Display(key)); err != nil {
		t.Fatal(err)
	}
	h, err := usage.Handler(d)
	if err != nil {
		t.Fatal(err)
	}

	const traceHex = "4bf92f3577b34da6a3ce929d0e0e4736"
	const parentHex = "00f067aa0ba902b7"
	tests := []struct {
		name       string
		header     map[string]string
		wantTrace  string // "" = a new trace
		wantParent string
	}{
		{"traceparent", map[string]string{"traceparent": "00-" + traceHex + "-" + parentHex + "-01"}, traceHex, parentHex},
		// 67667974448284343 = 0xf067aa0ba902b7 (X-Cloud-Trace-Context's span id is decimal).
		{"x-cloud-trace-context", map[string]string{"X-Cloud-Trace-Context": traceHex + "/67667974448284343;o=1"}, traceHex, parentHex},
		{"traceparent wins over x-cloud-trace-context", map[string]string{
			"traceparent":           "00-" + traceHex + "-" + parentHex + "-01",
			"X-Cloud-Trace-Context": "0af7651916cd43dd8448eb211c80319c/1;o=1"}, traceHex, parentHex},
		{"no header: a new trace", nil, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec.Reset()
			logs.mu.Lock()
			logs.b.Reset()
			logs.mu.Unlock()
			r := httptest.NewRequest(http.MethodGet, "/usage", nil)
			r.Header.Set("X-API-Key", key)
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			spans := rec.Ended()
			var server sdktrace.ReadOnlySpan
			byName := map[string]sdktrace.ReadOnlySpan{}
			for _, s := range spans {
				byName[s.Name()] = s
				if s.SpanKind() == trace.SpanKindServer {
					server = s
				}
			}
			if server == nil {
				t.Fatalf("no server span among %d spans", len(spans))
			}
			if server.Name() != "GET /usage" {
				t.Errorf("server span %q, want %q", server.Name(), "GET /usage")
			}
			sc := server.SpanContext()
			switch {
			case tc.wantTrace != "" && sc.TraceID().String() != tc.wantTrace:
				t.Errorf("trace id %s, want the caller's %s", sc.TraceID(), tc.wantTrace)
			case tc.wantTrace != "" && (server.Parent().SpanID().String() != tc.wantParent || !server.Parent().IsRemote()):
				t.Errorf("parent %s (remote %v), want the caller's %s", server.Parent().SpanID(), server.Parent().IsRemote(), tc.wantParent)
			case tc.wantTrace == "" && (!sc.IsValid() || server.Parent().IsValid()):
				t.Errorf("without a header: span %v parent %v, want a new root", sc, server.Parent())
			}
			attrs := map[string]string{}
			for _, kv := range server.Attributes() {
				attrs[string(kv.Key)] = kv.Value.String()
			}
			if attrs["http.route"] != "/usage" || attrs["http.response.status_code"] != "200" {
				t.Errorf("server span attributes %v", attrs)
			}
			for _, name := range []string{telemetry.SpanDecision, telemetry.SpanRecord} {
				c, ok := byName[name]
				if !ok {
					t.Errorf("no %s span among %d", name, len(spans))
					continue
				}
				if c.Parent().SpanID() != sc.SpanID() || c.SpanContext().TraceID() != sc.TraceID() {
					t.Errorf("%s: parent %s in trace %s, want child of the server span %s", name, c.Parent().SpanID(), c.SpanContext().TraceID(), sc.SpanID())
				}
			}

			var line map[string]any
			for _, l := range logs.lines(t) {
				if l["message"] == "GET /usage" {
					line = l
				}
			}
			if line == nil {
				t.Fatal("no request log line")
			}
			if want := "projects/proj/traces/" + sc.TraceID().String(); line["logging.googleapis.com/trace"] != want {
				t.Errorf("log trace %v, want %s", line["logging.googleapis.com/trace"], want)
			}
			if line["logging.googleapis.com/spanId"] != sc.SpanID().String() {
				t.Errorf("log span %v, want %s", line["logging.googleapis.com/spanId"], sc.SpanID())
			}
		})
	}
}
