package usage

import (
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/gate"
	"github.com/ratebill/platform/shared/httpapi"
)

// Headers of the /auth exchange. The proxy (nginx auth_request, Envoy
// ext_authz in HTTP mode) sends the original request's X-API-Key, method,
// URI and request id, and optionally the call's cost; the platform answers
// with the decision in headers the proxy passes on.
const (
	OriginalMethodHeader = "X-Original-Method"
	OriginalURIHeader    = "X-Original-Uri"
	CostHeader           = "X-Ratebill-Cost"
	// StatusHeader carries, on a 403, the status the client should see:
	// 400, 402, 403, 409 or 429 (nginx's auth_request passes only 2xx,
	// 401 and 403 on; the shipped configuration maps the rest).
	StatusHeader = "X-Ratebill-Status"
	// UserIDHeader names the admitted caller's user, for the upstream.
	UserIDHeader = "X-Ratebill-User-Id"
)

// authorizer serves /auth (any method, and every path below /auth/, since
// Envoy appends the original path): the same decision as POST /verify,
// answered in statuses a proxy understands. 200 admitted, with the
// rate-limit headers and X-Ratebill-User-Id; 401 for a missing, malformed,
// unknown, revoked or expired key; 403 for every other denial (a suspended user: 403), with the client's
// status in X-Ratebill-Status (429 with Retry-After when the cost does not
// fit, 409 for a request id replayed past the bound or sent with another
// cost, 400 for a bad cost or request id); 503 when a dependency is down
// (nginx turns it into a 500, which the shipped configuration answers as
// 503). /auth takes no release token: a proxy cannot hold one.
type authorizer struct {
	gate *gate.Gate
	addr httpapi.ClientAddr // where the proxy's own address is found
}

// RealIPHeader carries the end client's address from the proxy (nginx:
// proxy_set_header X-Real-IP $remote_addr). The failed-authentication
// limit of /auth counts per end client: keyed on it when it holds an IP
// address, else on the proxy's address.
const RealIPHeader = "X-Real-Ip"

func (a *authorizer) clientAddr(r *http.Request) string {
	if ip := net.ParseIP(strings.TrimSpace(r.Header.Get(RealIPHeader))); ip != nil {
		return ip.String()
	}
	return httpapi.ClientIP(r, a.addr)
}

func (a *authorizer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	call, err := authCall(r)
	if err != nil {
		deny(w, r, http.StatusBadRequest, err)
		return
	}
	resp, err := decide(r.Context(), a.gate, w.Header(), r.Header.Get(gate.KeyHeader), func() string { return a.clientAddr(r) }, call)
	switch shared.ErrorCode(err) {
	case "":
	case shared.ERequestIDConflict:
		deny(w, r, http.StatusConflict, err)
		return
	case shared.ERateLimited: // the failed-authentication limit
		deny(w, r, http.StatusTooManyRequests, err)
		return
	default:
		httpapi.Error(w, r, err)
		return
	}
	switch resp.Code {
	case CodeValid:
		w.Header().Set(UserIDHeader, strconv.FormatInt(resp.User.ID, 10))
		w.Header().Set(CostHeader, strconv.FormatInt(resp.Cost, 10))
		w.WriteHeader(http.StatusOK)
	case CodeMalformedKey, CodeNotFound, CodeRevoked, CodeExpired:
		msg := map[string]string{CodeMalformedKey: "malformed API key: check that it was copied whole",
			CodeNotFound: shared.ErrUnknownKey.Message, CodeRevoked: shared.ErrRevokedKey.Message, CodeExpired: shared.ErrExpiredKey.Message}[resp.Code]
		if r.Header.Get(gate.KeyHeader) == "" {
			msg = "missing API key: send it in the X-API-Key header"
		}
		httpapi.Error(w, r, shared.Errorf(shared.EUnauthorized, "%s", msg))
	case CodeSpendCapExceeded:
		deny(w, r, http.StatusPaymentRequired, shared.Errorf(shared.ESpendCapExceeded, "the call's cost of %d units would take the month over the spend cap", call.Cost))
	case CodeRateLimited:
		deny(w, r, http.StatusTooManyRequests, shared.Errorf(shared.ERateLimited, "the call's cost of %d units does not fit in the rate limit; retry after %s s", call.Cost, w.Header().Get("Retry-After")))
	case CodeSuspended:
		deny(w, r, http.StatusForbidden, shared.ErrSuspended)
	case CodeDuplicate:
		deny(w, r, http.StatusConflict, shared.Errorf(shared.ERequestIDReused, "request id was already answered %d times or long ago; send a new id for a new call", gate.MaxReplays))
	default:
		deny(w, r, http.StatusForbidden, shared.Errorf(shared.EInvalid, "denied: %s", resp.Code))
	}
}

// deny answers 403 with the client's status in StatusHeader and err's
// problem body (the status field says 403: the one the proxy sees).
func deny(w http.ResponseWriter, r *http.Request, clientStatus int, err error) {
	w.Header().Set(StatusHeader, strconv.Itoa(clientStatus))
	p := httpapi.NewProblem(err, r.URL.Path, httpapi.RequestID(r.Context()))
	p.Status, p.Title = http.StatusForbidden, http.StatusText(http.StatusForbidden)
	httpapi.WriteProblem(w, p)
}

// authCall reads the call from the proxy's headers: the cost (1 to
// MaxCost, default 1), the endpoint label "METHOD /path" of the original
// request (its query left out, at most MaxEndpointLength characters) and
// the request id (X-Request-Id, or the one the middleware assigned).
func authCall(r *http.Request) (gate.Call, error) {
	c := gate.Call{Cost: 1}
	if v := r.Header.Get(CostHeader); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || n > MaxCost {
			return c, &shared.Error{Code: shared.EInvalid, Message: "invalid " + CostHeader,
				Fields: []shared.FieldError{{Field: CostHeader, Detail: "must be an integer from 1 to " + strconv.Itoa(MaxCost)}}}
		}
		c.Cost = n
	}
	method := r.Header.Get(OriginalMethodHeader)
	if method == "" {
		method = r.Method
	}
	path := r.Header.Get(OriginalURIHeader)
	if path == "" {
		path = strings.TrimPrefix(r.URL.Path, "/auth") // Envoy: /auth/<original path>
	}
	if u, err := url.ParseRequestURI(path); err == nil {
		path = u.Path
	}
	c.Endpoint = label(method + " " + path)
	c.RequestID = r.Header.Get(httpapi.RequestIDHeader)
	if c.RequestID == "" {
		c.RequestID = httpapi.RequestID(r.Context())
	}
	if !httpapi.ValidRequestID(c.RequestID) {
		return c, shared.Errorf(shared.EInvalidRequestID, "X-Request-Id must be 8 to 128 characters of A-Z a-z 0-9 . _ : -")
	}
	return c, nil
}

// label makes s a valid endpoint label: printable characters only (others
// become '?'), at most MaxEndpointLength of them.
func label(s string) string {
	var b strings.Builder
	n := 0
	for _, c := range s {
		if n == MaxEndpointLength {
			break
		}
		if c == utf8.RuneError || !validEndpoint(string(c)) {
			c = '?'
		}
		b.WriteRune(c)
		n++
	}
	return b.String()
}
