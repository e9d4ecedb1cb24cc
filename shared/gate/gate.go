// Package gate is the metering gate: the one hot path every authenticated
// or metered request goes through, read top to bottom in this file.
//
// For a metered call (GET /usage today, POST /verify next) it
//
//  1. rejects a missing or malformed key before any I/O, then looks the
//     key up (a short-lived per-instance cache in front of Postgres);
//  2. takes the call's cost in units (1 without a cost) from the user's
//     quota in one Redis round trip (an atomic Lua script, never
//     read-then-write from Go); a denied call consumes nothing and is not
//     billed;
//  3. records the usage event durably in Postgres (group commit with the
//     instance's concurrent requests) before the handler runs, so before
//     the response; if that write fails the quota is given back and the
//     call is answered 503, so billed always equals admitted; a retried
//     request id is served again but neither billed nor counted;
//  4. hands the handler the principal and the metering (running total,
//     window state) in the request's context, with the rate-limit headers
//     already set.
//
// Admit is steps 2-3 without HTTP, for callers that answer in their own
// format (POST /verify, whose key travels in the body, authenticates
// with Authenticate and meters with Admit); Metered, Authenticated and
// IPLimited wrap handlers.
package gate

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/httpapi"
	"github.com/ratebill/platform/shared/ratelimit"
)

// KeyHeader carries the API key.
const KeyHeader = "X-API-Key"

// authenticator finds the principal owning a key; *auth.Authenticator.
type authenticator interface {
	Authenticate(ctx context.Context, key string) (shared.Principal, error)
	Cached(key string) (shared.Principal, bool)
}

// limiter decides and refunds quotas; *ratelimit.Limiter.
type limiter interface {
	AllowN(ctx context.Context, key string, limit ratelimit.Limit, n int64) (ratelimit.Result, error)
	Refund(ctx context.Context, key string, windowStart time.Time, n int64) error
}

// recorder records usage events durably; *meter.Recorder.
type recorder interface {
	Record(ctx context.Context, ev shared.UsageEvent) (shared.UsageResult, error)
}

// Options are the gate's policies.
type Options struct {
	// UserLimit is every user's quota (API_RATE_LIMIT per API_RATE_WINDOW).
	UserLimit ratelimit.Limit
	// SignupLimit is the sign-up quota per client IP.
	SignupLimit ratelimit.Limit
	// FailOpen serves requests unlimited (still recorded) when Redis
	// cannot decide (RATE_LIMIT_FAIL_OPEN); otherwise they get 503.
	FailOpen bool
	// ClientAddr locates the client's address (CLIENT_IP_HEADER,
	// TRUSTED_PROXY_HOPS).
	ClientAddr httpapi.ClientAddr
	// AuthFailLimit bounds the failed authentications per client address
	// that are looked up in Postgres (AUTH_FAIL_LIMIT per
	// AUTH_FAIL_WINDOW); zero Requests disables it. It applies where end
	// clients send X-API-Key themselves (Authenticated, Metered), never to
	// Authenticate, whose callers (POST /verify) are a customer's servers.
	AuthFailLimit ratelimit.Limit
}

// Gate authenticates, limits and meters requests.
type Gate struct {
	auth     authenticator
	limiter  limiter
	recorder recorder
	opts     Options
	denied   string // the 429 detail for the user limit, formatted once
}

// New returns a Gate over its three dependencies.
func New(a authenticator, l limiter, r recorder, o Options) *Gate {
	return &Gate{auth: a, limiter: l, recorder: r, opts: o,
		denied: fmt.Sprintf("rate limit of %d requests per %d s exceeded", o.UserLimit.Requests, int64(o.UserLimit.Window/time.Second))}
}

// UserLimit is the per-user quota the gate enforces.
func (g *Gate) UserLimit() ratelimit.Limit { return g.opts.UserLimit }

// Call is one metered call to admit.
type Call struct {
	// Endpoint labels the call in the ledger, e.g. "/usage" or the
	// customer's "GET /forecast".
	Endpoint string
	// RequestID makes the call idempotent per user: a call with an id
	// already recorded is served again but neither counted nor billed.
	RequestID string
	// Cost is the call's price in units; 0 means 1 (a call without a
	// cost). Negative costs are refused (EInvalid).
	Cost int64
}

// Metering is what the gate decided for one metered call.
type Metering struct {
	// Limited is false when the limit was not enforced (Redis down with
	// RATE_LIMIT_FAIL_OPEN); Limit is then zero.
	Limited bool
	// Limit is the quota decision; Limit.Allowed is false for a denial.
	Limit ratelimit.Result
	// Usage holds the user's running totals, this call included, and
	// whether its request id had been recorded before.
	Usage shared.UsageResult
	// Cost is the units this call took from the quota and added to the
	// bill: its cost when admitted and newly recorded, 0 when denied or
	// when its request id had been recorded before.
	Cost int64
}

// Admitted reports whether the call may be served.
func (m Metering) Admitted() bool { return !m.Limited || m.Limit.Allowed }

// Authenticate returns the principal owning key. A missing or malformed
// key is refused before any I/O. Errors are application errors:
// EUnauthorized, or EUnavailable when the key cannot be looked up.
func (g *Gate) Authenticate(ctx context.Context, key string) (shared.Principal, error) {
	if key == "" {
		return shared.Principal{}, shared.Errorf(shared.EUnauthorized, "missing API key: send it in the %s header", KeyHeader)
	}
	return g.auth.Authenticate(ctx, key)
}

// Admit takes c's cost from p's quota and, when admitted, records the
// call durably. A denial is not an error: it is a Metering whose Admitted
// is false, recording nothing. An error is EUnavailable (Redis could not
// decide and the gate fails closed, or the usage could not be recorded:
// its quota is then given back) or EInvalid for a negative cost.
func (g *Gate) Admit(ctx context.Context, p shared.Principal, c Call) (Metering, error) {
	var m Metering
	cost := c.Cost
	switch {
	case cost == 0:
		cost = 1
	case cost < 0:
		return m, shared.Errorf(shared.EInvalid, "cost must be at least 1 unit")
	}
	key := "user:" + strconv.FormatInt(p.UserID, 10)
	res, enforced, err := g.take(ctx, key, g.opts.UserLimit, cost)
	if err != nil {
		return m, err
	}
	m.Limited, m.Limit = enforced, res
	if !m.Admitted() {
		return m, nil
	}
	m.Usage, err = g.recorder.Record(ctx, shared.UsageEvent{UserID: p.UserID, RequestID: c.RequestID, Endpoint: c.Endpoint, Units: cost})
	if err != nil || m.Usage.Duplicate {
		// Not newly billed: give the quota back. A duplicate (a retry with
		// the same request id) is served, but costs nothing.
		if m.Limited {
			g.refund(ctx, key, m.Limit, cost)
			m.Limit.Used -= cost
			m.Limit.Remaining += cost
		}
		return m, err
	}
	m.Cost = cost
	return m, nil
}

// take takes n units from key's quota. When Redis cannot decide it
// returns the error, or, failing open, enforced false and no error.
func (g *Gate) take(ctx context.Context, key string, limit ratelimit.Limit, n int64) (res ratelimit.Result, enforced bool, err error) {
	res, err = g.limiter.AllowN(ctx, key, limit, n)
	if err == nil {
		return res, true, nil
	}
	if g.opts.FailOpen {
		httpapi.Logger(ctx).WarnContext(ctx, "limit not enforced: redis unavailable (RATE_LIMIT_FAIL_OPEN)", "key", key, "error", err.Error())
		return res, false, nil
	}
	return res, false, err
}

func (g *Gate) refund(ctx context.Context, key string, res ratelimit.Result, n int64) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := g.limiter.Refund(rctx, key, res.WindowStart, n); err != nil {
		httpapi.Logger(ctx).WarnContext(ctx, "quota refund failed", "error", err.Error())
	}
}

// authenticateClient is Authenticate for a request an end client sent
// with its key in X-API-Key, behind the failed-authentication limit: a
// cached key costs nothing; otherwise, once the client's address has
// failed AuthFailLimit times in the window, keys are refused with 429
// before any lookup, so a flood of well-formed unknown keys (anyone can
// compute a valid checksum) never reaches Postgres at its own rate.
// Each failure takes one from the address's allowance. Redis trouble
// skips the check: it protects Postgres, it bills nothing.
func (g *Gate) authenticateClient(w http.ResponseWriter, r *http.Request) (shared.Principal, error) {
	ctx := r.Context()
	key := r.Header.Get(KeyHeader)
	if key == "" || g.opts.AuthFailLimit.Requests == 0 {
		return g.Authenticate(ctx, key)
	}
	if p, ok := g.auth.Cached(key); ok {
		return p, nil
	}
	failKey := "authfail:" + httpapi.ClientIP(r, g.opts.ClientAddr)
	if st, err := g.limiter.AllowN(ctx, failKey, g.opts.AuthFailLimit, 0); err == nil && st.Remaining == 0 {
		st.Allowed, st.RetryAfter = false, st.ResetAfter
		SetRateLimitHeaders(w.Header(), "auth-failures", st)
		return shared.Principal{}, shared.Errorf(shared.ERateLimited, "too many failed authentications from this address; retry after %s s", w.Header().Get("Retry-After"))
	}
	p, err := g.Authenticate(ctx, key)
	if shared.ErrorCode(err) == shared.EUnauthorized {
		if _, lerr := g.limiter.AllowN(ctx, failKey, g.opts.AuthFailLimit, 1); lerr != nil {
			httpapi.Logger(ctx).DebugContext(ctx, "failed-authentication count not taken", "error", lerr.Error())
		}
	}
	return p, err
}

// Authenticated serves h only to callers with a valid API key.
func (g *Gate) Authenticated(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := g.authenticateClient(w, r)
		if err != nil {
			httpapi.Error(w, r, err)
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callKey, &call{principal: p})))
	})
}

// Metered is the hot path for a metered route labelled endpoint:
// authenticate, Admit with the request's id, set the rate-limit headers,
// then run h with the principal and the metering in the context. A denial
// is answered 429 with Retry-After, a dependency failure 503.
func (g *Gate) Metered(endpoint string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		p, err := g.authenticateClient(w, r)
		if err != nil {
			httpapi.Error(w, r, err)
			return
		}
		m, err := g.Admit(ctx, p, Call{Endpoint: endpoint, RequestID: httpapi.RequestID(ctx)})
		if m.Limited {
			SetRateLimitHeaders(w.Header(), "default", m.Limit)
		}
		switch {
		case err != nil:
			httpapi.Error(w, r, err)
		case !m.Admitted():
			httpapi.Error(w, r, shared.Errorf(shared.ERateLimited, "%s; retry after %s s", g.denied, w.Header().Get("Retry-After")))
		default:
			h.ServeHTTP(w, r.WithContext(context.WithValue(ctx, callKey, &call{principal: p, metering: m, metered: true})))
		}
	})
}

// IPLimited limits h per client IP (sign-ups) with Options.SignupLimit.
// It fails the same way as the user limit.
func (g *Gate) IPLimited(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, enforced, err := g.take(r.Context(), "ip:"+httpapi.ClientIP(r, g.opts.ClientAddr), g.opts.SignupLimit, 1)
		if enforced {
			SetRateLimitHeaders(w.Header(), "signup", res)
		}
		switch {
		case err != nil:
			httpapi.Error(w, r, err)
		case enforced && !res.Allowed:
			httpapi.Error(w, r, shared.Errorf(shared.ERateLimited, "too many sign-ups from this address; retry after %s s", w.Header().Get("Retry-After")))
		default:
			h.ServeHTTP(w, r)
		}
	})
}

type ctxKey struct{}

var callKey ctxKey

// call is what the gate puts in a request's context: one value.
type call struct {
	principal shared.Principal
	metering  Metering
	metered   bool
}

// PrincipalFrom returns the authenticated caller of the request.
func PrincipalFrom(ctx context.Context) (shared.Principal, bool) {
	c, ok := ctx.Value(callKey).(*call)
	if !ok {
		return shared.Principal{}, false
	}
	return c.principal, true
}

// MeteringFrom returns the metering of a metered request.
func MeteringFrom(ctx context.Context) (Metering, bool) {
	c, ok := ctx.Value(callKey).(*call)
	if !ok || !c.metered {
		return Metering{}, false
	}
	return c.metering, true
}
