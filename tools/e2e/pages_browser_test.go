package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser is one headless Chromium tab for the page tests, with helpers
// that fail the test and keep a screenshot when a step does not happen.
type browser struct {
	t      *testing.T
	ctx    context.Context
	cancel context.CancelFunc
	base   string
	shots  string // screenshot name prefix under artifacts/

	mu       sync.Mutex
	messages []string
	expected []string // console lines a test causes on purpose
	read     sync.WaitGroup
}

func newBrowser(t *testing.T, base, shots string) *browser {
	bin := chromiumPath(t)
	profile := t.TempDir()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(profile),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.WindowSize(1280, 900),
	)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	b := &browser{t: t, ctx: ctx, cancel: cancel, base: base, shots: shots}
	console := chromedp.Console(ctx)
	b.read.Go(func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				s := fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line+1)
				// The bad-key step is a 401 on purpose; Chromium logs every
				// failed fetch. Everything else (CSP violations, exceptions,
				// other failures) fails the test, unless the test expects it.
				b.mu.Lock()
				if !strings.Contains(s, "status of 401") && !b.expectedLocked(s) {
					b.messages = append(b.messages, s)
				}
				b.mu.Unlock()
			}
		}
	})
	return b
}

// expect lets console errors containing any of subs pass: the failed
// fetches a test causes on purpose ("status of 503").
func (b *browser) expect(subs ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expected = append(b.expected, subs...)
}

func (b *browser) expectedLocked(s string) bool {
	for _, e := range b.expected {
		if strings.Contains(s, e) {
			return true
		}
	}
	return false
}

// step runs actions with a generous timeout (the machine is shared).
func (b *browser) step(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	sctx, cancel := context.WithTimeout(b.ctx, 90*time.Second)
	defer cancel()
	t0 := time.Now()
	if err := chromedp.Do(sctx, actions...); err != nil {
		b.shot("failure")
		b.t.Fatalf("%s: %v", what, err)
	}
	b.t.Logf("%s: %v", what, time.Since(t0))
}

// wait polls a JavaScript condition until it is true.
func (b *browser) wait(what, expr string) {
	b.t.Helper()
	b.step(what, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(75*time.Second)))
}

func (b *browser) eval(expr string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

func (b *browser) evalInt(expr string) int64 {
	b.t.Helper()
	n, err := strconv.ParseInt(b.eval("String("+expr+")"), 10, 64)
	if err != nil {
		b.t.Fatalf("%s: %v", expr, err)
	}
	return n
}

// shot saves a full-page screenshot as artifacts/<prefix>-<name>.png.
func (b *browser) shot(name string) {
	b.t.Helper()
	sctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			b.t.Errorf("screenshot: %v", err)
		}
		return
	}
	rel := "artifacts/" + b.shots + "-" + name + ".png"
	path := filepath.Join("..", "..", filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s (%d bytes)", rel, len(png))
}

// phone and desktop set the viewport and let the page lay out again.
func (b *browser) phone() {
	b.step("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
}
func (b *browser) desktop() { b.step("desktop viewport", chromedp.EmulateViewport(1280, 900)) }

// offOrigin returns every URL the page loaded that is not on b.base.
func (b *browser) offOrigin() []string {
	var out []string
	for _, u := range strings.Split(b.eval(`[location.href, ...performance.getEntriesByType('resource').map(e => e.name)].join("\n")`), "\n") {
		if !strings.HasPrefix(u, b.base+"/") && !strings.HasPrefix(u, "data:") {
			out = append(out, u)
		}
	}
	return out
}

// inked counts the pixels of chart box id's canvas drawn in the
// admitted series' colour (#1a56db, allowing for antialiasing): zero
// when the chart drew no line.
func (b *browser) inked(id string) int64 {
	b.t.Helper()
	return b.evalInt(`(() => {
		const c = document.querySelector('#` + id + ` canvas');
		if (!c || !c.width || !c.height) return -1;
		const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
		let n = 0;
		for (let i = 0; i < d.length; i += 4) {
			if (d[i+3] > 200 && Math.abs(d[i] - 26) < 40 && Math.abs(d[i+1] - 86) < 40 && Math.abs(d[i+2] - 219) < 40) n++;
		}
		return n;
	})()`)
}

// close ends the tab and fails on what the page wrote to its console.
func (b *browser) close() {
	b.cancel()
	b.read.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.messages {
		b.t.Errorf("browser console: %s", m)
	}
}

// apiJSON reads one answer of the API as the test's client (validated
// against the contract).
func apiJSON(t *testing.T, e *env, r req) map[string]any {
	t.Helper()
	resp := e.do(r)
	if resp.Status != http.StatusOK {
		t.Fatalf("%s %s: %d %s", r.method, r.path, resp.Status, resp.Body)
	}
	var m map[string]any
	if err := json.Unmarshal(resp.Body, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func totalOf(m map[string]any, field string) int64 {
	return int64(m["totals"].(map[string]any)[field].(float64))
}

// trafficForPages makes real traffic: alice uses her whole limit (8 of
// it) and is denied 4 times, bob makes 3 calls; it waits until the
// denials are in the rollups (written in batches), as the operator's
// history shows.
func trafficForPages(t *testing.T, e *env, op map[string]string) (alice, bob string) {
	t.Helper()
	alice, bob = e.signup("pagealice"), e.signup("pagebob")
	for i := 0; i < 12; i++ {
		e.do(req{method: "GET", path: "/usage", key: alice})
	}
	for i := 0; i < 3; i++ {
		e.do(req{method: "GET", path: "/usage", key: bob})
	}
	deadline := time.Now().Add(60 * time.Second)
	for totalOf(apiJSON(t, e, req{method: "GET", path: "/admin/usage/history", header: op}), "denied") < 4 {
		if time.Now().After(deadline) {
			t.Fatal("denials never reached the rollups")
		}
		e.do(req{method: "GET", path: "/usage/history", key: alice}) // a request lets the instance flush
		time.Sleep(200 * time.Millisecond)                           // polling a real condition, bounded by the deadline
	}
	return alice, bob
}

// TestDashboardInBrowser opens /dashboard in headless Chromium against
// the platform with real traffic behind it: a bad key shows the 401
// message; the real key shows the same numbers as the API (window,
// totals of the three charts, bill, keys), the charts have drawn (their
// canvases hold the admitted series' colour), revoking a key with its
// button revokes it, nothing is fetched off-origin and the key is never
// in a URL. Screenshots: artifacts/dashboard-desktop.png and
// artifacts/dashboard-phone.png.
func TestDashboardInBrowser(t *testing.T) {
	t.Parallel()
	chromiumPath(t)
	boot, _ := operatorToken.Generate(nil)
	e := setup(t, options{replicas: 1, env: map[string]string{"OPERATOR_BOOTSTRAP_TOKEN": boot,
		"API_RATE_LIMIT": "8", "API_RATE_WINDOW": "86400", "USAGE_DENIED_FLUSH": "1"}})
	op := map[string]string{"Authorization": "Bearer " + boot}
	alice, _ := trafficForPages(t, e, op)
	// A second key for the revoke button.
	spare := e.do(req{method: "POST", path: "/keys", key: alice, body: map[string]any{"name": "spare"}})
	if spare.Status != http.StatusCreated {
		t.Fatalf("second key: %d %s", spare.Status, spare.Body)
	}
	spareID := int64(spare.JSON(t)["id"].(float64))

	b := newBrowser(t, e.base, "dashboard")
	b.step("opening /dashboard", chromedp.Navigate(e.base+"/dashboard"))
	b.wait("the key field", `!!document.getElementById('key')`)

	// A bad key: the 401 message, nothing shown.
	b.step("typing a bad key", chromedp.SendKeys(chromedp.CSS("#key"), unknownKey()))
	b.step("submitting", chromedp.Click(chromedp.CSS("#load")))
	b.wait("the 401 message", `document.body.dataset.state === 'unauthorized'`)
	if m := b.eval(`document.getElementById('message').textContent`); !strings.Contains(m, "not accepted") {
		t.Errorf("401 message %q", m)
	}
	if b.eval(`String(document.getElementById('signed-in').hidden)`) != "true" {
		t.Error("the dashboard shows with a bad key")
	}
	b.shot("unauthorized")

	// The real key.
	b.step("typing the key", chromedp.SendKeys(chromedp.CSS("#key"), alice))
	b.step("submitting", chromedp.Click(chromedp.CSS("#load")))
	b.wait("the dashboard", `document.body.dataset.state === 'ready'`)

	// The numbers on screen are the API's, read after the page (nothing
	// is metered meanwhile: looking is free).
	hist := map[string]map[string]any{}
	for name, q := range map[string]string{"hour": "granularity=minute", "day": "granularity=hour", "month": "granularity=day"} {
		hist[name] = apiJSON(t, e, req{method: "GET", path: "/usage/history?" + q, key: alice})
		for _, f := range []string{"requests", "units", "denied"} {
			got := b.evalInt(`document.getElementById('chart-` + name + `').dataset.` + f)
			if want := totalOf(hist[name], f); got != want {
				t.Errorf("%s chart %s: page %d, API %d", name, f, got, want)
			}
		}
	}
	if got := totalOf(hist["hour"], "requests"); got != 8 {
		t.Errorf("the API's hour shows %d requests, want 8 (the limit)", got)
	}
	win := hist["hour"]["window"].(map[string]any)
	if got := b.evalInt(`document.getElementById('window-meter').dataset.used`); got != int64(win["used"].(float64)) || got != 8 {
		t.Errorf("window used: page %d, API %v", got, win["used"])
	}
	if got := b.eval(`document.getElementById('window-remaining').textContent`); got != "0" {
		t.Errorf("window remaining on the page %q, want 0", got)
	}
	bill := apiJSON(t, e, req{method: "GET", path: "/billing", key: alice})
	if got := b.eval(`document.getElementById('bill-amount').dataset.amount`); got != bill["amount"] {
		t.Errorf("bill: page %q, API %v", got, bill["amount"])
	}
	invoices := apiJSON(t, e, req{method: "GET", path: "/billing/invoices", key: alice})["items"].([]any)
	if got := b.evalInt(`document.querySelectorAll('#invoices tbody tr').length`); got != int64(len(invoices)) || got == 0 {
		t.Errorf("invoices: page %d rows, API %d", got, len(invoices))
	}
	keys := apiJSON(t, e, req{method: "GET", path: "/keys", key: alice})["items"].([]any)
	if got := b.evalInt(`document.querySelectorAll('#keys tbody tr').length`); got != int64(len(keys)) || got != 2 {
		t.Errorf("keys: page %d rows, API %d", got, len(keys))
	}

	// The charts have drawn: the admitted line is on the canvas.
	for _, id := range []string{"chart-hour", "chart-day", "chart-month"} {
		if n := b.inked(id); n < 20 {
			t.Errorf("%s: %d pixels of the admitted series drawn", id, n)
		}
	}
	// No cap yet: the page says so.
	if got := b.eval(`document.getElementById('cap-amount').textContent`); got != "No cap" {
		t.Errorf("cap before any is set: %q", got)
	}

	// The spend cap form, with the keyboard only: a bad amount is refused
	// with the API's own reason next to the field and changes nothing.
	b.expect("status of 422")
	b.step("typing a bad cap and Enter", chromedp.SendKeys(chromedp.CSS("#cap-input"), "12.345\r"))
	b.wait("the validation message", `document.getElementById('cap-error').textContent !== ''`)
	if m := b.eval(`document.getElementById('cap-error').textContent`); !strings.Contains(m, "Amount must be a decimal string with at most 2 places") {
		t.Errorf("422 message %q", m)
	}
	if b.eval(`document.getElementById('cap-input').getAttribute('aria-invalid') + '/' + (document.activeElement && document.activeElement.id)`) != "true/cap-input" {
		t.Error("the refused field is not marked invalid and focused")
	}
	if c := apiJSON(t, e, req{method: "GET", path: "/billing/cap", key: alice}); c["amount"] != nil {
		t.Errorf("a refused cap changed the cap: %v", c)
	}
	b.step("emptying the field", chromedp.Evaluate[chromedp.Void](`document.getElementById('cap-input').value = ''`))
	b.step("typing a cap and Enter", chromedp.SendKeys(chromedp.CSS("#cap-input"), "25.5\r"))
	b.wait("the cap shown", `document.getElementById('cap-amount').dataset.amount === '25.50'`)
	if c := apiJSON(t, e, req{method: "GET", path: "/billing/cap", key: alice}); c["amount"] != "25.50" {
		t.Errorf("the page set a cap of 25.50, the API says %v", c)
	}
	if b.eval(`document.getElementById('cap-error').textContent + document.getElementById('cap-input').getAttribute('aria-invalid')`) != "false" {
		t.Error("the validation message stays after a good amount")
	}
	// What is left is the cap less this month's invoice so far, to the cent.
	month := time.Now().UTC().Format("2006-01")
	var spent int64 = -1
	for _, inv := range apiJSON(t, e, req{method: "GET", path: "/billing/invoices", key: alice})["items"].([]any) {
		if inv := inv.(map[string]any); inv["period"] == month {
			spent = centsOf(t, inv["total"].(string))
		}
	}
	if spent < 0 {
		t.Fatalf("no invoice for %s", month)
	}
	if got, want := b.eval(`document.getElementById('cap-remaining').dataset.remaining`), formatCents(max(2550-spent, 0)); got != want {
		t.Errorf("left under the cap: page %q, want %q (25.50 less %d cents)", got, want, spent)
	}

	b.eval(`document.activeElement.blur(); ""`) // no focus ring in the picture for the docs
	b.shot("desktop")
	b.phone()
	// The charts follow the width (after the page's debounced resize); a
	// page that stays wider than the phone fails here.
	b.wait("relaid out for the phone, no sideways scrolling", `document.documentElement.clientWidth <= 400 && document.documentElement.scrollWidth <= document.documentElement.clientWidth`)
	b.shot("phone")
	b.desktop()

	// Remove the cap with its button.
	b.step("removing the cap", chromedp.Click(chromedp.CSS("#cap-clear")))
	b.wait("no cap shown", `document.getElementById('cap-amount').dataset.amount === '' && document.getElementById('cap-amount').textContent === 'No cap'`)
	if c := apiJSON(t, e, req{method: "GET", path: "/billing/cap", key: alice}); c["amount"] != nil {
		t.Errorf("the page removed the cap, the API says %v", c)
	}

	// Revoke the spare key with its button (the confirmation accepted).
	b.eval(`window.confirm = () => true; ""`)
	b.step("revoking the spare key", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#keys tr[data-key-id="%d"] button.danger`, spareID))))
	b.wait("the key shown revoked", fmt.Sprintf(`(document.querySelector('#keys tr[data-key-id="%d"]') || {textContent: ''}).textContent.includes('revoked')`, spareID))
	for _, k := range apiJSON(t, e, req{method: "GET", path: "/keys", key: alice})["items"].([]any) {
		k := k.(map[string]any)
		if int64(k["id"].(float64)) == spareID && k["revoked_at"] == nil {
			t.Errorf("the page said revoked, the API says %v", k)
		}
	}

	// Rotate the key in use with its button: the new key is shown once,
	// the page switches to it, and the API accepts it.
	var inUse int64
	for _, k := range keys {
		k := k.(map[string]any)
		if strings.HasPrefix(alice, k["api_key_prefix"].(string)) {
			inUse = int64(k["id"].(float64))
		}
	}
	b.step("rotating the key in use", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#keys tr[data-key-id="%d"] button.secondary`, inUse))))
	b.wait("the new key shown", `!!document.getElementById('new-key')`)
	rotated := b.eval(`document.getElementById('new-key').textContent`)
	if rotated == alice || b.eval(`sessionStorage.getItem('ratebill.apiKey')`) != rotated {
		t.Errorf("after rotation the page keeps %q, shows %q", b.eval(`sessionStorage.getItem('ratebill.apiKey')`), rotated)
	}
	b.wait("the page signed in with the new key", `document.body.dataset.state === 'ready' && document.getElementById('who').textContent.includes(sessionStorage.getItem('ratebill.apiKey').slice(0, 11))`)
	if r := e.do(req{method: "GET", path: "/me", key: rotated}); r.Status != http.StatusOK {
		t.Errorf("the rotated key shown on the page: %d %s", r.Status, r.Body)
	}
	b.shot("rotated")

	// The key lives in sessionStorage only, never in a URL.
	if b.eval(`sessionStorage.getItem('ratebill.apiKey')`) != rotated {
		t.Error("the key is not in sessionStorage")
	}
	if b.eval(`String(localStorage.length) + document.cookie`) != "0" {
		t.Error("the key leaked to localStorage or a cookie")
	}
	for _, u := range strings.Split(b.eval(`[location.href, ...performance.getEntriesByType('resource').map(e => e.name)].join("\n")`), "\n") {
		if strings.Contains(u, alice) || strings.Contains(u, rotated) {
			t.Errorf("the key is in a URL: %s", u)
		}
	}
	for _, u := range b.offOrigin() {
		t.Errorf("the page fetched %s, outside %s", u, e.base)
	}
	b.close()
}

// TestConsoleInBrowser opens /console with an operator token against the
// platform with real traffic: a bad token shows the 401 message; the
// totals of the charts, the top customers by requests and by denials,
// the health checks and the customer table equal the API's; the charts
// have drawn; a customer's link shows that customer's usage; nothing is
// fetched off-origin. Screenshots: artifacts/console-desktop.png and
// artifacts/console-phone.png.
func TestConsoleInBrowser(t *testing.T) {
	t.Parallel()
	chromiumPath(t)
	boot, _ := operatorToken.Generate(nil)
	e := setup(t, options{replicas: 1, env: map[string]string{"OPERATOR_BOOTSTRAP_TOKEN": boot,
		"API_RATE_LIMIT": "8", "API_RATE_WINDOW": "86400", "USAGE_DENIED_FLUSH": "1"}})
	op := map[string]string{"Authorization": "Bearer " + boot}
	trafficForPages(t, e, op)
	aliceID := e.queryInt(`SELECT id FROM users WHERE username = 'pagealice'`)
	apiJSONStatus(t, e, req{method: "PUT", path: fmt.Sprintf("/admin/users/%d/cap", aliceID), header: op, body: map[string]string{"amount": "40"}}, http.StatusOK)
	// A viewer token is enough.
	v := apiJSONStatus(t, e, req{method: "POST", path: "/admin/tokens", header: op, body: map[string]string{"name": "console", "scope": "viewer"}}, http.StatusCreated)
	viewer := v["token"].(string)

	b := newBrowser(t, e.base, "console")
	b.step("opening /console", chromedp.Navigate(e.base+"/console"))
	b.wait("the token field", `!!document.getElementById('token')`)
	bad, _ := operatorToken.Generate(nil)
	b.step("typing a bad token", chromedp.SendKeys(chromedp.CSS("#token"), bad))
	b.step("submitting", chromedp.Click(chromedp.CSS("#token-form button[type=submit]")))
	b.wait("the 401 message", `document.body.dataset.state === 'unauthorized'`)
	if m := b.eval(`document.getElementById('message').textContent`); !strings.Contains(m, "not accepted") {
		t.Errorf("401 message %q", m)
	}

	b.step("typing the viewer token", chromedp.SendKeys(chromedp.CSS("#token"), viewer))
	b.step("submitting", chromedp.Click(chromedp.CSS("#token-form button[type=submit]")))
	b.wait("the console", `document.body.dataset.state === 'ready'`)

	for name, q := range map[string]string{"hour": "granularity=minute", "day": "granularity=hour", "month": "granularity=day"} {
		h := apiJSON(t, e, req{method: "GET", path: "/admin/usage/history?" + q, header: op})
		for _, f := range []string{"requests", "denied"} {
			if got, want := b.evalInt(`document.getElementById('chart-`+name+`').dataset.`+f), totalOf(h, f); got != want {
				t.Errorf("%s chart %s: page %d, API %d", name, f, got, want)
			}
		}
		if name == "hour" && (totalOf(h, "requests") != 11 || totalOf(h, "denied") != 4) {
			t.Errorf("the API's hour: %v, want 11 requests and 4 denied", h["totals"])
		}
		if n := b.inked("chart-" + name); n < 20 {
			t.Errorf("chart %s: %d pixels of the admitted series drawn", name, n)
		}
	}
	for by, table := range map[string]string{"requests": "top-requests", "denied": "top-denied"} {
		top := apiJSON(t, e, req{method: "GET", path: "/admin/usage/top?granularity=hour&limit=10&by=" + by, header: op})["items"].([]any)
		var want []string
		for _, c := range top {
			c := c.(map[string]any)
			want = append(want, fmt.Sprintf("%v:%v", c["username"], c[by]))
		}
		got := b.eval(`[...document.querySelectorAll('#` + table + ` tbody tr')].map(r => r.cells[0].textContent + ':' + r.cells[1].textContent.replace(/,/g, '')).join(' ')`)
		if got != strings.Join(want, " ") || len(want) == 0 {
			t.Errorf("top by %s: page %q, API %q", by, got, want)
		}
	}
	if got := b.eval(`[...document.querySelectorAll('#health [data-check]')].map(e => e.dataset.check + '=' + e.dataset.status).sort().join(' ')`); got != "postgres=ok redis=ok" {
		t.Errorf("health on the page %q", got)
	}
	users := apiJSON(t, e, req{method: "GET", path: "/admin/users?limit=50", header: op})["items"].([]any)
	if got := b.evalInt(`document.querySelectorAll('#users tbody tr[data-user-id]').length`); got != int64(len(users)) || got != 2 {
		t.Errorf("customers: page %d, API %d", got, len(users))
	}
	b.shot("desktop")
	b.phone()
	// The charts follow the width (after the page's debounced resize); a
	// page that stays wider than the phone fails here.
	b.wait("relaid out for the phone, no sideways scrolling", `document.documentElement.clientWidth <= 400 && document.documentElement.scrollWidth <= document.documentElement.clientWidth`)
	b.shot("phone")
	b.desktop()

	// One customer's usage, from the customer table's link.
	b.step("opening alice's usage", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#users tr[data-user-id="%d"] a`, aliceID))))
	b.wait("alice's charts", fmt.Sprintf(`document.getElementById('customer').dataset.userId === '%d' && !document.getElementById('customer').hidden`, aliceID))
	ah := apiJSON(t, e, req{method: "GET", path: fmt.Sprintf("/admin/usage/history?user=%d", aliceID), header: op})
	if got := b.evalInt(`document.getElementById('customer-chart-hour').dataset.requests`); got != totalOf(ah, "requests") || got != 8 {
		t.Errorf("alice's hour on the page %d, API %d", got, totalOf(ah, "requests"))
	}
	if n := b.inked("customer-chart-hour"); n < 20 {
		t.Errorf("alice's chart: %d pixels drawn", n)
	}
	// alice's spend cap (set by the operator for her) is on her view, as
	// GET /admin/users/{id} reports it.
	if got := b.eval(`document.getElementById('customer-cap').dataset.amount`); got != "40.00" {
		t.Errorf("alice's cap on the page %q, want 40.00", got)
	}
	if u := apiJSON(t, e, req{method: "GET", path: fmt.Sprintf("/admin/users/%d", aliceID), header: op}); u["spend_cap"] != "40.00" {
		t.Errorf("GET /admin/users/%d: spend_cap %v", aliceID, u["spend_cap"])
	}
	b.shot("customer")
	if b.eval(`sessionStorage.getItem('ratebill.operatorToken')`) != viewer || b.eval(`String(localStorage.length) + document.cookie`) != "0" {
		t.Error("the token is not kept in sessionStorage only")
	}
	for _, u := range b.offOrigin() {
		t.Errorf("the page fetched %s, outside %s", u, e.base)
	}
	b.close()
}

func apiJSONStatus(t *testing.T, e *env, r req, status int) map[string]any {
	t.Helper()
	resp := e.do(r)
	if resp.Status != status {
		t.Fatalf("%s %s: %d %s", r.method, r.path, resp.Status, resp.Body)
	}
	return resp.JSON(t)
}

// centsOf reads a money string ("12.30") as whole cents.
func centsOf(t *testing.T, s string) int64 {
	t.Helper()
	whole, frac, ok := strings.Cut(s, ".")
	w, err1 := strconv.ParseInt(whole, 10, 64)
	f, err2 := strconv.ParseInt(frac, 10, 64)
	if !ok || len(frac) != 2 || err1 != nil || err2 != nil {
		t.Fatalf("money %q", s)
	}
	return w*100 + f
}

func formatCents(c int64) string { return fmt.Sprintf("%d.%02d", c/100, c%100) }
