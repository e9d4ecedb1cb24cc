package httpapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestTraceID(t *testing.T) {
	t.Parallel()
	const tid = "4bf92f3577b34da6a3ce929d0e0e4736"
	tests := []struct {
		name, traceparent, cloud, want string
	}{
		{"traceparent", "00-" + tid + "-00f067aa0ba902b7-01", "", tid},
		{"future version, longer", "01-" + tid + "-00f067aa0ba902b7-01-extra", "", tid},
		{"version ff", "ff-" + tid + "-00f067aa0ba902b7-01", "", ""},
		{"version 00 too long", "00-" + tid + "-00f067aa0ba902b7-01-x", "", ""},
		{"uppercase trace id", "00-" + strings.ToUpper(tid) + "-00f067aa0ba902b7-01", "", ""},
		{"zero trace id", "00-" + strings.Repeat("0", 32) + "-00f067aa0ba902b7-01", "", ""},
		{"zero parent id", "00-" + tid + "-0000000000000000-01", "", ""},
		{"not hex", "00-" + strings.Repeat("z", 32) + "-00f067aa0ba902b7-01", "", ""},
		{"injection", "00-\"},\"severity\":\"X\",\"a\":{\"b\":\"-00f067aa0ba902b7-01", "", ""},
		{"bad flags", "00-" + tid + "-00f067aa0ba902b7-0g", "", ""},
		{"cloud", "", tid + "/123;o=1", tid},
		{"cloud no span", "", tid, tid},
		{"cloud short", "", "abc123/1;o=1", ""},
		{"cloud not hex", "", strings.Repeat("x", 32) + "/1", ""},
		{"cloud zero", "", strings.Repeat("0", 32) + "/1", ""},
		{"bad traceparent falls back", "garbage", tid + "/1", tid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tt.traceparent != "" {
				r.Header.Set("traceparent", tt.traceparent)
			}
			if tt.cloud != "" {
				r.Header.Set("X-Cloud-Trace-Context", tt.cloud)
			}
			if got := traceID(r); got != tt.want {
				t.Errorf("traceID = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestRequestLogHostileInput sends what a client controls (method, URL,
// user agent, trace headers, remote address as a proxy might pass it)
// with control characters, invalid UTF-8 and huge sizes, and checks that
// every log line is one JSON object of bounded length.
func TestRequestLogHostileInput(t *testing.T) {
	t.Parallel()
	huge := strings.Repeat("A", 500<<10)
	ctl := strings.Repeat("\x00\x01\x1b\"\\\u2028", 200)
	bad := strings.Repeat("\xff\xfe", 400)
	tests := []struct {
		name                     string
		method, target, ua, addr string
	}{
		{"huge user agent", "GET", "/x", huge, "1.2.3.4:5"},
		{"huge url", "GET", "/" + strings.Repeat("a", 100<<10) + "?q=" + strings.Repeat("b", 100<<10), "ua", "1.2.3.4:5"},
		{"control characters", "GET", "/x", ctl, ctl},
		{"invalid utf-8", "GET", "/x", bad, bad},
		{"huge method", strings.Repeat("M", 20<<10), "/x", ctl + bad, huge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				Logger(r.Context()).Warn("handler line")
				w.WriteHeader(204)
			}), NewLogger(&buf, slog.LevelInfo), "proj")
			r := httptest.NewRequest("GET", "/", nil)
			r.Method = tt.method
			r.URL.Path = tt.target
			r.RequestURI = tt.target
			r.Header.Set("User-Agent", tt.ua)
			r.Header.Set("traceparent", "00-"+ctl+bad)
			r.Header.Set("X-Cloud-Trace-Context", bad+"/"+huge)
			r.RemoteAddr = tt.addr
			h.ServeHTTP(httptest.NewRecorder(), r)

			sc := bufio.NewScanner(&buf)
			sc.Buffer(nil, 4<<20)
			lines := 0
			for sc.Scan() {
				lines++
				line := sc.Bytes()
				if len(line) > maxLogLine {
					t.Errorf("line of %d bytes, bound %d", len(line), maxLogLine)
				}
				var v map[string]any
				if err := json.Unmarshal(line, &v); err != nil {
					t.Fatalf("not one JSON object: %v", err)
				}
				if _, ok := v["logging.googleapis.com/trace"]; ok {
					t.Errorf("invalid trace headers logged: %v", v["logging.googleapis.com/trace"])
				}
				if hr, ok := v["httpRequest"].(map[string]any); ok {
					if ua := hr["userAgent"].(string); len(tt.ua) > maxLogField && !strings.HasSuffix(ua, truncatedMarker) {
						t.Errorf("user agent cut without the marker: ...%q", ua[max(0, len(ua)-20):])
					}
				}
			}
			if err := sc.Err(); err != nil {
				t.Fatal(err)
			}
			if lines != 2 {
				t.Fatalf("%d lines, want 2", lines)
			}
		})
	}
}

func TestClip(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "short", strings.Repeat("é", 1000), strings.Repeat("\x01", 1000), strings.Repeat("a", maxLogField), strings.Repeat("a", maxLogField+1)} {
		got := clip(s)
		if w := jsonWidth(got); w > maxLogField {
			t.Errorf("clip(%.10q…): escaped width %d > %d", s, w, maxLogField)
		}
		if jsonWidth(s) <= maxLogField && got != s {
			t.Errorf("clip changed a short value %.10q", s)
		}
		if jsonWidth(s) > maxLogField && !strings.HasSuffix(got, truncatedMarker) {
			t.Errorf("clip(%.10q…) has no marker", s)
		}
	}
}

// jsonWidth measures what slog's JSON handler writes for s (without quotes).
func jsonWidth(s string) int {
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key != "v" {
			return slog.Attr{}
		}
		return a
	}})).Info("", "v", s)
	return buf.Len() - len(`{"v":""}`+"\n")
}

// TestRefusedRequestLogsAreBounded: a flood of refused requests (bad keys)
// logs at most refusedLogsPerSecond lines a second, and says how many it
// left out; admitted requests are all logged.
func TestRefusedRequestLogsAreBounded(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	status := http.StatusUnauthorized
	h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) }), NewLogger(&buf, slog.LevelInfo), "")
	start := time.Now()
	for range 1000 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/usage", nil))
	}
	status = http.StatusOK
	for range 5 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/usage", nil))
	}
	seconds := int(time.Since(start)/time.Second) + 1
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	refusedLines, okLines := 0, 0
	for _, l := range lines {
		switch {
		case strings.Contains(l, `"status":401`):
			refusedLines++
		case strings.Contains(l, `"status":200`):
			okLines++
		}
	}
	if refusedLines > refusedLogsPerSecond*(seconds+1) || refusedLines == 0 || okLines != 5 {
		t.Fatalf("%d lines of 1,000 refused requests in %d s (bound %d/s), %d of 5 admitted", refusedLines, seconds, refusedLogsPerSecond, okLines)
	}
}
