package ratelimit

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Several limits per user.
//
// A plan may hold several limits (a burst of 10 per second and 1,000 a
// day, say), each fixed or sliding. AllowUserLimits decides them all in
// one call of multi.lua: the request is admitted only when its cost fits
// every limit, and a request denied by any limit takes nothing from the
// others. The user's version and the marker of a lost window (rebuild.go)
// travel through the same call, as with AllowUser.
//
// A user's only limit, fixed and named "default" (every user of the
// default plan), goes through AllowUser instead: the same counter, and
// batched with concurrent decisions (batch.go).

//go:embed multi.lua
var multiLua string

//go:embed refundmulti.lua
var refundMultiLua string

//go:embed seedsliding.lua
var seedSlidingLua string

var (
	multiScript       = redis.NewScript(multiLua)
	refundMultiScript = redis.NewScript(refundMultiLua)
	seedSlidingScript = redis.NewScript(seedSlidingLua)
)

// MaxLimits bounds the limits of one decision.
const MaxLimits = 10

// Decision is the outcome of AllowUserLimits: one Result per limit, in
// the order given.
type Decision struct {
	// Allowed reports that the cost fitted every limit and was taken
	// from each.
	Allowed bool
	Results []Result
	// Version is the user's published version (Result.Version).
	Version int64
}

// Headline is the limit a client is shown in X-RateLimit-* (the
// convention "closest to running out"): when denied, the denying limit
// that frees last; when admitted, the one with the fewest units
// remaining, the later reset breaking a tie.
func (d Decision) Headline() Result {
	if len(d.Results) == 0 {
		return Result{}
	}
	best := 0
	for i, r := range d.Results[1:] {
		i++
		b := d.Results[best]
		if !d.Allowed {
			if r.RetryAfter > b.RetryAfter {
				best = i
			}
			continue
		}
		if r.Remaining < b.Remaining || r.Remaining == b.Remaining && r.ResetAfter > b.ResetAfter {
			best = i
		}
	}
	return d.Results[best]
}

// counterKey is the counter of a user's limit: the default counter
// (AllowUser's) for a fixed limit named "default", else one per name and
// algorithm, tagged {user:ID} like the rest of the user's keys.
func counterKey(user int64, l Limit) string {
	if l.onUserCounter() {
		return userCounter(user)
	}
	return userCounter(user) + ":" + l.Algorithm.arg() + ":" + l.Name
}

// onUserCounter reports whether l is counted on the user's own counter
// (a fixed limit named "default"), which the single-limit scripts keep.
func (l Limit) onUserCounter() bool { return l.Algorithm == Fixed && l.PolicyName() == "default" }

func (a Algorithm) arg() string {
	switch a {
	case Sliding:
		return "s"
	case Period:
		return "p"
	}
	return "f"
}

// AllowUserLimits takes n units from every one of user's limits if the
// cost fits all of them, in one atomic script call; otherwise nothing is
// taken. n = 0 only reads. With a ledger (WithLedger), limits whose
// window Redis lost are rebuilt first (rebuild.go), each from the ledger.
// Limits must be valid and their names distinct; at most MaxLimits.
func (l *Limiter) AllowUserLimits(ctx context.Context, user int64, limits []Limit, n int64) (Decision, error) {
	if len(limits) == 0 || len(limits) > MaxLimits || n < 0 {
		return Decision{}, ErrInvalidLimit
	}
	for i, lim := range limits { // at most MaxLimits: no map on the hot path
		if !lim.valid() {
			return Decision{}, ErrInvalidLimit
		}
		for _, other := range limits[:i] {
			if other.PolicyName() == lim.PolicyName() {
				return Decision{}, ErrInvalidLimit
			}
		}
	}
	if len(limits) == 1 && limits[0].onUserCounter() {
		r, err := l.AllowUser(ctx, user, limits[0], n)
		if err != nil {
			return Decision{}, err
		}
		return Decision{Allowed: r.Allowed, Results: []Result{r}, Version: r.Version}, nil
	}
	keys := make([]string, 1+len(limits))
	keys[0] = userHash(user)
	rebuild := "0"
	if l.ledger != nil {
		rebuild = "1"
	}
	args := make([]any, 0, 2+3*len(limits))
	args = append(args, n, rebuild)
	for i, lim := range limits {
		keys[1+i] = counterKey(user, lim)
		args = append(args, lim.Requests, int64(lim.Window/time.Second), lim.Algorithm.arg())
	}
	for seeds := 0; ; seeds++ {
		v, err := multiScript.Run(ctx, l.rdb, keys, args...).Slice()
		if err != nil {
			return Decision{}, unavailable("deciding rate limits", err)
		}
		d, lost, marker, err := parseMulti(v, limits)
		if err != nil || len(lost) == 0 {
			return d, err
		}
		if seeds == maxSeeds {
			return Decision{}, unavailable("deciding rate limits", fmt.Errorf("windows of user %d not rebuilt after %d seeds", user, seeds))
		}
		for _, i := range lost {
			if err := l.rebuildLimit(ctx, user, keys[1+i], limits[i], d.Results[i], marker); err != nil {
				return Decision{}, err
			}
		}
	}
}

// parseMulti reads multi.lua's reply; lost lists the limits to rebuild
// (nothing was decided then).
func parseMulti(v []any, limits []Limit) (d Decision, lost []int, marker int64, err error) {
	bad := func() (Decision, []int, int64, error) {
		return Decision{}, nil, 0, unavailable("deciding rate limits", fmt.Errorf("unexpected reply %v", v))
	}
	if len(v) != 5+6*len(limits) {
		return bad()
	}
	n := make([]int64, len(v))
	for i, x := range v {
		switch x := x.(type) {
		case int64:
			n[i] = x
		case string: // TIME's fields arrive as strings
			if n[i], err = strconv.ParseInt(x, 10, 64); err != nil {
				return bad()
			}
		default:
			return bad()
		}
	}
	allowed, nowMicro := n[0], n[1]*1_000_000+n[2]
	now := time.UnixMicro(nowMicro).UTC()
	d = Decision{Allowed: allowed == 1, Version: n[3], Results: make([]Result, len(limits))}
	for i, lim := range limits {
		f := n[5+6*i : 11+6*i]
		used, stamp, span, reset, retry, rebuild := f[0], f[1], f[2], f[3], f[4], f[5]
		resetAt := time.UnixMilli(reset).UTC()
		r := Result{
			Limit:       lim,
			Allowed:     d.Allowed,
			Used:        used,
			Remaining:   max(lim.Requests-used, 0),
			WindowStart: time.Unix(span, 0).UTC(),
			ResetAfter:  max(resetAt.Sub(now), 0),
			Version:     d.Version,
			stamp:       stamp,
		}
		switch lim.Algorithm {
		case Sliding:
			// ResetAt is WindowStart + Window: the window that ends when
			// units next come back.
			r.WindowStart = resetAt.Add(-lim.Window)
		case Period:
			r.Limit.Window = resetAt.Sub(r.WindowStart) // this month's length
		}
		if !d.Allowed && retry > 0 {
			r.RetryAfter = max(time.UnixMilli(retry).Sub(now), time.Millisecond)
		}
		if rebuild == 1 {
			lost = append(lost, i)
			r.WindowStart = time.Unix(span, 0).UTC() // what the rebuild counts from
		}
		d.Results[i] = r
	}
	return d, lost, n[4], nil
}

// RefundUserLimits gives back n units taken by d (an admitted decision of
// AllowUserLimits) to every limit that still holds them.
func (l *Limiter) RefundUserLimits(ctx context.Context, user int64, d Decision, n int64) error {
	if len(d.Results) == 1 && counterKey(user, d.Results[0].Limit) == userCounter(user) {
		return l.RefundUser(ctx, user, d.Results[0].WindowStart, n)
	}
	keys := make([]string, len(d.Results))
	args := make([]any, 0, 1+2*len(d.Results))
	args = append(args, n)
	for i, r := range d.Results {
		keys[i] = counterKey(user, r.Limit)
		args = append(args, r.Limit.Algorithm.arg(), r.stamp)
	}
	if err := refundMultiScript.Run(ctx, l.rdb, keys, args...).Err(); err != nil {
		return unavailable("refunding rate limits", err)
	}
	return nil
}

// RefundUserLimitsAt gives back n units recorded at the given time (the
// ledger's clock) to every one of limits that still holds them: a
// released call. The stamps are computed as multi.lua computes them.
func (l *Limiter) RefundUserLimitsAt(ctx context.Context, user int64, limits []Limit, at time.Time, n int64) error {
	d := Decision{Allowed: true, Results: make([]Result, len(limits))}
	for i, lim := range limits {
		r := Result{Limit: lim}
		switch lim.Algorithm {
		case Sliding:
			r.stamp = at.UnixMilli() / bucketMillis(lim.Window)
		case Period:
			y, m, _ := at.UTC().Date()
			r.stamp = time.Date(y, m, 1, 0, 0, 0, 0, time.UTC).Unix()
		default:
			w := int64(lim.Window / time.Second)
			r.stamp = at.Unix() / w * w
		}
		r.WindowStart = time.Unix(r.stamp, 0)
		d.Results[i] = r
	}
	return l.RefundUserLimits(ctx, user, d, n)
}

// bucketMillis is multi.lua's bucket of a sliding window.
func bucketMillis(window time.Duration) int64 {
	return max(1, window.Milliseconds()/60)
}

// rebuildLimit seeds one lost limit from the ledger: the units since the
// start of what the limit counts (LedgerSkew earlier), once at a time per
// counter, marker and span on this instance.
func (l *Limiter) rebuildLimit(ctx context.Context, user int64, counter string, lim Limit, r Result, marker int64) error {
	w := int64(lim.Window / time.Second)
	start := r.WindowStart
	key := fmt.Sprintf("%s/%d/%d/%d", counter, marker, start.Unix(), w)
	_, err, _ := l.flight.Do(key, func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rebuildTimeout)
		defer cancel()
		since := start.Add(-LedgerSkew)
		if lim.Algorithm == Period {
			// The month's units exactly as its invoice counts them (the
			// ledger's clock): a cap must not refuse for last month's.
			since = start
		}
		units, err := l.ledger.UnitsSince(rctx, user, since, lim.Algorithm != Period && lim.Window < time.Minute)
		if err != nil {
			return nil, err
		}
		var n int64
		switch lim.Algorithm {
		case Sliding:
			n, err = seedSlidingScript.Run(rctx, l.rdb, []string{counter, userHash(user)}, marker, w, units).Int64()
		case Period:
			end := r.ResetAt().Unix()
			n, err = seedScript.Run(rctx, l.rdb, []string{counter, userHash(user)}, marker, start.Unix(), 0, units, end).Int64()
		default:
			n, err = seedScript.Run(rctx, l.rdb, []string{counter, userHash(user)}, marker, start.Unix(), w, units).Int64()
		}
		if err != nil {
			return nil, unavailable("seeding rate limit from the ledger", err)
		}
		if n >= 0 {
			l.rebuilds.Add(1)
		}
		return nil, nil
	})
	return err
}
