package e2e

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ratebill/platform/shared/webui"
)

// TestContractUsageHistory exercises GET /usage/history and the
// operator's /admin/usage/history and /admin/usage/top against real
// traffic: admitted calls appear in the buckets exactly (the rollups'
// numbers), denials appear (written in batches, so the test polls on
// them), looking costs no quota, and hostile queries are 422 problems
// that name the field, never 5xx.
func TestContractUsageHistory(t *testing.T) {
	t.Parallel()
	boot, _ := operatorToken.Generate(nil)
	e := setup(t, options{replicas: 1, env: map[string]string{
		"OPERATOR_BOOTSTRAP_TOKEN": boot, "API_RATE_LIMIT": "5", "API_RATE_WINDOW": "86400", "USAGE_DENIED_FLUSH": "1"}})
	op := map[string]string{"Authorization": "Bearer " + boot}
	a := e.signup("histalice")
	b := e.signup("histbob")
	for i := 0; i < 8; i++ {
		r := e.do(req{method: "GET", path: "/usage", key: a})
		if want := map[bool]int{true: 200, false: 429}[i < 5]; r.Status != want {
			t.Fatalf("call %d: %d, want %d", i, r.Status, want)
		}
	}
	for i := 0; i < 2; i++ {
		if r := e.do(req{method: "GET", path: "/usage", key: b}); r.Status != 200 {
			t.Fatalf("bob: %d", r.Status)
		}
	}
	aliceID := e.queryInt(`SELECT id FROM users WHERE username = 'histalice'`)

	// The default: the last hour by minute. Denials reach the rollups on
	// the next flush (USAGE_DENIED_FLUSH=1 s here), started by a later
	// request of the instance: poll with a deadline.
	var h map[string]any
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := e.do(req{method: "GET", path: "/usage/history", key: a})
		if r.Status != 200 {
			t.Fatalf("history: %d %s", r.Status, r.Body)
		}
		h = r.JSON(t)
		if totals := h["totals"].(map[string]any); totals["denied"] == float64(3) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("denials never reached the history: %s", r.Body)
		}
		time.Sleep(200 * time.Millisecond) // polling a real condition, bounded by the deadline
	}
	if h["granularity"] != "minute" || len(h["points"].([]any)) != 60 {
		t.Fatalf("default history: %v, %d points", h["granularity"], len(h["points"].([]any)))
	}
	totals := h["totals"].(map[string]any)
	if totals["requests"] != float64(5) || totals["units"] != float64(5) {
		t.Fatalf("totals %v, want 5 requests and units", totals)
	}
	// The points equal the rollups, bucket by bucket.
	for _, p := range h["points"].([]any) {
		pt := p.(map[string]any)
		start, _ := time.Parse(time.RFC3339, pt["start"].(string))
		want := e.queryInt(`SELECT coalesce(sum(requests), 0) FROM usage_minutes WHERE user_id = $1 AND minute = $2`, aliceID, start)
		if pt["requests"] != float64(want) {
			t.Fatalf("point %v, rollup says %d", pt, want)
		}
	}
	win := h["window"].(map[string]any)
	if win["used"] != float64(5) || win["remaining"] != float64(0) || win["limit"] != float64(5) {
		t.Fatalf("window %v", win)
	}
	// Looking is not metered: the window is unchanged after more looks.
	for i := 0; i < 3; i++ {
		e.do(req{method: "GET", path: "/usage/history?granularity=hour", key: a})
	}
	if w := e.do(req{method: "GET", path: "/usage/history", key: a}).JSON(t)["window"].(map[string]any); w["used"] != float64(5) {
		t.Fatalf("history took quota: window %v", w)
	}
	// Coarser granularities hold the same totals.
	for _, g := range []struct {
		name   string
		points int
	}{{"hour", 24}, {"day", 30}} {
		r := e.do(req{method: "GET", path: "/usage/history?granularity=" + g.name, key: a}).JSON(t)
		tot := r["totals"].(map[string]any)
		if len(r["points"].([]any)) != g.points || tot["requests"] != float64(5) || tot["denied"] != float64(3) {
			t.Fatalf("%s: %d points, totals %v", g.name, len(r["points"].([]any)), tot)
		}
	}
	// An explicit range, and one where nothing happened.
	now := time.Now().UTC()
	q := url.Values{"from": {now.Add(-2 * time.Hour).Format(time.RFC3339)}, "to": {now.Add(time.Minute).Format(time.RFC3339)}, "granularity": {"hour"}}
	if r := e.do(req{method: "GET", path: "/usage/history?" + q.Encode(), key: a}).JSON(t); r["totals"].(map[string]any)["requests"] != float64(5) {
		t.Fatalf("explicit range: %v", r["totals"])
	}
	q = url.Values{"from": {"2020-01-01T00:00:00Z"}, "to": {"2020-01-02T00:00:00Z"}, "granularity": {"hour"}}
	if r := e.do(req{method: "GET", path: "/usage/history?" + q.Encode(), key: a}).JSON(t); r["totals"].(map[string]any)["requests"] != float64(0) || len(r["points"].([]any)) != 24 {
		t.Fatalf("empty range: %v", r)
	}
	// Bob sees only his own.
	if r := e.do(req{method: "GET", path: "/usage/history", key: b}).JSON(t); r["totals"].(map[string]any)["requests"] != float64(2) {
		t.Fatalf("bob's history: %v", r["totals"])
	}

	// Hostile queries: 422 naming the field; nothing else answers.
	for _, c := range []struct{ query, field string }{
		{"granularity=week", "granularity"},
		{"granularity=MINUTE", "granularity"},
		{"from=yesterday", "from"},
		{"from=2026-02-30T00:00:00Z", "from"},
		{"to=" + url.QueryEscape("2026-01-01 00:00:00"), "to"},
		{"from=2026-12-06T10:00:00Z&to=2026-12-06T09:00:00Z", "to"},
		{"from=2026-12-06T10:00:00Z&to=2026-12-06T10:00:00Z", "to"},
		{"from=2000-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from"},
		{"from=1970-01-01T00:00:00Z&to=2999-01-01T00:00:00Z&granularity=day", "from"},
		{"to=9999-12-31T23:59:59Z", "to"},
		{"from=-0001-01-01T00:00:00Z", "from"},
		{"granularity=hour&granularity=day", "granularity"},
		{"from=" + strings.Repeat("9", 5000), "from"},
	} {
		r := e.do(req{method: "GET", path: "/usage/history?" + c.query, key: a})
		p := expectProblem(t, r, 422, "validation-failed")
		if !strings.Contains(fmt.Sprint(p["errors"]), "field:"+c.field) {
			t.Errorf("%s: errors %v, want field %s", c.query, p["errors"], c.field)
		}
	}
	tooMany := expectProblem(t, e.do(req{method: "GET", path: "/usage/history?from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z", key: a}), 422, "validation-failed")
	if !strings.Contains(fmt.Sprint(tooMany["errors"]), "1500") {
		t.Errorf("the bound is not named: %v", tooMany)
	}
	expectProblem(t, e.do(req{method: "GET", path: "/usage/history"}), 401, "unauthorized")
	expectProblem(t, e.do(req{method: "GET", path: "/usage/history", key: unknownKey()}), 401, "unauthorized")
	expectProblem(t, e.do(req{method: "GET", path: "/usage/history", key: "sk_short"}), 401, "unauthorized")
	expectProblem(t, e.do(req{method: "POST", path: "/usage/history", key: a}), 405, "method-not-allowed")

	// The operator's view: every customer, or one.
	all := e.do(req{method: "GET", path: "/admin/usage/history", header: op})
	if all.Status != 200 {
		t.Fatalf("admin history: %d %s", all.Status, all.Body)
	}
	if tot := all.JSON(t)["totals"].(map[string]any); tot["requests"] != float64(7) || tot["denied"] != float64(3) {
		t.Fatalf("admin totals %v, want 7 requests and 3 denied", tot)
	}
	one := e.do(req{method: "GET", path: fmt.Sprintf("/admin/usage/history?granularity=day&user=%d", aliceID), header: op}).JSON(t)
	if tot := one["totals"].(map[string]any); tot["requests"] != float64(5) || len(one["points"].([]any)) != 30 {
		t.Fatalf("alice for the operator: %v", one)
	}
	top := e.do(req{method: "GET", path: "/admin/usage/top?by=requests", header: op}).JSON(t)
	items := top["items"].([]any)
	if len(items) != 2 || items[0].(map[string]any)["username"] != "histalice" || items[0].(map[string]any)["requests"] != float64(5) ||
		items[1].(map[string]any)["username"] != "histbob" || items[1].(map[string]any)["requests"] != float64(2) {
		t.Fatalf("top by requests %v", items)
	}
	denied := e.do(req{method: "GET", path: "/admin/usage/top?by=denied&limit=5&granularity=day", header: op}).JSON(t)
	if items := denied["items"].([]any); len(items) != 1 || items[0].(map[string]any)["denied"] != float64(3) || denied["by"] != "denied" {
		t.Fatalf("top by denials %v", denied)
	}
	if items := e.do(req{method: "GET", path: "/admin/usage/top?limit=1&by=units", header: op}).JSON(t)["items"].([]any); len(items) != 1 {
		t.Fatalf("limit=1: %v", items)
	}
	// A viewer token reads them too.
	v := e.do(req{method: "POST", path: "/admin/tokens", header: op, body: map[string]string{"name": "console", "scope": "viewer"}}).JSON(t)
	viewer := map[string]string{"Authorization": "Bearer " + v["token"].(string)}
	if r := e.do(req{method: "GET", path: "/admin/usage/top", header: viewer}); r.Status != 200 {
		t.Fatalf("viewer: %d %s", r.Status, r.Body)
	}
	for _, c := range []struct{ path, field string }{
		{"/admin/usage/history?user=0", "user"},
		{"/admin/usage/history?user=abc", "user"},
		{"/admin/usage/history?user=1&user=2", "user"},
		{"/admin/usage/history?granularity=second", "granularity"},
		{"/admin/usage/history?from=2000-01-01T00:00:00Z", "from"},
		{"/admin/usage/top?by=cost", "by"},
		{"/admin/usage/top?limit=0", "limit"},
		{"/admin/usage/top?limit=101", "limit"},
		{"/admin/usage/top?limit=ten", "limit"},
		{"/admin/usage/top?to=nope", "to"},
	} {
		p := expectProblem(t, e.do(req{method: "GET", path: c.path, header: op}), 422, "validation-failed")
		if !strings.Contains(fmt.Sprint(p["errors"]), "field:"+c.field) {
			t.Errorf("%s: errors %v, want field %s", c.path, p["errors"], c.field)
		}
	}
	for _, path := range []string{"/admin/usage/history", "/admin/usage/top"} {
		expectProblem(t, e.do(req{method: "GET", path: path}), 401, "unauthorized")
		expectProblem(t, e.do(req{method: "GET", path: path, key: a}), 401, "unauthorized")
		expectProblem(t, e.do(req{method: "GET", path: path, header: map[string]string{"Authorization": "Bearer rbo_nope"}}), 401, "unauthorized")
	}

	// A suspended customer is refused (403), as on /me.
	suspend(t, e, aliceID, true)
	expectProblem(t, e.do(req{method: "GET", path: "/usage/history", key: a}), http.StatusForbidden, "suspended")
}

// TestContractPages: /dashboard and /console and their assets are served
// from the binary with a Content-Security-Policy that allows no inline
// script and no other origin, ETags that revalidate to 304, and a 404
// problem for an unknown asset.
func TestContractPages(t *testing.T) {
	t.Parallel()
	e := setup(t, options{replicas: 1})
	for _, path := range []string{"/dashboard", "/console"} {
		page := e.do(req{method: "GET", path: path})
		if page.Status != 200 || !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("%s: %d %q", path, page.Status, page.Header.Get("Content-Type"))
		}
		csp := page.Header.Get("Content-Security-Policy")
		if csp != webui.CSP || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "connect-src 'self'") {
			t.Errorf("%s Content-Security-Policy %q", path, csp)
		}
		if strings.Contains(string(page.Body), "<script>") || strings.Contains(string(page.Body), "onclick=") || strings.Contains(string(page.Body), "style=") {
			t.Errorf("%s has inline script", path)
		}
		revalidate(t, e, path, page)
		for _, a := range webui.Assets(path) {
			if !strings.Contains(string(page.Body), `"`+path[1:]+`?asset=`+a+`"`) {
				t.Errorf("%s does not load asset %s", path, a)
			}
			r := e.do(req{method: "GET", path: path + "?asset=" + a})
			want := "text/css"
			if strings.HasSuffix(a, ".js") {
				want = "text/javascript"
			}
			if r.Status != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), want) || len(r.Body) == 0 {
				t.Fatalf("%s asset %s: %d %q", path, a, r.Status, r.Header.Get("Content-Type"))
			}
			revalidate(t, e, path+"?asset="+a, r)
		}
		expectProblem(t, e.do(req{method: "GET", path: path + "?asset=../webui.go"}), 404, "not-found")
	}
	if !strings.Contains(string(e.do(req{method: "GET", path: "/dashboard?asset=uPlot.iife.min.js"}).Body), "uPlot") {
		t.Fatal("the chart library is not uPlot")
	}
}

// TestContractUPlotPinned: the embedded chart library is the pinned
// npm uplot package's files, as scripts/update-uplot.sh wrote them.
func TestContractUPlotPinned(t *testing.T) {
	t.Parallel()
	sums := readRepoFile(t, "shared/webui/uplot/SHA256SUMS")
	lines := strings.Split(strings.TrimSpace(sums), "\n")
	if len(lines) != 3 {
		t.Fatalf("SHA256SUMS lists %d files, want 3", len(lines))
	}
	for _, line := range lines {
		want, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q", line)
		}
		sum := sha256.Sum256([]byte(readRepoFile(t, "shared/webui/uplot/"+name)))
		if fmt.Sprintf("%x", sum) != want {
			t.Errorf("%s does not match SHA256SUMS: run scripts/update-uplot.sh", name)
		}
	}
	v := webui.UPlotVersion()
	if script := readRepoFile(t, "scripts/update-uplot.sh"); v == "" || !strings.Contains(script, "UPLOT_VERSION:-"+v+"}") {
		t.Fatalf("embedded uplot %q is not the version pinned in scripts/update-uplot.sh", v)
	}
}
