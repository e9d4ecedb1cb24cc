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
package ratelimit

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/group"
)

//go:embed window.lua
var windowLua string

//go:embed refund.lua
var refundLua string

var (
	windowScript = redis.NewScript(windowLua)
	refundScript = redis.NewScript(refundLua)
)

// keyPrefix versions the counters' layout.
const keyPrefix = "rl:v1:"

// Limit is a quota: Requests units per Window.
type Limit struct {
	// Requests is the units admitted per window (a request without a
	// cost is 1 unit); at least 1.
	Requests int64
	Window   time.Duration // window length; whole seconds, at least 1 s
}

// String renders the limit as "1000/86400s".
func (l Limit) String() string {
	return fmt.Sprintf("%d/%ds", l.Requests, int64(l.Window/time.Second))
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
	WindowStart time.Time
	// ResetAfter is the time until the window ends and the quota refills.
	ResetAfter time.Duration
	// RetryAfter is zero when Allowed; otherwise the time until the
	// request's cost can fit again (the reset).
	RetryAfter time.Duration
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
// n = 0 reports the current state without taking anything.
func (l *Limiter) AllowN(ctx context.Context, key string, limit Limit, n int64) (Result, error) {
	if !limit.valid() || n < 0 {
		return Result{}, ErrInvalidLimit
	}
	if l.batch == nil || n == 0 {
		return l.run(ctx, keyPrefix+key, limit, n)
	}
	return l.allowBatched(key, limit, n)
}

func (l Limit) valid() bool {
	return l.Requests >= 1 && l.Window >= time.Second && l.Window%time.Second == 0
}

// Refund gives back n units taken in the window that started at
// windowStart, if that window is still current. It is used when a request
// was admitted but could not be served, so it is neither billed nor
// counted against the quota.
func (l *Limiter) Refund(ctx context.Context, key string, windowStart time.Time, n int64) error {
	err := refundScript.Run(ctx, l.rdb, []string{keyPrefix + key}, windowStart.Unix(), n).Err()
	if err != nil {
		return unavailable("refunding rate limit", err)
	}
	return nil
}

func parse(v []any, limit Limit) (Result, error) {
	if len(v) != 5 {
		return Result{}, unavailable("deciding rate limit", fmt.Errorf("unexpected reply %v", v))
	}
	var n [5]int64
	for i, x := range v {
		switch x := x.(type) {
		case int64:
			n[i] = x
		case string: // TIME's fields arrive as strings
			var err error
			if n[i], err = strconv.ParseInt(x, 10, 64); err != nil {
				return Result{}, unavailable("deciding rate limit", fmt.Errorf("unexpected reply %v", v))
			}
		default:
			return Result{}, unavailable("deciding rate limit", fmt.Errorf("unexpected reply %v", v))
		}
	}
	allowed, used, start, sec, usec := n[0], n[1], n[2], n[3], n[4]
	now := time.Unix(sec, usec*1000).UTC()
	ws := time.Unix(start, 0).UTC()
	r := Result{
		Limit:       limit,
		Allowed:     allowed == 1,
		Used:        used,
		Remaining:   max(limit.Requests-used, 0),
		WindowStart: ws,
		ResetAfter:  ws.Add(limit.Window).Sub(now),
	}
	if !r.Allowed {
		r.RetryAfter = r.ResetAfter
	}
	return r, nil
}
