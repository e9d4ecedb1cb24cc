package e2e

import (
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ratebill/platform/tools/stack"
)

// cutProxy is a TCP proxy in front of the test's Postgres that the test
// can cut: while cut it closes every connection, open and new, so the
// platform sees a Postgres that has gone away (as a stopped server or a
// broken network looks to it), and the shared test server stays up for
// the other tests.
type cutProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// newCutProxy proxies to the database of dbURL and returns the URL to
// give the platform instead.
func newCutProxy(t *testing.T, dbURL string) (*cutProxy, string) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: u.Host, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.serve)
	t.Cleanup(func() {
		ln.Close()
		p.setCut(true)
		p.wg.Wait()
	})
	u.Host = ln.Addr().String()
	return p, u.String()
}

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.mu.Unlock()
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			io.Copy(dst, src)
			dst.Close()
			src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		p.wg.Go(func() { pipe(up, c) })
		p.wg.Go(func() { pipe(c, up) })
	}
}

// setCut cuts Postgres off (closing every open connection) or restores it.
func (p *cutProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
	}
}

// TestDashboardErrorStates drives /dashboard through the platform's real
// 503 and 429 answers. 503: with Postgres cut off after the page has
// shown its numbers, reloading shows "unavailable, try again", hides
// every number (none is stale on screen), and "Try again" brings the
// page back once Postgres is. 429: after a mistyped key has used up the
// failed-authentication allowance of the address (AUTH_FAIL_LIMIT), the
// right key is refused with 429 too; the page says so with the wait,
// and "Try again" works once the window has passed. Screenshots:
// artifacts/dashboard-unavailable.png and artifacts/dashboard-ratelimited.png.
func TestDashboardErrorStates(t *testing.T) {
	t.Parallel()
	chromiumPath(t)
	proxy, dbURL := newCutProxy(t, stack.Postgres(t))
	// Five failed lookups per address per 20 s window: one page load with
	// a mistyped key (eight calls) uses them all up.
	const failWindow = 20
	e := setup(t, options{replicas: 1, databaseURL: dbURL, env: map[string]string{
		"AUTH_FAIL_LIMIT": "5", "AUTH_FAIL_WINDOW": strconv.Itoa(failWindow), "AUTH_CACHE_TTL": "1"}})
	key := e.signup("pageerrors")

	b := newBrowser(t, e.base, "dashboard")
	b.expect("status of 503", "status of 429")
	b.step("opening /dashboard", chromedp.Navigate(e.base+"/dashboard"))
	b.wait("the key field", `!!document.getElementById('key')`)
	b.step("typing the key", chromedp.SendKeys(chromedp.CSS("#key"), key))
	b.step("submitting", chromedp.Click(chromedp.CSS("#load")))
	b.wait("the dashboard", `document.body.dataset.state === 'ready'`)

	// 503: Postgres goes away; the page is loaded again.
	proxy.setCut(true)
	b.step("reloading", chromedp.Reload())
	b.wait("the 503 message", `document.body.dataset.state === 'error-503'`)
	m := b.eval(`document.getElementById('message').textContent`)
	if !strings.Contains(m, "Service unavailable right now (postgres is unavailable)") || !strings.Contains(m, "try again in a moment") || !strings.Contains(m, "Try again") {
		t.Errorf("503 message %q", m)
	}
	if b.eval(`String(document.getElementById('signed-in').hidden)`) != "true" {
		t.Error("numbers stay on screen while the platform is unavailable")
	}
	if b.eval(`String(document.getElementById('key-form').hidden) + ' ' + document.getElementById('who').textContent`) != "true Your key "+key[:11]+"… is kept in this tab; the dashboard shows once the platform answers." {
		t.Errorf("while unavailable the page asks for the key again, or does not say it is kept: %s", b.eval(`document.getElementById('who').textContent`))
	}
	b.shot("unavailable")
	proxy.setCut(false)
	b.step("trying again", chromedp.Click(chromedp.CSS("#retry")))
	b.wait("the dashboard back", `document.body.dataset.state === 'ready' && !document.getElementById('signed-in').hidden`)
	back := time.Now()
	if got := b.evalInt(`document.querySelectorAll('#keys tbody tr').length`); got != 1 {
		t.Errorf("keys after recovery: %d rows", got)
	}

	// 429: forget the key, mistype one, then paste the right one. The
	// failure windows align to the clock (Redis's, on this machine): start
	// early in one, so that the right key comes in the same window, and
	// after the right key has left the instance's cache (AUTH_CACHE_TTL).
	eventually(t, 2*failWindow*time.Second, "early in a failure window, the key no longer cached", func() bool {
		return time.Now().Unix()%failWindow < failWindow/2 && time.Since(back) > 1500*time.Millisecond
	})
	b.step("forgetting the key", chromedp.Click(chromedp.CSS("#forget")))
	b.step("typing a mistyped key", chromedp.SendKeys(chromedp.CSS("#key"), unknownKey()))
	b.step("submitting", chromedp.Click(chromedp.CSS("#load")))
	// 401, or already 429 for the calls that came after the first five
	// failures.
	b.wait("the refusal", `['unauthorized', 'error-429'].includes(document.body.dataset.state)`)
	// The right key, no longer cached, is looked up, so the address's
	// spent allowance refuses it.
	b.step("forgetting the mistyped key", chromedp.Evaluate[chromedp.Void](`document.getElementById('forget').click(); sessionStorage.clear()`))
	b.step("typing the key", chromedp.SendKeys(chromedp.CSS("#key"), key))
	b.step("submitting", chromedp.Click(chromedp.CSS("#load")))
	b.wait("the 429 message", `document.body.dataset.state === 'error-429'`)
	m = b.eval(`document.getElementById('message').textContent`)
	if !strings.Contains(m, "Too many requests (too many failed authentications from this address). Try again in ") {
		t.Errorf("429 message %q", m)
	}
	if b.eval(`String(document.getElementById('signed-in').hidden)`) != "true" {
		t.Error("numbers on screen while rate limited")
	}
	b.shot("ratelimited")
	// The window passes; "Try again" (the key is still in the tab) is
	// clicked whenever the page offers it, until the dashboard shows.
	b.wait("the dashboard after the window", `(() => {
		if (document.body.dataset.state === 'ready') return true;
		const r = document.getElementById('retry');
		if (r && document.body.dataset.state === 'error-429') r.click();
		return false;
	})()`)
	if b.eval(`String(document.getElementById('signed-in').hidden)`) != "false" {
		t.Error("the dashboard does not show after the window")
	}
	b.close()
}
