package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
)

// Resource is a static response embedded in the binary (a page, a script,
// the OpenAPI document), served with a content-derived ETag: a matching
// If-None-Match is a 304.
type Resource struct {
	body        []byte
	contentType string
	cache       string
	etag        string
}

// NewResource returns body served as contentType with Cache-Control
// cache; its ETag is a digest of body.
func NewResource(body []byte, contentType, cache string) *Resource {
	sum := sha256.Sum256(body)
	return &Resource{body: body, contentType: contentType, cache: cache, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
}

// ServeHTTP answers 304 when the request's If-None-Match names the
// resource's ETag, else 200 with the body (none for HEAD).
func (res *Resource) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("ETag", res.etag)
	h.Set("Cache-Control", res.cache)
	if etagMatches(r.Header.Get("If-None-Match"), res.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", res.contentType)
	h.Set("Content-Length", strconv.Itoa(len(res.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(res.body)
	}
}

// etagMatches reports whether an If-None-Match header value names etag
// (weak comparison, RFC 9110 section 13.1.2).
func etagMatches(ifNoneMatch, etag string) bool {
	for _, t := range strings.Split(ifNoneMatch, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}
