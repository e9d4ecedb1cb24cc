// Package routes is the one table that maps the public API's paths to the
// Cloud Run function that serves them.
//
// Every router in the repository (the local gateway, nginx for compose and
// Kubernetes, the Google Cloud load balancer's URL map) is generated from or
// tested against this table, so a path can never be served by one router and
// forgotten by another.
package routes

import "strings"

// Function names, as deployed. Each is also the functions-framework target
// name in title case (see Route.Target).
const (
	Users   = "users"
	Usage   = "usage"
	Billing = "billing"
	Health  = "health"
)

// Functions lists every deployed function, in a stable order.
var Functions = []string{Users, Usage, Billing, Health}

// Auth says how a route authenticates its caller.
type Auth string

// Authentication kinds.
const (
	// AuthNone routes need no credentials.
	AuthNone Auth = "none"
	// AuthKey routes need a valid X-API-Key header.
	AuthKey Auth = "api_key"
	// AuthOperator routes need an operator token (Authorization: Bearer
	// rbo_…; package operator). GET rows admit any scope; every other
	// method needs the admin scope (a viewer gets 403).
	AuthOperator Auth = "operator"
	// AuthSelf routes authenticate in their handler, because they answer a
	// bad credential in their own way: POST /verify (the key in the body,
	// called by a customer's server for its caller; a bad key is a 200
	// answer), POST /verify/release (a release token in the body) and /auth
	// (the original request's X-API-Key, forwarded by nginx or Envoy). The
	// router applies nothing; the handlers use the gate themselves
	// (gate.Authenticate, gate.Admit, gate.Release).
	AuthSelf Auth = "self"
)

// Route is one row of the routing table. Paths are exact: the gateways
// match them exactly, never as prefixes. A path may hold variable
// segments, "{name}", each matching exactly one non-empty segment
// ("/admin/users/{id}/suspend" matches "/admin/users/42/suspend", never
// "/admin/users//suspend" or "/admin/users/4/2/suspend"); the function's
// router hands the value to the handler as r.PathValue(name).
//
// The row is also how the function wires the route (package serve): the
// gate's authentication, metering (labelled with Path) or per-IP limit
// come from here, never from the handler's code.
type Route struct {
	Method   string // HTTP method, e.g. "GET"
	Path     string // exact path, e.g. "/usage", or a pattern, e.g. "/admin/keys/{id}"
	Function string // one of Functions
	Auth     Auth
	// Metered routes are rate limited per user and recorded for billing
	// by the router (gate.Metered; they need Auth AuthKey). AuthSelf routes
	// meter in their handler and are not Metered here.
	Metered bool
	// IPLimited routes are rate limited per client IP (sign-up).
	IPLimited bool
	// Root routes are also served at "/" on the function's own URL (its
	// Cloud Run URL, without the gateway).
	Root bool
	// Prefix routes also serve every path below Path + "/" (Envoy's
	// ext_authz appends the original request's path to /auth).
	Prefix bool
}

// Writes reports whether an AuthOperator row changes something (needs the
// admin scope): every method but GET.
func (r Route) Writes() bool { return r.Method != "GET" }

// AnyMethod in Route.Method accepts every method (/auth: nginx and Envoy
// forward the original request's method).
const AnyMethod = "*"

// Key is "METHOD PATH", the route's name when a function lists its
// handlers.
func (r Route) Key() string { return r.Method + " " + r.Path }

// Table is the public API. The order is the order of the documentation.
var Table = []Route{
	{Method: "POST", Path: "/users/", Function: Users, Auth: AuthNone, IPLimited: true},
	{Method: "POST", Path: "/users", Function: Users, Auth: AuthNone, IPLimited: true},
	{Method: "GET", Path: "/me", Function: Users, Auth: AuthKey},
	{Method: "GET", Path: "/keys", Function: Users, Auth: AuthKey},
	{Method: "POST", Path: "/keys", Function: Users, Auth: AuthKey},
	{Method: "POST", Path: "/keys/{id}/rotate", Function: Users, Auth: AuthKey},
	{Method: "DELETE", Path: "/keys/{id}", Function: Users, Auth: AuthKey},
	{Method: "GET", Path: "/usage", Function: Usage, Auth: AuthKey, Metered: true, Root: true},
	{Method: "GET", Path: "/usage/history", Function: Usage, Auth: AuthKey},
	{Method: "POST", Path: "/verify", Function: Usage, Auth: AuthSelf},
	{Method: "POST", Path: "/verify/release", Function: Usage, Auth: AuthSelf},
	{Method: AnyMethod, Path: "/auth", Function: Usage, Auth: AuthSelf, Prefix: true},
	{Method: "GET", Path: "/billing", Function: Billing, Auth: AuthKey, Root: true},
	{Method: "GET", Path: "/billing/invoices", Function: Billing, Auth: AuthKey},
	{Method: "GET", Path: "/billing/cap", Function: Billing, Auth: AuthKey},
	{Method: "PUT", Path: "/billing/cap", Function: Billing, Auth: AuthKey},
	{Method: "DELETE", Path: "/billing/cap", Function: Billing, Auth: AuthKey},
	{Method: "GET", Path: "/admin/users", Function: Users, Auth: AuthOperator},
	{Method: "GET", Path: "/admin/users/{id}", Function: Users, Auth: AuthOperator},
	{Method: "POST", Path: "/admin/users/{id}/suspend", Function: Users, Auth: AuthOperator},
	{Method: "POST", Path: "/admin/users/{id}/reactivate", Function: Users, Auth: AuthOperator},
	{Method: "PUT", Path: "/admin/users/{id}/limit", Function: Users, Auth: AuthOperator},
	{Method: "DELETE", Path: "/admin/users/{id}/limit", Function: Users, Auth: AuthOperator},
	{Method: "PUT", Path: "/admin/users/{id}/cap", Function: Users, Auth: AuthOperator},
	{Method: "DELETE", Path: "/admin/users/{id}/cap", Function: Users, Auth: AuthOperator},
	{Method: "POST", Path: "/admin/users/{id}/keys", Function: Users, Auth: AuthOperator},
	{Method: "DELETE", Path: "/admin/keys/{id}", Function: Users, Auth: AuthOperator},
	{Method: "GET", Path: "/admin/tokens", Function: Users, Auth: AuthOperator},
	{Method: "POST", Path: "/admin/tokens", Function: Users, Auth: AuthOperator},
	{Method: "DELETE", Path: "/admin/tokens/{id}", Function: Users, Auth: AuthOperator},
	{Method: "GET", Path: "/admin/audit", Function: Users, Auth: AuthOperator},
	{Method: "GET", Path: "/admin/plans", Function: Users, Auth: AuthOperator},
	{Method: "GET", Path: "/admin/plans/{name}", Function: Users, Auth: AuthOperator},
	{Method: "PUT", Path: "/admin/plans/{name}", Function: Users, Auth: AuthOperator},
	{Method: "PUT", Path: "/admin/users/{id}/plan", Function: Users, Auth: AuthOperator},
	{Method: "GET", Path: "/admin/invoices", Function: Billing, Auth: AuthOperator},
	{Method: "GET", Path: "/admin/usage/history", Function: Users, Auth: AuthOperator},
	{Method: "GET", Path: "/admin/usage/top", Function: Users, Auth: AuthOperator},
	{Method: "GET", Path: "/health", Function: Health, Auth: AuthNone, Root: true},
	{Method: "GET", Path: "/docs", Function: Health, Auth: AuthNone},
	{Method: "GET", Path: "/openapi.json", Function: Health, Auth: AuthNone},
	{Method: "GET", Path: "/dashboard", Function: Usage, Auth: AuthNone},
	{Method: "GET", Path: "/console", Function: Users, Auth: AuthNone},
}

// Paths returns every distinct path served by function fn, in table order.
// An empty fn returns every path.
func Paths(fn string) []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range Table {
		if (fn == "" || r.Function == fn) && !seen[r.Path] {
			seen[r.Path] = true
			out = append(out, r.Path)
		}
	}
	return out
}

// IsPrefix reports whether path is a Prefix route of the table.
func IsPrefix(path string) bool {
	for _, r := range Table {
		if r.Path == path && r.Prefix {
			return true
		}
	}
	return false
}

// FunctionFor returns the function that serves path, and whether the path is
// routed at all: exactly, by a pattern, or below a Prefix route. The method is not
// considered: a gateway forwards every method of a routed path and the
// function answers 405 itself.
func FunctionFor(path string) (string, bool) {
	for _, r := range Table {
		if r.Path == path {
			return r.Function, true
		}
	}
	for _, r := range Table {
		if _, ok := Match(r.Path, path); ok && IsPattern(r.Path) {
			return r.Function, true
		}
	}
	for _, r := range Table {
		if r.Prefix && strings.HasPrefix(path, r.Path+"/") {
			return r.Function, true
		}
	}
	return "", false
}

// IsPattern reports whether path holds a variable segment ("{id}").
func IsPattern(path string) bool { return strings.Contains(path, "{") }

// Match matches path against pattern segment by segment: literal segments
// exactly, each "{name}" one non-empty segment. It returns the variables'
// values in order, and whether path matched. It allocates only for the
// values.
func Match(pattern, path string) ([]string, bool) {
	var vals []string
	for pattern != "" || path != "" {
		if pattern == "" || path == "" || pattern[0] != '/' || path[0] != '/' {
			return nil, false
		}
		pseg, prest := cutSegment(pattern[1:])
		seg, rest := cutSegment(path[1:])
		if isVar(pseg) {
			if seg == "" {
				return nil, false
			}
			vals = append(vals, seg)
		} else if pseg != seg {
			return nil, false
		}
		pattern, path = prest, rest
	}
	return vals, true
}

// Vars returns the names of pattern's variables, in order.
func Vars(pattern string) []string {
	var out []string
	for _, seg := range strings.Split(pattern, "/") {
		if isVar(seg) {
			out = append(out, seg[1:len(seg)-1])
		}
	}
	return out
}

// Regexp returns an anchored regular expression (POSIX ERE and PCRE
// alike, for nginx) matching exactly the paths Match accepts for pattern.
func Regexp(pattern string) string {
	segs := strings.Split(pattern, "/")
	for i, seg := range segs {
		if isVar(seg) {
			segs[i] = "[^/]+"
		} else {
			segs[i] = regexpQuote(seg)
		}
	}
	return "^" + strings.Join(segs, "/") + "$"
}

// Wildcard returns the URL-map form of pattern: the literal part before
// its first variable followed by "*" ("/admin/users/{id}/limit" ->
// "/admin/users/*"). A Google Cloud URL map's path rules allow "*" only
// at the end, so the load balancer routes that whole subtree to the
// function, whose own router answers 404 for paths no pattern matches.
func Wildcard(pattern string) string {
	i := strings.Index(pattern, "{")
	if i < 0 {
		return pattern
	}
	return pattern[:i] + "*"
}

// Example returns pattern with every variable replaced by "1", a path the
// pattern matches (tests of the routers).
func Example(pattern string) string {
	segs := strings.Split(pattern, "/")
	for i, seg := range segs {
		if isVar(seg) {
			segs[i] = "1"
		}
	}
	return strings.Join(segs, "/")
}

func cutSegment(s string) (seg, rest string) {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i], s[i:]
	}
	return s, ""
}

func isVar(seg string) bool { return len(seg) > 2 && seg[0] == '{' && seg[len(seg)-1] == '}' }

func regexpQuote(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Target returns the functions-framework target name of function fn
// ("usage" -> "Usage"), the value of FUNCTION_TARGET when it runs alone.
func Target(fn string) string {
	if fn == "" {
		return ""
	}
	return string(fn[0]-'a'+'A') + fn[1:]
}
