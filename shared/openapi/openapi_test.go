package openapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ratebill/platform/shared/openapi"
)

func TestSpecIsOpenAPI31(t *testing.T) {
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Servers []struct{ URL string }    `json:"servers"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(openapi.Spec(), &doc); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") || len(doc.Servers) != 1 || doc.Servers[0].URL != "/" || len(doc.Paths) == 0 {
		t.Fatalf("openapi %q, servers %v, %d paths", doc.OpenAPI, doc.Servers, len(doc.Paths))
	}
}

func get(t *testing.T, h http.Handler, target string, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, target, nil)
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHandlers(t *testing.T) {
	tests := []struct {
		name, target, wantType, wantCache, wantBody string
	}{
		{"document", "/openapi.json", "application/json", "no-cache", `"openapi": "3.1.0"`},
		{"page", "/docs", "text/html; charset=utf-8", "no-cache", `<script src="docs?asset=swagger-ui-bundle.js">`},
		{"stylesheet", "/docs?asset=swagger-ui.css", "text/css; charset=utf-8", "public, max-age=3600", ".swagger-ui"},
		{"bundle", "/docs?asset=swagger-ui-bundle.js", "text/javascript; charset=utf-8", "public, max-age=3600", "SwaggerUIBundle"},
		{"initializer", "/docs?asset=docs.js", "text/javascript; charset=utf-8", "public, max-age=3600", "persistAuthorization: true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := openapi.DocsHandler()
			if strings.HasPrefix(tt.target, "/openapi.json") {
				h = openapi.SpecHandler()
			}
			w := get(t, h, tt.target, nil)
			if w.Code != 200 || w.Header().Get("Content-Type") != tt.wantType || w.Header().Get("Cache-Control") != tt.wantCache ||
				!strings.Contains(w.Body.String(), tt.wantBody) {
				t.Fatalf("%d %v, body has %q: %v", w.Code, w.Header(), tt.wantBody, strings.Contains(w.Body.String(), tt.wantBody))
			}
			tag := w.Header().Get("ETag")
			if again := get(t, h, tt.target, map[string]string{"If-None-Match": `"other", W/` + tag}); again.Code != http.StatusNotModified || again.Body.Len() != 0 {
				t.Fatalf("If-None-Match %s: %d, %d bytes", tag, again.Code, again.Body.Len())
			}
			if stale := get(t, h, tt.target, map[string]string{"If-None-Match": `"stale"`}); stale.Code != 200 {
				t.Fatalf("stale ETag: %d", stale.Code)
			}
		})
	}
}

func TestUnknownAsset(t *testing.T) {
	w := get(t, openapi.DocsHandler(), "/docs?asset=../openapi.go", nil)
	if w.Code != 404 || w.Header().Get("Content-Type") != "application/problem+json" || !strings.Contains(w.Body.String(), "urn:problem-type:ratebill:not-found") {
		t.Fatalf("%d %v %s", w.Code, w.Header(), w.Body)
	}
}

func TestPageLoadsOnlyItsOwnAssets(t *testing.T) {
	page := get(t, openapi.DocsHandler(), "/docs", nil)
	for _, a := range openapi.Assets {
		if !strings.Contains(page.Body.String(), `"docs?asset=`+a+`"`) {
			t.Errorf("page does not load %s", a)
		}
	}
	if strings.Contains(page.Body.String(), "//") || !strings.Contains(page.Header().Get("Content-Security-Policy"), "script-src 'self'") {
		t.Errorf("page refers to another origin or lacks its CSP")
	}
	if v := openapi.SwaggerUIVersion(); v == "" || strings.ContainsAny(v, " \n") {
		t.Errorf("SwaggerUIVersion %q", v)
	}
}
