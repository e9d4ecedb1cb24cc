package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// screenshotPath is where TestDocsInBrowser keeps its screenshot, from the
// repository root (artifacts/ is git-ignored; CI keeps it as an artifact).
const screenshotPath = "artifacts/docs.png"

// chromiumPath finds Debian's chromium (scripts/test.d/30-chromium.sh
// installs it). Without it the test fails under CI and skips elsewhere.
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (scripts/test.d/30-chromium.sh installs it)")
	}
	t.Skip("DID NOT RUN: chromium is not installed; run scripts/test.d/30-chromium.sh (this fails under CI)")
	return ""
}

// TestDocsInBrowser opens /docs in headless Chromium against the platform
// running behind the gateway: Swagger UI renders every operation of the
// document from the assets inside the binary (no request leaves the
// origin), "Try it out" on GET /health shows 200, and an API key entered
// once with "Authorize" is used by GET /me, even after a reload. The page
// is kept as artifacts/docs.png.
func TestDocsInBrowser(t *testing.T) {
	t.Parallel()
	bin := chromiumPath(t)
	e := setup(t, options{replicas: 1})
	key := e.signup("browser")
	c, err := getContract()
	if err != nil {
		t.Fatal(err)
	}

	profile := t.TempDir() // removed after the browser is gone (cleanups run last-in first-out)
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
		chromedp.WindowSize(1280, 900),
	)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)

	// Everything the page writes to its console (errors, CSP violations,
	// failed requests, uncaught exceptions), read until the tab ends.
	var (
		mu       sync.Mutex
		messages []string
		read     sync.WaitGroup
	)
	console := chromedp.Console(ctx)
	read.Go(func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				mu.Lock()
				messages = append(messages, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line+1))
				mu.Unlock()
			}
		}
	})

	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, scancel := context.WithTimeout(ctx, 60*time.Second)
		defer scancel()
		t0 := time.Now()
		defer func() { t.Logf("%s: %v", what, time.Since(t0)) }()
		if err := chromedp.Do(sctx, actions...); err != nil {
			shot(t, ctx)
			t.Fatalf("%s: %v", what, err)
		}
	}
	wait := func(what, expr string) {
		t.Helper()
		step(what, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(45*time.Second)))
	}
	eval := func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("evaluating %s: %v", expr, err)
		}
		return v
	}

	// expand opens an operation until its "Try it out" button shows. A
	// click that lands while Swagger UI is still re-rendering (after a
	// reload, on a loaded machine) can be lost, so it is retried.
	expand := func(what, op string) {
		t.Helper()
		for attempt := 1; ; attempt++ {
			step(what, chromedp.Click(chromedp.CSS(op+" .opblock-summary-control")))
			err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](`!!document.querySelector('`+op+` .try-out__btn')`,
				chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(5*time.Second)))
			if err == nil {
				return
			}
			if attempt == 3 {
				shot(t, ctx)
				t.Fatalf("%s: no Try it out button after %d clicks: %v", what, attempt, err)
			}
			if eval(`document.querySelector('`+op+` .try-out__btn') ? "open" : "closed"`) == "open" {
				return
			}
		}
	}

	// Start from a real first visit: the profile is fresh.
	step("opening /docs", chromedp.Navigate(e.base+"/docs"))
	wait("operations rendered", `document.querySelectorAll('.opblock').length > 0`)

	// Every operation of the document is listed with its summary.
	var want []string
	for _, item := range c.doc.Paths.Map() {
		for _, op := range item.Operations() {
			want = append(want, op.Summary)
		}
	}
	shown := strings.Split(eval(`[...document.querySelectorAll('.opblock .opblock-summary-description')].map(e => e.textContent.trim()).join("\n")`), "\n")
	for _, s := range want {
		if !slices.Contains(shown, s) {
			t.Errorf("operation %q is not shown; the page lists %q", s, shown)
		}
	}
	if len(shown) != len(want) {
		t.Errorf("%d operations shown, %d documented", len(shown), len(want))
	}

	// GET /health: expand, Try it out, Execute, 200.
	const health = "#operations-health-getHealth"
	expand("expanding GET /health", health)
	step("Try it out", chromedp.Click(chromedp.CSS(health+" .try-out__btn")))
	step("Execute", chromedp.Click(chromedp.CSS(health+" .execute")))
	wait("GET /health response", `(document.querySelector('`+health+` .live-responses-table .response .response-col_status') || {}).textContent`)
	if got := eval(`document.querySelector('` + health + ` .live-responses-table .response .response-col_status').textContent.trim()`); got != "200" {
		shot(t, ctx)
		t.Fatalf("Try it out on GET /health shows %q, want 200", got)
	}
	shot(t, ctx)

	// The API key, entered once with Authorize, is kept across a reload
	// (persistAuthorization) and sent by "Try it out" on GET /me.
	step("Authorize", chromedp.Click(chromedp.CSS(".auth-wrapper .authorize")))
	step("typing the key", chromedp.SendKeys(chromedp.CSS(".modal-ux .auth-container input"), key))
	step("submitting the key", chromedp.Click(chromedp.CSS(".modal-ux .auth-btn-wrapper .authorize")))
	step("closing the dialog", chromedp.Click(chromedp.CSS(".modal-ux .btn-done")))
	step("reloading", chromedp.Reload())
	wait("operations rendered again", `document.querySelectorAll('.opblock').length > 0`)
	const me = "#operations-users-getMe"
	expand("expanding GET /me", me)
	step("Try it out (GET /me)", chromedp.Click(chromedp.CSS(me+" .try-out__btn")))
	step("Execute (GET /me)", chromedp.Click(chromedp.CSS(me+" .execute")))
	wait("GET /me response", `(document.querySelector('`+me+` .live-responses-table .response .response-col_status') || {}).textContent`)
	if got := eval(`document.querySelector('` + me + ` .live-responses-table .response .response-col_status').textContent.trim()`); got != "200" {
		shot(t, ctx)
		t.Fatalf("Try it out on GET /me after Authorize and a reload shows %q, want 200", got)
	}
	if body := eval(`document.querySelector('` + me + ` .live-responses-table .response .response-col_description').textContent`); !strings.Contains(body, `"browser"`) {
		t.Errorf("GET /me response body in the page: %q", body)
	}

	// Offline: nothing was fetched from anywhere but this origin.
	for _, u := range strings.Split(eval(`[location.href, ...performance.getEntriesByType('resource').map(e => e.name)].join("\n")`), "\n") {
		if !strings.HasPrefix(u, e.base+"/") && !strings.HasPrefix(u, "data:") {
			t.Errorf("the page fetched %s, outside %s", u, e.base)
		}
	}

	t0 := time.Now()
	cancel()
	read.Wait()
	t.Logf("closing: %v", time.Since(t0))
	mu.Lock()
	defer mu.Unlock()
	for _, m := range messages {
		t.Errorf("browser console: %s", m)
	}
}

// shot saves a full-page screenshot to artifacts/docs.png.
func shot(t *testing.T, ctx context.Context) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("screenshot: %v", err)
		}
		return
	}
	path := filepath.Join("..", "..", filepath.FromSlash(screenshotPath))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", screenshotPath, len(png))
}
