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
// match them exactly, never as prefixes.
//
// The row is also how the function wires the route (package serve): the
// gate's authentication, metering (labelled with Path) or per-IP limit
// come from here, never from the handler's code.
type Route struct {
	Method   string // HTTP method, e.g. "GET"
	Path     string // exact path, e.g. "/usage"
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
	{Method: "GET", Path: "/usage", Function: Usage, Auth: AuthKey, Metered: true, Root: true},
	{Method: "POST", Path: "/verify", Function: Usage, Auth: AuthSelf},
	{Method: "POST", Path: "/verify/release", Function: Usage, Auth: AuthSelf},
	{Method: AnyMethod, Path: "/auth", Function: Usage, Auth: AuthSelf, Prefix: true},
	{Method: "GET", Path: "/billing", Function: Billing, Auth: AuthKey, Root: true},
	{Method: "GET", Path: "/health", Function: Health, Auth: AuthNone, Root: true},
	{Method: "GET", Path: "/docs", Function: Health, Auth: AuthNone},
	{Method: "GET", Path: "/openapi.json", Function: Health, Auth: AuthNone},
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
// routed at all: exactly, or below a Prefix route. The method is not
// considered: a gateway forwards every method of a routed path and the
// function answers 405 itself.
func FunctionFor(path string) (string, bool) {
	for _, r := range Table {
		if r.Path == path {
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

// Target returns the functions-framework target name of function fn
// ("usage" -> "Usage"), the value of FUNCTION_TARGET when it runs alone.
func Target(fn string) string {
	if fn == "" {
		return ""
	}
	return string(fn[0]-'a'+'A') + fn[1:]
}
