// Package gateway is the local stand-in for the Google Cloud load
// balancer: one base URL whose paths are routed to functions by the shared
// routing table (routes.Table). A backend is either a function's handler
// in the same process (make run: no extra hop) or a reverse proxy over the
// function's separate processes, round robin.
package gateway

import (
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/httpapi"
	"github.com/ratebill/platform/shared/routes"
)

// New returns a handler routing every path of routes.Table to the
// backend of its function. Every function must have a backend. Unrouted
// paths get a 404 problem, as from the cloud load balancer's default.
func New(backends map[string]http.Handler) (http.Handler, error) {
	table := make(map[string]http.Handler)
	for _, r := range routes.Table {
		b, ok := backends[r.Function]
		if !ok {
			return nil, fmt.Errorf("gateway: no backend for function %q", r.Function)
		}
		table[r.Path] = b
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Like nginx: keep a well-formed client id (the client's
		// idempotency key), else assign one, so every response (404s
		// included) can be traced.
		id := r.Header.Get(httpapi.RequestIDHeader)
		if !httpapi.ValidRequestID(id) {
			id = uuid.NewString()
			r.Header.Set(httpapi.RequestIDHeader, id)
		}
		b, ok := table[r.URL.Path]
		if !ok {
			w.Header().Set(httpapi.RequestIDHeader, id)
			httpapi.WriteProblem(w, httpapi.Problem{
				Type:      httpapi.ProblemType(shared.ENotFound),
				Title:     "Not Found",
				Status:    http.StatusNotFound,
				Detail:    "no route for " + r.URL.Path,
				Instance:  r.URL.Path,
				RequestID: id,
			})
			return
		}
		b.ServeHTTP(w, r)
	}), nil
}

// Proxy returns a reverse proxy spreading requests over the base URLs
// round robin, appending the client address to X-Forwarded-For (so the
// functions behind it run with TRUSTED_PROXY_HOPS=1). An unreachable
// backend answers 503 problem+json.
func Proxy(baseURLs []string) (http.Handler, error) {
	if len(baseURLs) == 0 {
		return nil, fmt.Errorf("gateway: no backend URLs")
	}
	targets := make([]*url.URL, len(baseURLs))
	for i, s := range baseURLs {
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("gateway: backend %q: %w", s, err)
		}
		targets[i] = u
	}
	var next atomic.Uint64
	transport := &http.Transport{
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     90 * time.Second,
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			t := targets[(next.Add(1)-1)%uint64(len(targets))]
			pr.SetURL(t)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport: transport,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			id := r.Header.Get(httpapi.RequestIDHeader)
			if id != "" {
				w.Header().Set(httpapi.RequestIDHeader, id)
			}
			w.Header().Set("Retry-After", "1")
			httpapi.WriteProblem(w, httpapi.Problem{
				Type:      httpapi.ProblemType(shared.EUnavailable),
				Title:     "Service Unavailable",
				Status:    http.StatusServiceUnavailable,
				Detail:    "the function behind " + r.URL.Path + " did not answer",
				Instance:  r.URL.Path,
				RequestID: id,
			})
		},
	}, nil
}
