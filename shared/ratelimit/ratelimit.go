// Package ratelimit enforces "N units per window" per key in Redis,
// atomically across every replica: one Lua script per decision (EVALSHA,
// falling back to EVAL once after a script flush), never read-then-write
// from Go.
//
// Windows are fixed and aligned to the Unix epoch, so with the default
// 86400 s window every user's quota resets at 00:00 UTC and the window's
// used and remaining counts are exact. A denied request consumes nothing.
//
// Quotas count units: a request without a cost takes 1 (Allow), a request
// with a cost takes that many (AllowN), atomically, and is admitted only
// when its whole cost fits; with mixed costs the units admitted in a
// window never exceed the limit, and a request is refused only when its
// cost does not fit.
//
// A user's own quota (AllowUser) also carries the user's version: a
// number that grows with every change a cached principal must see
// (revocation, suspension, a new limit). PublishVersion raises it after
// the change commits, and every decision on the user's quota reads it in
// the same script call, so an instance learns of the change on the
// round trip it makes anyway, without background work. A user's counter
// and version are tagged {user:ID} so that they share a cluster slot.
//
// With a ledger (WithLedger), a user's window that Redis lost with its
// data is rebuilt from the durable record before it is decided on (see
// rebuild.go): a window then admits at most its limit plus the units in
// flight at the loss.
package ratelimit

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/group"
)

//go:embed window.lua
var windowLua string

//go:embed refund.lua
var refundLua string

//go:embed publish.lua
var publishLua string

var (
	windowScript  = redis.NewScript(windowLua)
	refundScript  = redis.NewScript(refundLua)
	publishScript = redis.NewScript(publishLua)
)

// keyPrefix versions the counters' layout.
const keyPrefix = "rl:v1:"

// A user's keys: the counter of the user's quota and the user's hash
// (version), both tagged with {user:ID} so that they share a hash slot
// and one script may touch both on a cluster or a ring.
func userCounter(user int64) string {
	return keyPrefix + "{user:" + strconv.FormatInt(user, 10) + "}"
}

func userHash(user int64) string {
	return "rl:u:{user:" + strconv.FormatInt(user, 10) + "}"
}

// Limit is a quota: Requests units per Window.
type Limit struct {
	// Requests is the units admitted per window (a request without a
	// cost is 1 unit); at least 1.
	Requests int64
	Window   time.Duration // window length; whole seconds, at least 1 s
	// Name names the limit among a plan's several (AllowUserLimits) and
	// in the RateLimit-Policy header; "" is "default".
	Name string
	// Algorithm is Fixed (the zero value) or Sliding.
	Algorithm Algorithm
}

// Algorithm is how a limit counts its window.
type Algorithm uint8

const (
	// Fixed counts windows aligned to the Unix epoch: exact counts, but a
	// client may take the limit at the end of one window and again at the
	// start of the next (twice the limit within a few seconds).
	Fixed Algorithm = iota
	// Sliding counts the units taken in the last Window (in buckets of
	// Window/60, at least 1 ms, see multi.lua): no interval of length
	// Window ever holds more than Requests units.
	Sliding
	// Period counts the calendar month (UTC, Redis's clock); Window is
	// ignored and Requests may be 0 (nothing admitted). It enforces a
	// spend cap converted into units: the counter is seeded from the
	// ledger (the month's units so far) before its first decision.
	Period
)

// String renders the limit as "1000/86400s" (fixed) or "10/60s sliding".
func (l Limit) String() string {
	s := fmt.Sprintf("%d/%ds", l.Requests, int64(l.Window/time.Second))
	if l.Algorithm == Sliding {
		s += " sliding"
	}
	return s
}

// PolicyName is the limit's name, "default" when it has none.
func (l Limit) PolicyName() string {
	if l.Name == "" {
		return "default"
	}
	return l.Name
}

// Result is one decision.
type Result struct {
	Limit   Limit
	Allowed bool
	// Used is the units admitted in the current window, this request's
	// included when Allowed.
	Used int64
	// Remaining is Limit.Requests - Used, never negative.
	Remaining int64
	// WindowStart is the start of the current window (Redis clock, UTC).
	// For a Sliding limit it is ResetAt minus the window: the window
	// that ends when the oldest counted units come back.
	WindowStart time.Time
	// ResetAfter is the time until the window ends and the quota refills.
	ResetAfter time.Duration
	// RetryAfter is zero when Allowed; otherwise the time until the
	// request's cost can fit again (the reset).
	RetryAfter time.Duration
	// Version is the user's version as published in Redis
	// (PublishVersion), read in the same script as the decision; 0 when
	// none was published (or Redis lost it) and for quotas that are not a
	// user's (AllowN).
	Version int64
	// stamp is where a decision of AllowUserLimits took its units (the
	// window start in seconds, or the sliding bucket), for a refund.
	stamp int64
}

// ResetAt is the end of the current window.
func (r Result) ResetAt() time.Time { return r.WindowStart.Add(r.Limit.Window) }

// scripter lists the Redis methods the limiter calls; *redis.Client,
// *redis.ClusterClient and *redis.Ring all satisfy it.
type scripter interface {
	Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd
	EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd
	EvalRO(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd
	EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd
	ScriptExists(ctx context.Context, hashes ...string) *redis.BoolSliceCmd
	ScriptLoad(ctx context.Context, script string) *redis.StringCmd
}

// Limiter decides rate limits against one Redis.
type Limiter struct {
	rdb   scripter
	batch *group.Batcher[*decision] // nil when rdb cannot pipeline
	// ledger rebuilds a user's window after Redis lost its data; nil:
	// no rebuild (a lost window starts again from zero).
	ledger   Ledger
	flight   singleflight.Group // one rebuild per user and window at a time
	rebuilds atomic.Int64
}

// New returns a Limiter using rdb.
// When rdb can pipeline (go-redis clients can), concurrent Allow and
// AllowN calls share round trips (see batch.go).
func New(rdb scripter) *Limiter {
	l := &Limiter{rdb: rdb}
	if p, ok := rdb.(pipeliner); ok {
		l.batch = group.New(maxBatch, maxInFlight, func(batch []*decision) { l.decide(p, batch) })
	}
	return l
}

// unavailable is the limiter's error for a decision Redis did not make:
// the application's EUnavailable naming Redis, with the cause for the log.
func unavailable(op string, err error) error {
	if errors.Is(err, redis.ErrClosed) {
		return shared.ErrShuttingDown
	}
	return shared.Unavailable("redis", fmt.Errorf("%s: %w", op, err))
}

// ErrInvalidLimit reports a Limit that cannot be enforced, or a negative
// cost.
var ErrInvalidLimit = errors.New("ratelimit: limit needs at least 1 unit per whole number of seconds, and a cost of at least 0")

// Allow takes one unit (a request without a cost) from key's quota if
// the quota allows it. A Redis failure is returned as the application's
// EUnavailable error naming Redis; the caller decides whether to fail
// closed or open.
func (l *Limiter) Allow(ctx context.Context, key string, limit Limit) (Result, error) {
	return l.AllowN(ctx, key, limit, 1)
}

// AllowN takes n units at once if all n fit, in one atomic script call,
// batched with concurrent calls like Allow; nothing is taken otherwise.
// n = 0 reports the current state without taking anything. The limit
// must be Fixed (a sliding limit is a user's: AllowUserLimits).
func (l *Limiter) AllowN(ctx context.Context, key string, limit Limit, n int64) (Result, error) {
	if !limit.valid() || limit.Algorithm != Fixed || n < 0 {
		return Result{}, ErrInvalidLimit
	}
	return l.allow(ctx, quota{counter: keyPrefix + key}, limit, n)
}

// AllowUser is AllowN on user's own quota (the gate's per-user limit),
// in the same single script call; the Result also carries the user's
// Version. A user's quota lives under its own keys: AllowN(ctx,
// "user:1", ...) is a different counter.
//
// With a ledger (WithLedger), a window Redis lost (see rebuild.go) is
// rebuilt from it before the decision: that costs a ledger query and
// two more Redis round trips, once per user and window after a loss.
// A ledger failure is returned as the ledger's error. The limit must be
// Fixed, and is counted on the user's default counter whatever its Name;
// a plan's several limits are AllowUserLimits.
func (l *Limiter) AllowUser(ctx context.Context, user int64, limit Limit, n int64) (Result, error) {
	if !limit.valid() || limit.Algorithm != Fixed || n < 0 {
		return Result{}, ErrInvalidLimit
	}
	q := quota{counter: userCounter(user), hash: userHash(user), user: user, kind: kindUser}
	if l.ledger != nil {
		q.kind = kindRebuild
	}
	return l.allow(ctx, q, limit, n)
}

// quota names the Redis keys of one decision.
type quota struct {
	counter string // the prefixed counter
	hash    string // the user's hash; "" for a quota that is not a user's
	user    int64
	kind    int // kindPlain, kindUser or kindRebuild
}

// Kinds of quota, as batch.lua's ARGV[4i] takes them.
const (
	kindPlain   = 0 // not a user's
	kindUser    = 1 // a user's: report the version
	kindRebuild = 2 // a user's, and lost windows are rebuilt
)

// allow decides, rebuilding the window first when the script asks for
// it (at most maxSeeds times: each seed settles the window unless Redis
// loses its data again meanwhile).
func (l *Limiter) allow(ctx context.Context, q quota, limit Limit, n int64) (Result, error) {
	for seeds := 0; ; seeds++ {
		var rep reply
		var err error
		if l.batch == nil || n == 0 {
			rep, err = l.run(ctx, q, limit, n)
		} else {
			rep, err = l.allowBatched(q, limit, n)
		}
		if err != nil || !rep.rebuild {
			return rep.res, err
		}
		if seeds == maxSeeds {
			return Result{}, unavailable("deciding rate limit", fmt.Errorf("window of user %d not rebuilt after %d seeds", q.user, seeds))
		}
		if err := l.rebuild(ctx, q, limit, rep); err != nil {
			return Result{}, err
		}
	}
}

// PublishVersion raises user's version in Redis to v (it never lowers
// it), so that the next decision on any instance reports it in
// Result.Version. Callers publish after the change that bumped
// users.version has committed.
func (l *Limiter) PublishVersion(ctx context.Context, user int64, v int64) error {
	if err := publishScript.Run(ctx, l.rdb, []string{userHash(user)}, v).Err(); err != nil {
		return unavailable("publishing user version", err)
	}
	return nil
}

// PublishVersions publishes many users' versions (a plan change reaches
// every user on the plan): in pipelines of up to publishBatch scripts
// when the client can pipeline, so N users cost N/publishBatch round
// trips. versions maps user id to version. The first failure is
// returned after every batch was tried.
func (l *Limiter) PublishVersions(ctx context.Context, versions map[int64]int64) error {
	p, ok := l.rdb.(pipeliner)
	if !ok || len(versions) == 1 {
		var first error
		for u, v := range versions {
			if err := l.PublishVersion(ctx, u, v); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	var first error
	pipe := p.Pipeline()
	flush := func() {
		if pipe.Len() == 0 {
			return
		}
		// Eval, not EvalSha: a pipeline cannot fall back on NOSCRIPT, and
		// the script is a few hundred bytes.
		if _, err := pipe.Exec(ctx); err != nil && first == nil {
			first = unavailable("publishing user versions", err)
		}
		pipe = p.Pipeline()
	}
	for u, v := range versions {
		publishScript.Eval(ctx, pipe, []string{userHash(u)}, v)
		if pipe.Len() >= publishBatch {
			flush()
		}
	}
	flush()
	return first
}

// publishBatch bounds the scripts of one PublishVersions pipeline.
const publishBatch = 500

func (l Limit) valid() bool {
	if l.Algorithm == Period {
		return l.Requests >= 0
	}
	return l.Requests >= 1 && l.Window >= time.Second && l.Window%time.Second == 0 && l.Algorithm <= Sliding
}

// Refund gives back n units taken in the window that started at
// windowStart, if that window is still current. It is used when a request
// was admitted but could not be served, so it is neither billed nor
// counted against the quota.
func (l *Limiter) Refund(ctx context.Context, key string, windowStart time.Time, n int64) error {
	return l.refund(ctx, keyPrefix+key, windowStart, n)
}

// RefundUser is Refund on user's own quota (AllowUser).
func (l *Limiter) RefundUser(ctx context.Context, user int64, windowStart time.Time, n int64) error {
	return l.refund(ctx, userCounter(user), windowStart, n)
}

func (l *Limiter) refund(ctx context.Context, counter string, windowStart time.Time, n int64) error {
	err := refundScript.Run(ctx, l.rdb, []string{counter}, windowStart.Unix(), n).Err()
	if err != nil {
		return unavailable("refunding rate limit", err)
	}
	return nil
}

// reply is one script answer: a decision, or a request to rebuild the
// window first (nothing decided) under the user's current marker.
type reply struct {
	res     Result
	rebuild bool
	marker  int64
}

// parse reads {allowed (1, 0, or 2: rebuild), used, start, now s, now µs,
// version, marker}.
func parse(v []any, limit Limit) (reply, error) {
	if len(v) != 7 {
		return reply{}, unavailable("deciding rate limit", fmt.Errorf("unexpected reply %v", v))
	}
	var n [7]int64
	for i, x := range v {
		switch x := x.(type) {
		case int64:
			n[i] = x
		case string: // TIME's fields arrive as strings
			var err error
			if n[i], err = strconv.ParseInt(x, 10, 64); err != nil {
				return reply{}, unavailable("deciding rate limit", fmt.Errorf("unexpected reply %v", v))
			}
		default:
			return reply{}, unavailable("deciding rate limit", fmt.Errorf("unexpected reply %v", v))
		}
	}
	allowed, used, start, sec, usec, version, marker := n[0], n[1], n[2], n[3], n[4], n[5], n[6]
	now := time.Unix(sec, usec*1000).UTC()
	ws := time.Unix(start, 0).UTC()
	r := Result{
		Limit:       limit,
		Allowed:     allowed == 1,
		Used:        used,
		Remaining:   max(limit.Requests-used, 0),
		WindowStart: ws,
		ResetAfter:  ws.Add(limit.Window).Sub(now),
		Version:     version,
	}
	if !r.Allowed {
		r.RetryAfter = r.ResetAfter
	}
	return reply{res: r, rebuild: allowed == 2, marker: marker}, nil
}
