package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSlowClientsAreCutOff: slowloris against a function process itself
// (no gateway in front). Connections that trickle their headers, or a
// body, are closed by the server's timeouts (HTTP_READ_HEADER_TIMEOUT,
// HTTP_READ_TIMEOUT, short here) while other clients are served; a slow
// body is never billed, and a metered GET with a body is refused before
// any I/O.
func TestSlowClientsAreCutOff(t *testing.T) {
	t.Parallel()
	e := setup(t, options{replicas: 1, env: map[string]string{"HTTP_READ_HEADER_TIMEOUT": "1", "HTTP_READ_TIMEOUT": "2"}})
	key := e.signup("slowpoke")
	u, err := url.Parse(e.stack.Instances["usage"][0])
	if err != nil {
		t.Fatal(err)
	}
	addr := u.Host

	// closedWithin reports whether the server closed conn (a read ends)
	// within d; what it read is returned.
	closedWithin := func(conn net.Conn, d time.Duration) (string, bool) {
		conn.SetReadDeadline(time.Now().Add(d))
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				ne, timeout := err.(net.Error)
				return b.String(), !(timeout && ne.Timeout())
			}
		}
	}

	t.Run("headers", func(t *testing.T) {
		const n = 30
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					errs <- err
					return
				}
				defer conn.Close()
				fmt.Fprintf(conn, "GET /usage HTTP/1.1\r\nHost: %s\r\nX-API-Key: %s\r\n", addr, key) // never ends
				if _, closed := closedWithin(conn, 5*time.Second); !closed {
					errs <- fmt.Errorf("a connection with unfinished headers was still open after 5 s (HTTP_READ_HEADER_TIMEOUT=1)")
				}
			}()
		}
		// Served meanwhile.
		resp, err := http.Get(e.stack.Instances["usage"][0] + "/livez")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("livez while slow clients wait: %v %v", resp, err)
		}
		resp.Body.Close()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	})

	t.Run("body", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		body := fmt.Sprintf(`{"key":%q,"cost":1,"request_id":"slow-body-0001"}`, key)
		fmt.Fprintf(conn, "POST /verify HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", addr, len(body), body[:10])
		got, closed := closedWithin(conn, 6*time.Second)
		if !closed {
			t.Fatal("a connection with an unfinished body was still open after 6 s (HTTP_READ_TIMEOUT=2)")
		}
		if strings.HasPrefix(got, "HTTP/1.1 200") {
			t.Fatalf("a slow body was answered 200: %q", got)
		}
	})

	t.Run("metered GET with a body", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /usage HTTP/1.1\r\nHost: %s\r\nX-API-Key: %s\r\nContent-Length: 100\r\n\r\nabc", addr, key)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no answer while the body was still arriving: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Fatalf("metered GET with a body: %d, want 400 before any I/O", resp.StatusCode)
		}
	})

	// Nothing of the above was billed.
	if b := e.do(req{method: "GET", path: "/billing", key: key}).JSON(t); b["requests"] != float64(0) {
		t.Fatalf("billing %v: slow clients were billed", b)
	}
}
