package serve

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// startRaw serves NewServer(h) on 127.0.0.1 and returns its address.
func startRaw(t *testing.T) string {
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
	go srv.Serve(ln)
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
	addr := startRaw(t)
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
