// Package serve runs a function: the router wired from the routing table,
// the internal probes, and a process that owns its http.Server (timeouts,
// header limit, Shutdown on SIGTERM, then the dependencies closed with
// pending usage flushed).
package serve

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strings"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/deps"
	"github.com/ratebill/platform/shared/gate"
	"github.com/ratebill/platform/shared/httpapi"
	"github.com/ratebill/platform/shared/routes"
	"github.com/ratebill/platform/shared/telemetry"
)

// Handlers maps a route's Key ("GET /usage") to its handler: the
// function's own code, without authentication, metering or limits, which
// Router applies from the routing table.
type Handlers map[string]http.Handler

// Options are what the router needs besides the routes.
type Options struct {
	Logger  *slog.Logger
	Project string // Google Cloud project, to link logs to traces
	// Ready reports the dependencies for /readyz; nil reports none.
	Ready func(context.Context) []deps.Check
	// Operators authenticates the rows with routes.AuthOperator; a
	// function with such rows must set it.
	Operators Operators
	// Telemetry traces every request and counts it by route (the
	// routing table's path, never the raw URL), method and status; nil:
	// off.
	Telemetry *telemetry.Telemetry
}

// Operators wraps the handler of an operator route; *operator.Authenticator.
// write is true for rows that change something (routes.Route.Writes),
// which need the admin scope.
type Operators interface {
	Require(h http.Handler, write bool) http.Handler
}

// Router returns function fn's handler: every row of routes.Table served
// by fn, wired from the row (the gate's Authenticated, Metered with the
// row's path as the label, or IPLimited; nothing for AuthSelf rows, whose
// handlers call the gate themselves; the "/" alias of Root rows),
// exact paths and patterns (routes.Match; the variables reach the
// handler as r.PathValue), operator routes through o.Operators, a
// problem response for unknown paths (404) and methods
// (405 with Allow), the internal probes /livez and /readyz, and the
// request middleware. It fails when a row of fn has no handler or a
// handler has no row, so a route and its code cannot drift apart.
func Router(fn string, g *gate.Gate, handlers Handlers, o Options) (http.Handler, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	paths := map[string]map[string]http.Handler{}
	label := map[string]string{} // served path -> the route label: its row's path
	add := func(path, method string, h http.Handler) error {
		if paths[path] == nil {
			paths[path] = map[string]http.Handler{}
		}
		if _, ok := label[path]; !ok {
			label[path] = path
		}
		if _, dup := paths[path][method]; dup {
			return fmt.Errorf("serve: %s %s is routed twice", method, path)
		}
		paths[path][method] = h
		return nil
	}
	var prefixes []string // Prefix rows: every path below path + "/"
	var patterns []string // rows with variable segments, in table order
	used := map[string]bool{}
	for _, row := range routes.Table {
		if row.Function != fn {
			continue
		}
		h, ok := handlers[row.Key()]
		if !ok {
			return nil, fmt.Errorf("serve: function %s has no handler for %s", fn, row.Key())
		}
		used[row.Key()] = true
		switch {
		case row.Metered && row.Auth != routes.AuthKey:
			return nil, fmt.Errorf("serve: %s is metered but not authenticated by key", row.Key())
		case row.Metered:
			h = g.Metered(row.Path, h)
		case row.Auth == routes.AuthKey:
			h = g.Authenticated(h)
		case row.Auth == routes.AuthOperator:
			if o.Operators == nil {
				return nil, fmt.Errorf("serve: %s needs an operator authenticator (Options.Operators)", row.Key())
			}
			h = o.Operators.Require(h, row.Writes())
		case row.Auth == routes.AuthSelf:
			// The handler authenticates itself (see routes.AuthSelf).
		}
		if routes.IsPattern(row.Path) && paths[row.Path] == nil {
			patterns = append(patterns, row.Path)
		}
		if row.IPLimited {
			h = g.IPLimited(h)
		}
		if err := add(row.Path, row.Method, h); err != nil {
			return nil, err
		}
		if row.Prefix {
			prefixes = append(prefixes, row.Path+"/")
			label[row.Path+"/"] = row.Path
			if err := add(row.Path+"/", row.Method, h); err != nil {
				return nil, err
			}
		}
		if row.Root {
			label["/"] = row.Path
			if err := add("/", row.Method, h); err != nil {
				return nil, err
			}
		}
	}
	for k := range handlers {
		if !used[k] {
			return nil, fmt.Errorf("serve: handler %q of function %s has no row in routes.Table", k, fn)
		}
	}
	mux := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/livez":
			telemetry.SetRoute(r.Context(), "/livez")
			// The pid tells a supervisor (tools/stack) that the process it
			// started, not another on a reused port, is the one answering.
			// Internal path: no gateway routes it.
			httpapi.JSON(w, http.StatusOK, map[string]any{"status": "ok", "pid": os.Getpid()})
			return
		case "/readyz":
			telemetry.SetRoute(r.Context(), "/readyz")
			ready(w, r, o.Ready)
			return
		}
		served := r.URL.Path
		methods, ok := paths[served]
		if ok && routes.IsPattern(served) {
			// A literal "{id}" in the request is not the pattern.
			methods, ok = nil, false
		}
		for _, p := range patterns {
			if ok {
				break
			}
			if vals, match := routes.Match(p, r.URL.Path); match {
				methods, ok, served = paths[p], true, p
				for i, name := range routes.Vars(p) {
					r.SetPathValue(name, vals[i])
				}
			}
		}
		for _, p := range prefixes {
			if !ok && strings.HasPrefix(r.URL.Path, p) {
				methods, ok = paths[p]
				served = p
			}
		}
		if ok {
			telemetry.SetRoute(r.Context(), label[served])
		}
		if !ok {
			httpapi.Error(w, r, shared.Errorf(shared.ENotFound, "no route for %s", r.URL.Path))
			return
		}
		// Exactly the documented methods: no implicit HEAD, which on a
		// metered path would be billed for a response nobody reads.
		h, ok := methods[r.Method]
		if !ok {
			h, ok = methods[routes.AnyMethod]
		}
		if !ok {
			allow := make([]string, 0, len(methods))
			for m := range methods {
				allow = append(allow, m)
			}
			sort.Strings(allow)
			w.Header().Set("Allow", strings.Join(allow, ", "))
			httpapi.Error(w, r, shared.Errorf(shared.EMethod, "%s does not accept %s; use %s", r.URL.Path, r.Method, strings.Join(allow, ", ")))
			return
		}
		h.ServeHTTP(w, r)
	})
	// Telemetry outside the request middleware: the request's span is in
	// the context when the middleware builds the log lines' trace.
	return o.Telemetry.Handler(httpapi.Middleware(mux, o.Logger, o.Project)), nil
}

func ready(w http.ResponseWriter, r *http.Request, checks func(context.Context) []deps.Check) {
	status, code := "ok", http.StatusOK
	body := map[string]string{}
	if checks != nil {
		for _, c := range checks(r.Context()) {
			if c.Err != nil {
				status, code = "unavailable", http.StatusServiceUnavailable
				body[c.Name] = "down"
			} else {
				body[c.Name] = "ok"
			}
		}
	}
	body["status"] = status
	httpapi.JSON(w, code, body)
}

// OptionsFor returns the router options of an instance built on d.
func OptionsFor(d *deps.Deps) Options {
	return Options{Logger: d.Logger, Project: d.Config.Project, Ready: d.Check, Telemetry: d.Telemetry}
}
