// Package openapi serves the API's contract: the OpenAPI 3.1 document
// (openapi.json, the single description of the public API) at
// /openapi.json, and Swagger UI for it at /docs.
//
// Swagger UI's assets (swagger-ui-dist from the npm registry, at the
// version in swagger-ui/VERSION, refreshed by scripts/update-swagger-ui.sh)
// are embedded in the binary, so the page works with no internet access.
// The gateways route exact paths only, so the assets are served from the
// page's own path: /docs?asset=swagger-ui-bundle.js and so on.
//
// Responses carry a strong ETag and answer If-None-Match with 304. The
// document and the page are "no-cache" (revalidated on every use, so a
// deployment is seen at once); the assets may be cached for an hour.
package openapi

import (
	_ "embed"
	"net/http"
	"strings"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/httpapi"
)

//go:embed openapi.json
var spec []byte

// The page and its assets. go:embed fails the build if one is missing.
var (
	//go:embed docs.html
	page []byte
	//go:embed docs.js
	docsJS []byte
	//go:embed swagger-ui/swagger-ui.css
	swaggerCSS []byte
	//go:embed swagger-ui/swagger-ui-bundle.js
	swaggerJS []byte
	//go:embed swagger-ui/VERSION
	swaggerVersion string
)

// Spec returns the OpenAPI document. Callers must not modify it.
func Spec() []byte { return spec }

// SwaggerUIVersion is the version of swagger-ui-dist served at /docs.
func SwaggerUIVersion() string { return strings.TrimSpace(swaggerVersion) }

// Assets are the values of /docs?asset= (besides none: the page itself).
var Assets = []string{"swagger-ui.css", "swagger-ui-bundle.js", "docs.js"}

// Cache-Control values.
const (
	revalidate = "no-cache"
	assetCache = "public, max-age=3600"
)

// csp allows the page only its own scripts and styles (Swagger UI sets
// inline styles and draws data: images) and requests to its own origin,
// which is where "Try it out" sends them.
const csp = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

var (
	specResource = httpapi.NewResource(spec, "application/json", revalidate)
	pageResource = httpapi.NewResource(page, "text/html; charset=utf-8", revalidate)
	assets       = map[string]*httpapi.Resource{
		"swagger-ui.css":       httpapi.NewResource(swaggerCSS, "text/css; charset=utf-8", assetCache),
		"swagger-ui-bundle.js": httpapi.NewResource(swaggerJS, "text/javascript; charset=utf-8", assetCache),
		"docs.js":              httpapi.NewResource(docsJS, "text/javascript; charset=utf-8", assetCache),
	}
)

// SpecHandler serves the OpenAPI document at GET /openapi.json.
func SpecHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		specResource.ServeHTTP(w, r)
	})
}

// DocsHandler serves Swagger UI at GET /docs, and its assets at
// GET /docs?asset=NAME (404 problem for an unknown NAME).
func DocsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("asset")
		if name == "" {
			w.Header().Set("Content-Security-Policy", csp)
			w.Header().Set("X-Content-Type-Options", "nosniff")
			pageResource.ServeHTTP(w, r)
			return
		}
		a, ok := assets[name]
		if !ok {
			httpapi.Error(w, r, shared.Errorf(shared.ENotFound, "no asset %q; the page's assets are %s", name, strings.Join(Assets, ", ")))
			return
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		a.ServeHTTP(w, r)
	})
}
