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
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/httpapi"
	"github.com/ratebill/platform/shared/pricing"
	"github.com/ratebill/platform/shared/ratelimit"
	"github.com/ratebill/platform/shared/telemetry"
)

// KeyHeader carries the API key.
const KeyHeader = "X-API-Key"

// authenticator finds the principal owning a key; *auth.Authenticator.
type authenticator interface {
	Authenticate(ctx context.Context, key string) (shared.Principal, error)
	Cached(key string) (shared.Principal, bool)
	// Revalidate drops the key's cached principal and looks it up again.
	Revalidate(ctx context.Context, digest [32]byte) (shared.Principal, error)
}

// limiter decides and refunds quotas; *ratelimit.Limiter. A user's
// limits (AllowUserLimits, all of them in one script call) also report
// the user's published version.
type limiter interface {
	AllowN(ctx context.Context, key string, limit ratelimit.Limit, n int64) (ratelimit.Result, error)
	AllowUserLimits(ctx context.Context, user int64, limits []ratelimit.Limit, n int64) (ratelimit.Decision, error)
	RefundUserLimits(ctx context.Context, user int64, d ratelimit.Decision, n int64) error
	RefundUserLimitsAt(ctx context.Context, user int64, limits []ratelimit.Limit, at time.Time, n int64) error
}

// recorder records usage events durably; *meter.Recorder.
type recorder interface {
	Record(ctx context.Context, ev shared.UsageEvent) (shared.UsageResult, error)
}

// denials counts rate-limit denials per user, written in batches;
// *meter.Denials.
type denials interface {
	Note(user int64)
	MaybeFlush()
}

// releaser releases a recorded call by its token's digest; *postgres.Store.
type releaser interface {
	Release(ctx context.Context, digest []byte, window time.Duration) (shared.Release, error)
}

// Retries and releases.
const (
	// MaxReplays is how many times a recorded request id is answered
	// again with the first decision, at no cost. A replay beyond it is
	// refused (ERequestIDReused): a replayed id never buys unbounded
	// service.
	MaxReplays = 3
	// ReplayWindow is how long after its first record a request id is
	// replayed; later it is refused too. Ids stay unique per user for
	// good (the ledger's key), so a reused id is never billed twice.
	ReplayWindow = 24 * time.Hour
	// ReleaseWindow is how long after its admission a call can be released
	// by the holder of its release token.
	ReleaseWindow = 15 * time.Minute
)

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
	// DefaultPlan is the default plan (from API_RATE_LIMIT,
	// API_RATE_WINDOW, BILLING_UNIT_PRICE): its price converts the spend
	// cap of a user on it into units.
	DefaultPlan pricing.Plan
}

// Gate authenticates, limits and meters requests.
type Gate struct {
	releaser releaser // nil: calls cannot be released
	denials  denials  // nil: denials are not counted
	auth     authenticator
	limiter  limiter
	recorder recorder
	tel      *telemetry.Telemetry // nil: off
	opts     Options
	denied   string // the 429 detail for the user limit, formatted once
	// defaultLimits is LimitsFor of a user on the default plan without an
	// override, built once (length = capacity: an append copies).
	defaultLimits []ratelimit.Limit

	capMu    sync.Mutex
	capUnits map[capKey]int64 // spend caps converted into units
}

// capKey is one conversion of a spend cap: the plan definition (the
// principal's, nil for the default plan) and the amount.
type capKey struct {
	plan *pricing.Plan
	cap  string
}

// New returns a Gate over its three dependencies.
func New(a authenticator, l limiter, r recorder, o Options) *Gate {
	return &Gate{auth: a, limiter: l, recorder: r, opts: o, defaultLimits: []ratelimit.Limit{o.UserLimit},
		denied: fmt.Sprintf("rate limit of %d requests per %d s exceeded", o.UserLimit.Requests, int64(o.UserLimit.Window/time.Second))}
}

// WithReleaser lets the gate release calls (Release) through r and
// returns g.
func (g *Gate) WithReleaser(r releaser) *Gate {
	g.releaser = r
	return g
}

// WithTelemetry counts the gate's decisions and traces its Redis decision
// and Postgres write as children of the request's span through t, and
// returns g.
func (g *Gate) WithTelemetry(t *telemetry.Telemetry) *Gate {
	g.tel = t
	return g
}

// WithDenials counts the calls the user limit refuses through d (the
// history's denied column) and returns g.
func (g *Gate) WithDenials(d denials) *Gate {
	g.denials = d
	return g
}

// ReplayedHeader is "true" on the answer to a replayed request id.
const ReplayedHeader = "Idempotent-Replayed"

// UserLimit is the default per-user quota the gate enforces.
func (g *Gate) UserLimit() ratelimit.Limit { return g.opts.UserLimit }

// LimitFor is p's first limit (LimitsFor), the one GET /me shows.
func (g *Gate) LimitFor(p shared.Principal) ratelimit.Limit {
	return g.LimitsFor(p)[0]
}

// LimitsFor is p's limits, every one decided on each call: the limits of
// the user's plan (the default plan: API_RATE_LIMIT per API_RATE_WINDOW,
// one fixed limit named "default"), with the operator's override (units
// per window) in place of the plan's limit named "default", or of all
// the plan's limits when it has none of that name: an override always
// wins over the plan.
func (g *Gate) LimitsFor(p shared.Principal) []ratelimit.Limit {
	override := p.LimitUnits > 0 && p.LimitWindow >= time.Second
	if p.PlanDef == nil || len(p.PlanDef.Limits) == 0 {
		if override {
			return []ratelimit.Limit{{Requests: p.LimitUnits, Window: p.LimitWindow}}
		}
		return g.defaultLimits[:1:1]
	}
	out := make([]ratelimit.Limit, 0, len(p.PlanDef.Limits)+1)
	replaced := false
	for _, pl := range p.PlanDef.Limits {
		l := ratelimit.Limit{Name: pl.Name, Requests: pl.Units, Window: time.Duration(pl.WindowSeconds) * time.Second}
		if pl.Algorithm == pricing.Sliding {
			l.Algorithm = ratelimit.Sliding
		}
		if override && l.PolicyName() == "default" {
			l.Requests, l.Window, replaced = p.LimitUnits, p.LimitWindow, true
		}
		out = append(out, l)
	}
	if override && !replaced {
		return []ratelimit.Limit{{Requests: p.LimitUnits, Window: p.LimitWindow}}
	}
	return out
}

// CapLimitName names the limit a spend cap becomes.
const CapLimitName = "spend-cap"

// planOf is p's plan definition.
func (g *Gate) planOf(p shared.Principal) pricing.Plan {
	if p.PlanDef != nil {
		return *p.PlanDef
	}
	return g.opts.DefaultPlan
}

// capLimit is p's spend cap as a limit: the units the cap buys in a
// calendar month under p's plan (pricing.Plan.UnitsWithin), converted
// once per plan definition and amount.
func (g *Gate) capLimit(p shared.Principal) ratelimit.Limit {
	k := capKey{plan: p.PlanDef, cap: p.SpendCap.String()}
	g.capMu.Lock()
	units, ok := g.capUnits[k]
	g.capMu.Unlock()
	if !ok {
		units = g.planOf(p).UnitsWithin(*p.SpendCap)
		g.capMu.Lock()
		if g.capUnits == nil || len(g.capUnits) >= 4096 { // principals come and go: start again
			g.capUnits = map[capKey]int64{}
		}
		g.capUnits[k] = units
		g.capMu.Unlock()
	}
	return ratelimit.Limit{Name: CapLimitName, Requests: units, Algorithm: ratelimit.Period}
}

// Budget is what remains of a spend cap in the current month.
type Budget struct {
	// Period is the month, "YYYY-MM" (UTC).
	Period string
	// Cap is the cap; Spent is the month's invoice total for its units so
	// far, by the user's current plan (fee included); Remaining is Cap -
	// Spent, never negative.
	Cap, Spent, Remaining decimal.Decimal
	// Units is the cap in units (what it buys in a month under the
	// plan), UsedUnits the month's units, RemainingUnits the difference.
	Units, UsedUnits, RemainingUnits int64
	// ResetsAt is the start of the next month.
	ResetsAt time.Time
}

// budget describes the spend-cap limit's decision r for p.
func (g *Gate) budget(p shared.Principal, r ratelimit.Result) *Budget {
	spent := g.planOf(p).Compute(r.Used).Total
	return &Budget{
		Period: r.WindowStart.Format("2006-01"), Cap: *p.SpendCap, Spent: spent,
		Remaining: decimal.Max(p.SpendCap.Sub(spent), decimal.Zero),
		Units:     r.Limit.Requests, UsedUnits: r.Used, RemainingUnits: r.Remaining, ResetsAt: r.ResetAt(),
	}
}

// CapError is the 402 of a call refused by the spend cap b.
func CapError(b *Budget) error {
	return shared.Errorf(shared.ESpendCapExceeded, "this call would take %s over its spend cap of %s (%s spent, %d of %d units left); nothing was recorded or billed",
		b.Period, b.Cap.StringFixed(2), b.Spent.StringFixed(2), b.RemainingUnits, b.Units)
}

// deniedDetail is the 429 detail for a user's limit.
func (g *Gate) deniedDetail(l ratelimit.Limit) string {
	if l == g.opts.UserLimit {
		return g.denied
	}
	if l.Name != "" && l.Name != "default" {
		return fmt.Sprintf("rate limit %q of %d requests per %d s exceeded", l.Name, l.Requests, int64(l.Window/time.Second))
	}
	return fmt.Sprintf("rate limit of %d requests per %d s exceeded", l.Requests, int64(l.Window/time.Second))
}

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
	// Releasable asks for a release token when the call is admitted
	// (POST /verify): its holder can release the call within
	// ReleaseWindow, giving its quota back and taking it off the bill.
	Releasable bool
}

// Metering is what the gate decided for one metered call.
type Metering struct {
	// Limited is false when the limit was not enforced (Redis down with
	// RATE_LIMIT_FAIL_OPEN); Limit is then zero.
	Limited bool
	// Limit is the quota decision of the limit closest to running out (the
	// one that denied, for a denial: DESIGN.md's "several limits"
	// convention); Limit.Allowed is false for a denial.
	Limit ratelimit.Result
	// Limits is the decision of every limit of the user, in the plan's
	// order (one for the default plan).
	Limits []ratelimit.Result
	// decision is what a refund gives back to.
	decision ratelimit.Decision
	// Budget is the user's spend cap in the current month; nil without a
	// cap (or when Redis did not decide).
	Budget *Budget
	// CapExceeded reports a call refused because its cost would take the
	// month over the spend cap (answered 402, whatever the rate limits
	// said: retrying does not help).
	CapExceeded bool
	// Usage holds the user's running totals, this call included, and
	// whether its request id had been recorded before.
	Usage shared.UsageResult
	// Cost is the units this call took from the quota and added to the
	// bill: its cost when admitted and newly recorded, 0 when denied or
	// when its request id had been recorded before.
	Cost int64
	// Replayed reports a request id recorded before, answered again with
	// the first decision at no cost (at most MaxReplays times, within
	// ReplayWindow); Usage.Released says whether that call was released.
	Replayed bool
	// ReleaseToken releases this call (Release); set only when the call
	// asked for one and was newly recorded. It is shown once: only its
	// SHA-256 is stored.
	ReleaseToken string
}

// Admitted reports whether the call may be served.
func (m Metering) Admitted() bool { return !m.CapExceeded && (!m.Limited || m.Limit.Allowed) }

// Authenticate returns the principal owning key. A missing or malformed
// key is refused before any I/O. Errors are application errors:
// EUnauthorized (missing, malformed, unknown, revoked or expired: the
// last two are shared.ErrRevokedKey and shared.ErrExpiredKey),
// shared.ErrSuspended with the principal (a suspended user's key), or
// EUnavailable when the key cannot be looked up.
func (g *Gate) Authenticate(ctx context.Context, key string) (shared.Principal, error) {
	if key == "" {
		return shared.Principal{}, shared.Errorf(shared.EUnauthorized, "missing API key: send it in the %s header", KeyHeader)
	}
	p, err := g.auth.Authenticate(ctx, key)
	return g.judge(ctx, p, err)
}

// judge refuses a suspended user's principal. A suspension in the cache
// may have been lifted since: the user's version in Redis says whether
// to look again.
func (g *Gate) judge(ctx context.Context, p shared.Principal, err error) (shared.Principal, error) {
	if err != nil || !p.Suspended {
		return p, err
	}
	if p, err = g.checkVersion(ctx, p); err != nil {
		return p, err
	}
	return admissible(p, nil)
}

// admissible refuses a suspended user's principal (returned with
// ErrSuspended, so that POST /verify can name the user).
func admissible(p shared.Principal, err error) (shared.Principal, error) {
	if err == nil && p.Suspended {
		return p, shared.ErrSuspended
	}
	return p, err
}

// revalidate is called when the user's version in Redis (ver, read with
// the decision) is newer than the cached principal's: something that
// cached principals must see changed (a revocation, an expiry, a
// suspension, a limit). The cached entry is dropped and the key looked up
// again; the result is judged as Authenticate judges it.
func (g *Gate) revalidate(ctx context.Context, p shared.Principal, ver int64) (shared.Principal, error) {
	if ver <= p.Version {
		return p, nil
	}
	return admissible(g.auth.Revalidate(ctx, p.KeyDigest))
}

// checkVersion is the version check of a route that authenticates but
// takes no quota (/me, /billing, /keys): a read of the user's quota
// (cost 0) reports the user's version, and a newer one revalidates p.
// When Redis cannot answer, the cached principal stands (AUTH_CACHE_TTL
// bounds it).
func (g *Gate) checkVersion(ctx context.Context, p shared.Principal) (shared.Principal, error) {
	d, err := g.limiter.AllowUserLimits(ctx, p.UserID, g.LimitsFor(p), 0)
	if err != nil {
		g.tel.DependencyError(ctx, telemetry.Redis)
		return p, nil
	}
	return g.revalidate(ctx, p, d.Version)
}

// Window reads p's current window without taking anything from it (a
// decision of cost 0): for dashboards, which look without being metered.
// An error is EUnavailable (Redis cannot answer).
func (g *Gate) Window(ctx context.Context, p shared.Principal) (ratelimit.Result, error) {
	d, err := g.limiter.AllowUserLimits(ctx, p.UserID, g.LimitsFor(p), 0)
	if err != nil {
		return ratelimit.Result{}, err
	}
	return d.Headline(), nil
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
	limits := g.LimitsFor(p)
	capped := p.SpendCap != nil
	if capped {
		limits = append(limits, g.capLimit(p))
	}
	dctx, span := g.tel.Start(ctx, telemetry.SpanDecision)
	d, err := g.limiter.AllowUserLimits(dctx, p.UserID, limits, cost)
	telemetry.EndSpan(span, err)
	g.decided(ctx, telemetry.LimitUser, d.Allowed, err)
	// Fail-open never applies to a user with a spend cap.
	if err != nil && (capped || !g.failOpen(ctx, "user:"+strconv.FormatInt(p.UserID, 10), err)) {
		return m, err
	}
	rate := d
	var capRes ratelimit.Result
	if capped && err == nil {
		// The cap is no rate limit: it leaves the headers and the window
		// to the rate limits, and is reported as the budget.
		n := len(d.Results) - 1
		c := d.Results[n]
		capRes = c
		rate.Results = append([]ratelimit.Result(nil), d.Results[:n]...)
		m.Budget = g.budget(p, c)
		if !d.Allowed && c.RetryAfter > 0 {
			m.CapExceeded = true
			fits := true
			for _, r := range rate.Results {
				fits = fits && r.RetryAfter == 0
			}
			if fits { // the rate limits would have admitted it
				rate.Allowed = true
				for i := range rate.Results {
					rate.Results[i].Allowed = true
				}
			}
		}
	}
	res := rate.Headline()
	m.Limited, m.Limit, m.Limits, m.decision = err == nil, res, rate.Results, d
	if g.denials != nil {
		if m.Limited && !d.Allowed {
			g.denials.Note(p.UserID)
		} else {
			g.denials.MaybeFlush()
		}
	}
	if m.Limited && res.Version > p.Version {
		// The user changed since p was looked up (cached): look again.
		// Refused now (revoked, expired, suspended, or the lookup
		// failed): the decision is given back and the call denied. A new
		// limit applies from the user's next call.
		if _, err := g.revalidate(ctx, p, res.Version); err != nil {
			if res.Allowed {
				g.refund(ctx, p.UserID, d, cost)
			}
			return Metering{}, err
		}
	}
	if !m.Admitted() {
		return m, nil
	}
	ev := shared.UsageEvent{UserID: p.UserID, RequestID: c.RequestID, Endpoint: c.Endpoint, Units: cost}
	if c.Releasable {
		m.ReleaseToken, ev.ReleaseHash = newReleaseToken()
	}
	rctx, span := g.tel.Start(ctx, telemetry.SpanRecord)
	m.Usage, err = g.recorder.Record(rctx, ev)
	telemetry.EndSpan(span, err)
	if err != nil || m.Usage.Duplicate {
		// Not newly billed: give the quota back.
		if m.Limited {
			g.refund(ctx, p.UserID, d, cost)
			m.Limit.Used -= cost
			m.Limit.Remaining += cost
			for i := range m.Limits {
				m.Limits[i].Used -= cost
				m.Limits[i].Remaining += cost
			}
			if m.Budget != nil {
				capRes.Used -= cost
				capRes.Remaining += cost
				m.Budget = g.budget(p, capRes)
			}
		}
		m.ReleaseToken = ""
		if err != nil {
			return m, err
		}
		return m, replay(m.Usage, cost, &m)
	}
	m.Cost = cost
	return m, nil
}

// replay judges a request id that was recorded before: the same cost,
// within MaxReplays and ReplayWindow, is a replay of the first decision at
// no cost; another cost is ERequestIDConflict; anything else is
// ERequestIDReused.
func replay(u shared.UsageResult, cost int64, m *Metering) error {
	switch {
	case u.FirstUnits != cost:
		return shared.Errorf(shared.ERequestIDConflict, "request id was recorded with a cost of %d units; a retry must send the same cost, a new call a new id", u.FirstUnits)
	case u.Replays > MaxReplays || u.Age > ReplayWindow:
		return shared.Errorf(shared.ERequestIDReused, "request id was already answered %d times or more than %v ago; send a new id for a new call", MaxReplays, ReplayWindow)
	}
	m.Replayed = true
	return nil
}

// Release releases the call admitted with token: once, within
// ReleaseWindow, its record is marked released and taken off the totals
// and the bill, and its units go back to the user's quota when its window
// is still the current one. Errors: ENotFound for an unknown token,
// EConflict when it was released already or the window has passed.
func (g *Gate) Release(ctx context.Context, token string) (shared.Release, error) {
	if g.releaser == nil || !validReleaseToken(token) {
		return shared.Release{}, shared.Errorf(shared.ENotFound, "unknown release token")
	}
	digest := sha256.Sum256([]byte(token))
	r, err := g.releaser.Release(ctx, digest[:], ReleaseWindow)
	if shared.ErrorCode(err) == shared.ENotFound {
		return r, shared.Errorf(shared.ENotFound, "unknown release token")
	}
	if err != nil {
		return r, err
	}
	// The units go back to the default limit's window (fixed windows are
	// aligned to the Unix epoch: the call's window started at the
	// multiple of the window before it), ignored when that window is
	// over. The token names no principal: a plan's other limits keep the
	// released units until their windows move on (never under-counted).
	if g.opts.UserLimit.Window >= time.Second {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		if err := g.limiter.RefundUserLimitsAt(rctx, r.UserID, []ratelimit.Limit{g.opts.UserLimit}, r.RecordedAt, r.Units); err != nil {
			httpapi.Logger(ctx).WarnContext(ctx, "quota refund failed", "error", err.Error())
		}
	}
	return r, nil
}

// ReleaseTokenPrefix starts every release token.
const ReleaseTokenPrefix = "rt_"

// newReleaseToken returns a token of 256 random bits and its SHA-256.
func newReleaseToken() (string, []byte) {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	t := ReleaseTokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	d := sha256.Sum256([]byte(t))
	return t, d[:]
}

func validReleaseToken(t string) bool {
	if len(t) != len(ReleaseTokenPrefix)+43 || t[:len(ReleaseTokenPrefix)] != ReleaseTokenPrefix {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(t[len(ReleaseTokenPrefix):])
	return err == nil
}

// failOpen judges err, the failure of a decision on key's quota: it
// reports whether the request is served unlimited anyway
// (RATE_LIMIT_FAIL_OPEN, logged); otherwise the error stands.
func (g *Gate) failOpen(ctx context.Context, key string, err error) bool {
	if g.opts.FailOpen {
		httpapi.Logger(ctx).WarnContext(ctx, "limit not enforced: redis unavailable (RATE_LIMIT_FAIL_OPEN)", "key", key, "error", err.Error())
	}
	return g.opts.FailOpen
}

// decided counts a decision on a quota of kind l: allowed, denied, or an
// error (Redis could not decide; also a Redis error).
func (g *Gate) decided(ctx context.Context, l telemetry.Limit, allowed bool, err error) {
	switch {
	case err != nil:
		g.tel.Decision(ctx, l, telemetry.Error)
		g.tel.DependencyError(ctx, telemetry.Redis)
	case allowed:
		g.tel.Decision(ctx, l, telemetry.Allowed)
	default:
		g.tel.Decision(ctx, l, telemetry.Denied)
	}
}

func (g *Gate) refund(ctx context.Context, user int64, d ratelimit.Decision, n int64) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := g.limiter.RefundUserLimits(rctx, user, d, n); err != nil {
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
	return g.AuthenticateFrom(r.Context(), w.Header(), r.Header.Get(KeyHeader), func() string { return httpapi.ClientIP(r, g.opts.ClientAddr) })
}

// AuthenticateFrom is Authenticate for a key an end client at the address
// addr returns (asked only when the key is not cached) sent, behind the failed-authentication limit (see
// authenticateClient); /auth passes the original client's address the
// proxy forwards. A refusal by the limit sets the rate-limit headers and
// Retry-After on h and is ERateLimited.
func (g *Gate) AuthenticateFrom(ctx context.Context, h http.Header, key string, addr func() string) (shared.Principal, error) {
	if key == "" || g.opts.AuthFailLimit.Requests == 0 {
		return g.Authenticate(ctx, key)
	}
	if p, ok := g.auth.Cached(key); ok {
		return g.judge(ctx, p, nil)
	}
	failKey := "authfail:" + addr() // only when a lookup may follow: not on the cached hot path
	if st, err := g.limiter.AllowN(ctx, failKey, g.opts.AuthFailLimit, 0); err == nil && st.Remaining == 0 {
		st.Allowed, st.RetryAfter = false, st.ResetAfter
		SetRateLimitHeaders(h, "auth-failures", st)
		return shared.Principal{}, shared.Errorf(shared.ERateLimited, "too many failed authentications from this address; retry after %s s", h.Get("Retry-After"))
	}
	p, err := g.Authenticate(ctx, key)
	if shared.ErrorCode(err) == shared.EUnauthorized {
		if _, lerr := g.limiter.AllowN(ctx, failKey, g.opts.AuthFailLimit, 1); lerr != nil {
			httpapi.Logger(ctx).DebugContext(ctx, "failed-authentication count not taken", "error", lerr.Error())
		}
	}
	return p, err
}

// Authenticated serves h only to callers with a valid API key whose user
// is not suspended. It takes no quota, but reads the user's version from
// Redis (one round trip) so that a revocation or suspension reaches these
// routes as fast as metered ones.
func (g *Gate) Authenticated(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := g.authenticateClient(w, r)
		if err == nil {
			p, err = g.checkVersion(r.Context(), p)
		}
		if g.denials != nil {
			g.denials.MaybeFlush()
		}
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
		if r.ContentLength != 0 {
			// A metered GET has no body. One that is still arriving (a
			// slow client) would be billed for an answer it cannot read
			// yet: refuse it before any I/O.
			httpapi.Error(w, r, shared.Errorf(shared.EMalformed, "%s %s takes no request body", r.Method, r.URL.Path))
			return
		}
		if httpapi.MalformedRequestID(ctx) {
			// The id is the idempotency key: never billed under a stand-in.
			httpapi.Error(w, r, httpapi.ErrMalformedRequestID)
			return
		}
		p, err := g.authenticateClient(w, r)
		if err != nil {
			httpapi.Error(w, r, err)
			return
		}
		m, err := g.Admit(ctx, p, Call{Endpoint: endpoint, RequestID: httpapi.RequestID(ctx)})
		if m.Limited {
			SetMeteringHeaders(w.Header(), m)
		}
		switch {
		case err != nil:
			httpapi.Error(w, r, err)
		case m.CapExceeded:
			httpapi.Error(w, r, CapError(m.Budget))
		case !m.Admitted():
			httpapi.Error(w, r, shared.Errorf(shared.ERateLimited, "%s; retry after %s s", g.deniedDetail(m.Limit.Limit), w.Header().Get("Retry-After")))
		default:
			if m.Replayed {
				w.Header()[ReplayedHeader] = []string{"true"}
			}
			h.ServeHTTP(w, r.WithContext(context.WithValue(ctx, callKey, &call{principal: p, metering: m, metered: true})))
		}
	})
}

// IPLimited limits h per client IP (sign-ups) with Options.SignupLimit.
// It fails the same way as the user limit.
func (g *Gate) IPLimited(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := "ip:" + httpapi.ClientIP(r, g.opts.ClientAddr)
		res, err := g.limiter.AllowN(r.Context(), key, g.opts.SignupLimit, 1)
		g.decided(r.Context(), telemetry.LimitSignup, res.Allowed, err)
		enforced := err == nil
		if err != nil && g.failOpen(r.Context(), key, err) {
			err = nil
		}
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
