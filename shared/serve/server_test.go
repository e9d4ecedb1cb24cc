package serve

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startRaw serves NewServer(h) on 127.0.0.1 and returns its address.
func startRaw(t *testing.T) string {
	return startOn(t, func(ln net.Listener) net.Listener { return ln })
}

// startServed is startRaw on Listener(ln), as Serve serves.
func startServed(t *testing.T) string { return startOn(t, Listener) }

func startOn(t *testing.T, wrap func(net.Listener) net.Listener) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %q", r.Method, r.URL.Path, b)
	})
	srv := NewServer(h, Timeouts{ReadHeader: 2 * time.Second, Read: 2 * time.Second, Write: 2 * time.Second, Idle: 5 * time.Second})
	go srv.Serve(wrap(ln))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// exchange writes raw to a new connection and reads every response until
// the server closes it or goes quiet for wait; closed says which.
func exchange(t *testing.T, addr, raw string, wait time.Duration) (resps []*http.Response, bodies []string, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for {
		c.SetReadDeadline(time.Now().Add(wait))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return resps, bodies, false
			}
			return resps, bodies, errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		}
		b, _ := io.ReadAll(resp.Body)
		resps, bodies = append(resps, resp), append(bodies, string(b))
	}
}

// TestNoSmugglingOnOneConnection: a request with both Content-Length and
// Transfer-Encoding gets one answer and its connection is closed, so the
// bytes a front proxy would frame differently (here a second request
// hidden where Content-Length says the body ends) are never served (RFC
// 9112 section 6.3: the server MUST close the connection after
// responding to such a request). Go's server used to keep the connection
// and answer the smuggled GET /smuggled too.
func TestNoSmugglingOnOneConnection(t *testing.T) {
	t.Parallel()
	addr := startServed(t)
	raw := "POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"0\r\n\r\n" +
		"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	resps, bodies, closed := exchange(t, addr, raw, time.Second)
	if len(resps) != 1 || !closed {
		t.Fatalf("%d responses %q, connection closed %v; want 1 and closed", len(resps), bodies, closed)
	}
	if strings.Contains(bodies[0], "smuggled") {
		t.Fatalf("smuggled request served: %q", bodies[0])
	}

	// A chunked request alone is served, and is the last of its connection.
	raw = "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n" + "GET /d HTTP/1.1\r\nHost: x\r\n\r\n"
	resps, bodies, closed = exchange(t, addr, raw, time.Second)
	if len(resps) != 1 || !closed || bodies[0] != `POST /c "hi"` {
		t.Fatalf("chunked: %d responses %q, closed %v", len(resps), bodies, closed)
	}

	// A request framed by Content-Length alone keeps its connection.
	raw = "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi" + "GET /b HTTP/1.1\r\nHost: x\r\n\r\n"
	resps, bodies, closed = exchange(t, addr, raw, 300*time.Millisecond)
	if len(resps) != 2 || closed || bodies[0] != `POST /a "hi"` || bodies[1] != `GET /b ""` {
		t.Fatalf("keep-alive: %d responses %q, closed %v", len(resps), bodies, closed)
	}
}

// TestGoRejectsMalformedRequests records what net/http itself answers,
// before any handler of ours runs (plain text, Connection: close), so a
// Go upgrade that changes it is noticed and README's "Errors" stays true.
// Observed with go1.26: 501 for a Transfer-Encoding other than one
// "chunked", 505 for a major version other than 1 (HTTP/1.2 is served as
// 1.1), 431 for a head over MaxHeaderBytes, 400 for the rest.
func TestGoRejectsMalformedRequests(t *testing.T) {
	t.Parallel()
	addr := startRaw(t)
	tests := []struct {
		name, raw  string
		wantStatus int
	}{
		{"Transfer-Encoding gzip", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
		{"Transfer-Encoding gzip, chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
		{"HTTP/2.0 request line", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
		{"HTTP/3.0 request line", "GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505},
		{"head too large", "GET / HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("a", MaxHeaderBytes+8<<10) + "\r\n\r\n", 431},
		{"two Content-Lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"bad method", "G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"garbage", "garbage\r\n\r\n", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resps, _, closed := exchange(t, addr, tt.raw, time.Second)
			if len(resps) != 1 || resps[0].StatusCode != tt.wantStatus || !closed {
				codes := []int{}
				for _, r := range resps {
					codes = append(codes, r.StatusCode)
				}
				t.Fatalf("statuses %v, closed %v; want [%d] and closed", codes, closed, tt.wantStatus)
			}
		})
	}
}

// TestMalformedRequestsAreProblems: the platform's server (Serve, on
// Listener) answers what Go's HTTP layer refuses before any handler with
// problem+json and closes the connection; a bad request is never a 5xx:
// Transfer-Encoding gzip and an HTTP/2.0 request line are 400, not 501
// and 505 (issue 11 item 8; TestGoRejectsMalformedRequests shows what Go
// answers without it).
func TestMalformedRequestsAreProblems(t *testing.T) {
	t.Parallel()
	addr := startServed(t)
	tests := []struct {
		name, raw  string
		wantStatus int
		wantDetail string
	}{
		{"Transfer-Encoding gzip", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400, "unsupported Transfer-Encoding: only chunked is accepted"},
		{"Transfer-Encoding gzip, chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400, "unsupported Transfer-Encoding: only chunked is accepted"},
		{"HTTP/2.0 request line", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 400, "unsupported HTTP version: send HTTP/1.1"},
		{"HTTP/3.0 request line", "GET / HTTP/3.0\r\nHost: x\r\n\r\n", 400, "unsupported HTTP version: send HTTP/1.1"},
		{"head too large", "GET / HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("a", MaxHeaderBytes+8<<10) + "\r\n\r\n", 431, "request line and headers over 32 KiB"},
		{"two Content-Lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400, "malformed HTTP request"},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", 400, "malformed HTTP request: missing required Host header"},
		{"bad method", "G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "malformed HTTP request"},
		{"garbage", "garbage\r\n\r\n", 400, "malformed HTTP request"},
		{"a good request, then gzip", "GET /ok HTTP/1.1\r\nHost: x\r\n\r\nPOST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400, "unsupported Transfer-Encoding: only chunked is accepted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resps, bodies, closed := exchange(t, addr, tt.raw, time.Second)
			last := len(resps) - 1
			if last < 0 || !closed {
				t.Fatalf("%d answers, closed %v; want an answer and the connection closed", len(resps), closed)
			}
			if last == 1 && bodies[0] != `GET /ok ""` {
				t.Fatalf("first answer %q", bodies[0])
			}
			r := resps[last]
			var p struct {
				Type   string `json:"type"`
				Title  string `json:"title"`
				Status int    `json:"status"`
				Detail string `json:"detail"`
			}
			if err := json.Unmarshal([]byte(bodies[last]), &p); err != nil {
				t.Fatalf("body %q: %v", bodies[last], err)
			}
			if r.StatusCode != tt.wantStatus || r.Header.Get("Content-Type") != "application/problem+json" ||
				p.Status != tt.wantStatus || p.Type != "urn:problem-type:ratebill:malformed-request" ||
				p.Title != http.StatusText(tt.wantStatus) || p.Detail != tt.wantDetail {
				t.Fatalf("%d %s %+v; want %d problem+json %q", r.StatusCode, r.Header.Get("Content-Type"), p, tt.wantStatus, tt.wantDetail)
			}
		})
	}
}

// TestListenerLeavesHandlersAlone: a handler's own answers pass through
// Listener byte for byte, even a plain-text 400 or 505 with
// Connection: close that looks like Go's.
func TestListenerLeavesHandlersAlone(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Connection", "close")
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		w.WriteHeader(code)
		io.WriteString(w, "from the handler")
	})
	srv := NewServer(h, DefaultTimeouts)
	go srv.Serve(Listener(ln))
	t.Cleanup(func() { srv.Close() })
	for _, code := range []int{200, 400, 501, 505} {
		resps, bodies, _ := exchange(t, ln.Addr().String(), fmt.Sprintf("GET /%d HTTP/1.1\r\nHost: x\r\n\r\n", code), time.Second)
		if len(resps) != 1 || resps[0].StatusCode != code || bodies[0] != "from the handler" || resps[0].Header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Fatalf("handler's %d: %d answers %q", code, len(resps), bodies)
		}
	}
}
