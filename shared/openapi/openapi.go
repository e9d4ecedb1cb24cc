// Package openapi serves the API's OpenAPI document and its interactive
// documentation.
package openapi

import (
	_ "embed"
	"net/http"
)

//go:embed openapi.json
var spec []byte

// Spec returns the OpenAPI document.
func Spec() []byte { return spec }

// SpecHandler serves the OpenAPI document.
func SpecHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(spec)
	})
}

// DocsHandler serves the documentation page.
func DocsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(`<!doctype html><title>API docs</title><p>See <a href="/openapi.json">/openapi.json</a>.`))
	})
}
