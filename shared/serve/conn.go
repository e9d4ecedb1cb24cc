package serve

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"strconv"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/httpapi"
)

// Listener wraps ln so that the answers Go's HTTP layer writes itself,
// before any handler runs, are problem+json like every other error of
// the platform, and a client's bad request is never a 5xx:
//
//   - 501 for a Transfer-Encoding other than one "chunked" (e.g. gzip)
//     and 505 for an HTTP major version other than 1 (HTTP/2.0 in an
//     HTTP/1 request line) become 400 malformed-request;
//   - 400 (malformed request line or header, a missing Host, conflicting
//     Content-Lengths) stays 400 and 431 (a head over MaxHeaderBytes)
//     stays 431, both as problems.
//
// The connection is closed after the answer, as Go does. net/http writes
// those answers straight to the connection in one Write, in a shape no
// handler response has (Content-Type before Connection, no Date: a
// handler's headers are written sorted and dated), which is how they are
// recognised; TestGoRejectsMalformedRequests pins that shape for the Go
// version in use. Every other write passes through untouched, at the
// cost of a prefix comparison.
func Listener(ln net.Listener) net.Listener { return problemListener{ln} }

type problemListener struct{ net.Listener }

func (l problemListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &problemConn{Conn: c}, nil
}

// problemConn rewrites net/http's own error answers (see Listener).
type problemConn struct{ net.Conn }

// goErrorHeaders follow the status line of every answer net/http writes
// itself (server.go, conn.serve).
const goErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

func (c *problemConn) Write(p []byte) (int, error) {
	if len(p) < 13 || string(p[:9]) != "HTTP/1.1 " || p[9] != '4' && p[9] != '5' {
		return c.Conn.Write(p)
	}
	eol := bytes.Index(p, []byte("\r\n"))
	if eol < 0 || !bytes.HasPrefix(p[eol:], []byte(goErrorHeaders)) {
		return c.Conn.Write(p)
	}
	if _, err := c.Conn.Write(problemAnswer(string(p[9:12]), string(p[12:eol]))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// CloseWrite keeps net/http's half-close before its final close (it
// looks for the method on the connection).
func (c *problemConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// problemAnswer is the whole HTTP answer for Go's status code and the
// rest of its status line (" Bad Request: missing required Host header").
func problemAnswer(code, rest string) []byte {
	status, detail := http.StatusBadRequest, "malformed HTTP request"
	switch code {
	case "501":
		detail = "unsupported Transfer-Encoding: only chunked is accepted"
	case "505":
		detail = "unsupported HTTP version: send HTTP/1.1"
	case "431":
		status, detail = http.StatusRequestHeaderFieldsTooLarge, "request line and headers over "+strconv.Itoa(MaxHeaderBytes>>10)+" KiB"
	case "400":
		// Go's reason is one of its own constants (it never echoes the
		// request), e.g. "missing required Host header".
		if _, reason, ok := bytes.Cut([]byte(rest), []byte(": ")); ok && len(reason) > 0 {
			detail = "malformed HTTP request: " + string(reason)
		}
	}
	p := httpapi.NewProblem(shared.Errorf(shared.EMalformed, "%s", detail), "", "")
	p.Status, p.Title = status, http.StatusText(status)
	body, _ := json.Marshal(p)
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 " + strconv.Itoa(status) + " " + http.StatusText(status) + "\r\n")
	b.WriteString("Content-Type: application/problem+json\r\nConnection: close\r\n")
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n")
	b.Write(body)
	return b.Bytes()
}
