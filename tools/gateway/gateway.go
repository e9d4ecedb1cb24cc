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
	"strings"
	"sync/atomic"
	"time"

	"github.com/ratebill/platform/functions/billing"
	"github.com/ratebill/platform/functions/health"
	"github.com/ratebill/platform/functions/usage"
	"github.com/ratebill/platform/functions/users"
	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/deps"
	"github.com/ratebill/platform/shared/httpapi"
	"github.com/ratebill/platform/shared/routes"
)

// Functions returns every function's handler built on d, for running the
// whole platform in one process (make run, the load tool's tests).
func Functions(d *deps.Deps) (map[string]http.Handler, error) {
	builds := map[string]func(*deps.Deps) (http.Handler, error){
		routes.Users: users.Handler, routes.Usage: usage.Handler,
		routes.Billing: billing.Handler, routes.Health: health.Handler,
	}
	out := make(map[string]http.Handler, len(builds))
	for fn, build := range builds {
		h, err := build(d)
		if err != nil {
			return nil, err
		}
		out[fn] = h
	}
	return out, nil
}

// New returns a handler routing every path of routes.Table to the
// backend of its function. Every function must have a backend. Unrouted
// paths get a 404 problem, as from the cloud load balancer's default.
func New(backends map[string]http.Handler) (http.Handler, error) {
	table := make(map[string]http.Handler)
	type prefix struct {
		path string
		h    http.Handler
	}
	var prefixes, patterns []prefix
	for _, r := range routes.Table {
		b, ok := backends[r.Function]
		if !ok {
			return nil, fmt.Errorf("gateway: no backend for function %q", r.Function)
		}
		if routes.IsPattern(r.Path) {
			patterns = append(patterns, prefix{r.Path, b})
			continue
		}
		table[r.Path] = b
		if r.Prefix {
			prefixes = append(prefixes, prefix{r.Path + "/", b})
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Like nginx: the client's id (its idempotency key) goes to the
		// function unchanged, so a malformed one gets the function's 400
		// rather than a silent replacement that would bill a retry twice;
		// one is assigned only when none was sent. The gateway's own
		// answers carry a well-formed id.
		id := r.Header.Get(httpapi.RequestIDHeader)
		if id == "" {
			id = httpapi.NewRequestID()
			r.Header.Set(httpapi.RequestIDHeader, id)
		} else if !httpapi.ValidRequestID(id) {
			id = httpapi.NewRequestID()
		}
		b, ok := table[r.URL.Path]
		for _, p := range patterns {
			if _, match := routes.Match(p.path, r.URL.Path); !ok && match {
				b, ok = p.h, true
			}
		}
		for _, p := range prefixes {
			if !ok && strings.HasPrefix(r.URL.Path, p.path) {
				b, ok = p.h, true
			}
		}
		if !ok {
			w.Header().Set(httpapi.RequestIDHeader, id)
			httpapi.Error(w, r, shared.Errorf(shared.ENotFound, "no route for %s", r.URL.Path))
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
			httpapi.Error(w, r, &shared.Error{Code: shared.EUnavailable, Message: "the function behind " + r.URL.Path + " did not answer", Err: err})
		},
	}, nil
}
