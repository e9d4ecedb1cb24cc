// Package webui serves the platform's two pages: the customer dashboard
// at /dashboard (usage function) and the operator console at /console
// (users function). Both are static files embedded in the binary that
// read only the public API of their own origin: the dashboard with the
// customer's API key, the console with an operator token, each kept in
// the tab's sessionStorage only (never in a URL, never in a cookie).
//
// Charts are drawn by uPlot (the npm package uplot at the version in
// uplot/VERSION, refreshed by scripts/update-uplot.sh, checked against
// uplot/SHA256SUMS by a test), so the pages work with no internet access.
// The gateways route exact paths only, so a page's assets are served from
// its own path: /dashboard?asset=uPlot.iife.min.js and so on.
//
// The pages run no inline script: the Content-Security-Policy allows
// scripts and styles from the origin only and requests to the origin
// only. Responses carry a strong ETag and answer If-None-Match with 304.
package webui

import (
	"embed"
	"net/http"
	"sort"
	"strings"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/httpapi"
)

//go:embed dashboard.html console.html app.css common.js dashboard.js console.js uplot/uPlot.iife.min.js uplot/uPlot.min.css uplot/VERSION
var files embed.FS

// UPlotVersion is the version of uPlot the pages draw with.
func UPlotVersion() string {
	b, _ := files.ReadFile("uplot/VERSION")
	return strings.TrimSpace(string(b))
}

// CSP is the pages' Content-Security-Policy: scripts, styles, images and
// requests from the origin only (uPlot sets element styles from script,
// which CSP does not restrict; it draws on canvas).
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Cache-Control values: the pages revalidate on every use (a deployment
// is seen at once); the assets may be cached for an hour.
const (
	revalidate = "no-cache"
	assetCache = "public, max-age=3600"
)

func load(name, contentType, cache string) *httpapi.Resource {
	body, err := files.ReadFile(name)
	if err != nil {
		panic("webui: " + name + " is not embedded") // go:embed lists it: cannot happen
	}
	return httpapi.NewResource(body, contentType, cache)
}

// page is one page and the assets it loads.
type page struct {
	html   *httpapi.Resource
	assets map[string]*httpapi.Resource
}

func newPage(html, script string) *page {
	js := "text/javascript; charset=utf-8"
	return &page{html: load(html, "text/html; charset=utf-8", revalidate), assets: map[string]*httpapi.Resource{
		"uPlot.iife.min.js": load("uplot/uPlot.iife.min.js", js, assetCache),
		"uPlot.min.css":     load("uplot/uPlot.min.css", "text/css; charset=utf-8", assetCache),
		"app.css":           load("app.css", "text/css; charset=utf-8", assetCache),
		"common.js":         load("common.js", js, assetCache),
		script:              load(script, js, assetCache),
	}}
}

var (
	dashboard = newPage("dashboard.html", "dashboard.js")
	console   = newPage("console.html", "console.js")
)

// Assets returns the values of ?asset= that the page at path ("/dashboard"
// or "/console") serves, sorted.
func Assets(path string) []string {
	p := dashboard
	if path == "/console" {
		p = console
	}
	var out []string
	for name := range p.assets {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// Dashboard serves the customer dashboard at GET /dashboard and its
// assets at GET /dashboard?asset=NAME.
func Dashboard() http.Handler { return dashboard }

// Console serves the operator console at GET /console and its assets at
// GET /console?asset=NAME.
func Console() http.Handler { return console }

func (p *page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	name := r.URL.Query().Get("asset")
	if name == "" {
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Frame-Options", "DENY")
		p.html.ServeHTTP(w, r)
		return
	}
	a, ok := p.assets[name]
	if !ok {
		names := make([]string, 0, len(p.assets))
		for n := range p.assets {
			names = append(names, n)
		}
		sort.Strings(names)
		httpapi.Error(w, r, shared.Errorf(shared.ENotFound, "no asset %q; the page's assets are %s", name, strings.Join(names, ", ")))
		return
	}
	a.ServeHTTP(w, r)
}
