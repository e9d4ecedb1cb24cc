// Package history is the pure logic of usage history: the query
// parameters of GET /usage/history and the operator's
// /admin/usage/history and /admin/usage/top (from, to, granularity),
// their defaults and bounds, and the zero-filled series an answer holds.
// It does no I/O; package postgres reads the buckets from the minute
// rollups (usage_minutes), never from the events.
//
// Buckets are UTC and aligned to their size (minutes, hours, days since
// the Unix epoch). from is rounded down and to up to a bucket boundary;
// to is exclusive. An answer holds at most MaxPoints buckets.
package history

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/ratebill/platform/shared"
)

// Granularity is the size of one bucket.
type Granularity string

// Granularities.
const (
	Minute Granularity = "minute"
	Hour   Granularity = "hour"
	Day    Granularity = "day"
)

// Step is the bucket's length; 0 for an unknown granularity.
func (g Granularity) Step() time.Duration {
	switch g {
	case Minute:
		return time.Minute
	case Hour:
		return time.Hour
	case Day:
		return 24 * time.Hour
	}
	return 0
}

// defaultPoints is how many buckets an answer holds when from is not
// given: the last hour by minute, the last day by hour, the last 30 days
// by day.
func (g Granularity) defaultPoints() int64 {
	switch g {
	case Hour:
		return 24
	case Day:
		return 30
	}
	return 60
}

// MaxPoints bounds the buckets of one answer: a wider range is refused
// (422 naming from), never truncated.
const MaxPoints = 1500

// The times a query may name: nothing was metered before the Unix epoch,
// and the bound after keeps every rounded time encodable.
var (
	Earliest = time.Unix(0, 0).UTC()
	Latest   = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Range is a validated query: [From, To) in buckets of Granularity,
// both aligned to the bucket size, UTC.
type Range struct {
	Granularity Granularity
	From, To    time.Time
}

// Step is the bucket length.
func (r Range) Step() time.Duration { return r.Granularity.Step() }

// Points is the number of buckets in r.
func (r Range) Points() int { return int(r.To.Sub(r.From) / r.Step()) }

// Parse reads from, to and granularity from q, with now as the current
// time when from or to is missing. Defaults: granularity minute; to is
// now (rounded up to the next bucket); from is to minus an hour of
// minutes, a day of hours or 30 days. Errors are shared.EInvalid (422)
// with every offending field named: a repeated or unknown-valued
// parameter, a time that is not RFC 3339, from not before to, or more
// than MaxPoints buckets.
func Parse(q url.Values, now time.Time) (Range, error) {
	var fields []shared.FieldError
	bad := func(field, detail string) { fields = append(fields, shared.FieldError{Field: field, Detail: detail}) }
	one := func(name string) string {
		v := q[name]
		if len(v) > 1 {
			bad(name, "given more than once")
			return ""
		}
		if len(v) == 1 {
			return v[0]
		}
		return ""
	}
	r := Range{Granularity: Minute}
	if g := one("granularity"); g != "" {
		r.Granularity = Granularity(g)
		if r.Granularity.Step() == 0 {
			bad("granularity", "must be minute, hour or day")
			r.Granularity = Minute
		}
	}
	when := func(name string) (time.Time, bool) {
		v := one(name)
		if v == "" {
			return time.Time{}, false
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			bad(name, "must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z")
			return time.Time{}, false
		}
		if t.Before(Earliest) || !t.Before(Latest) {
			bad(name, "must be from 1970-01-01 to before 3000-01-01")
			return time.Time{}, false
		}
		return t.UTC(), true
	}
	from, hasFrom := when("from")
	to, hasTo := when("to")
	if len(fields) > 0 {
		return Range{}, invalid(fields)
	}
	step := r.Granularity.Step()
	span := time.Duration(r.Granularity.defaultPoints()) * step
	switch {
	case !hasTo && !hasFrom:
		to = now.UTC()
		from = ceil(to, step).Add(-span)
	case !hasTo:
		to = now.UTC()
		if !from.Before(to) {
			to = from.Add(span) // a range that starts in the future
		}
	case !hasFrom:
		from = floor(ceil(to, step), step).Add(-span)
	}
	if !from.Before(to) {
		bad("to", "must be after from")
		return Range{}, invalid(fields)
	}
	// Count in whole seconds: a span of centuries overflows a Duration.
	secs := int64(step / time.Second)
	n := (ceilUnix(to.Unix(), secs) - floorUnix(from.Unix(), secs)) / secs
	if n > MaxPoints {
		bad("from", fmt.Sprintf("the range holds %d %s buckets; at most %d per answer: narrow it or use a coarser granularity", n, r.Granularity, MaxPoints))
		return Range{}, invalid(fields)
	}
	r.From, r.To = floor(from, step), ceil(to, step)
	return r, nil
}

func invalid(fields []shared.FieldError) error {
	return &shared.Error{Code: shared.EInvalid, Message: "invalid usage history query: see errors", Fields: fields}
}

func floorUnix(s, step int64) int64 {
	if s < 0 && s%step != 0 {
		return s - s%step - step
	}
	return s - s%step
}

func ceilUnix(s, step int64) int64 {
	f := floorUnix(s, step)
	if f == s {
		return s
	}
	return f + step
}

// floor rounds t down to a multiple of step since the Unix epoch (UTC).
func floor(t time.Time, step time.Duration) time.Time {
	secs := int64(step / time.Second)
	return time.Unix(floorUnix(t.Unix(), secs), 0).UTC()
}

// ceil rounds t up to a multiple of step since the Unix epoch (UTC).
func ceil(t time.Time, step time.Duration) time.Time {
	f := floor(t, step)
	if f.Equal(t) {
		return f
	}
	return f.Add(step)
}

// Point is one bucket: what was admitted (requests, cost units) and
// denied (refused by the rate limit; approximate, see Denials in package
// meter) from Start for one bucket length.
type Point struct {
	Start    time.Time `json:"start"`
	Requests int64     `json:"requests"`
	Units    int64     `json:"units"`
	Denied   int64     `json:"denied"`
}

// Series is the body of a history answer.
type Series struct {
	Granularity Granularity `json:"granularity"`
	From        time.Time   `json:"from"`
	To          time.Time   `json:"to"`
	Points      []Point     `json:"points"`
	// Totals sums the points.
	Totals Totals `json:"totals"`
}

// Totals sums a series.
type Totals struct {
	Requests int64 `json:"requests"`
	Units    int64 `json:"units"`
	Denied   int64 `json:"denied"`
}

// Fill returns r's series: one point per bucket, in order, taken from
// rows (buckets the store found, any order; rows outside r are ignored)
// or zero.
func Fill(r Range, rows []Point) Series {
	n := r.Points()
	s := Series{Granularity: r.Granularity, From: r.From, To: r.To, Points: make([]Point, n)}
	step := r.Step()
	for i := range s.Points {
		s.Points[i].Start = r.From.Add(time.Duration(i) * step)
	}
	for _, p := range rows {
		d := p.Start.Sub(r.From)
		if d < 0 || d%step != 0 || int(d/step) >= n {
			continue
		}
		i := int(d / step)
		s.Points[i].Requests += p.Requests
		s.Points[i].Units += p.Units
		s.Points[i].Denied += p.Denied
	}
	for _, p := range s.Points {
		s.Totals.Requests += p.Requests
		s.Totals.Units += p.Units
		s.Totals.Denied += p.Denied
	}
	return s
}

// Top orders the operator's top customers.
type Top string

// Orders of /admin/usage/top.
const (
	ByRequests Top = "requests"
	ByUnits    Top = "units"
	ByDenied   Top = "denied"
)

// Top bounds.
const (
	DefaultTop = 10
	MaxTop     = 100
)

// ParseTop reads by (requests, units or denied; default requests) and
// limit (1 to MaxTop; default DefaultTop) besides the range.
func ParseTop(q url.Values, now time.Time) (Range, Top, int, error) {
	var fields []shared.FieldError
	by, limit := ByRequests, DefaultTop
	if v := q["by"]; len(v) > 1 {
		fields = append(fields, shared.FieldError{Field: "by", Detail: "given more than once"})
	} else if len(v) == 1 {
		switch by = Top(v[0]); by {
		case ByRequests, ByUnits, ByDenied:
		default:
			fields = append(fields, shared.FieldError{Field: "by", Detail: "must be requests, units or denied"})
		}
	}
	if v := q["limit"]; len(v) > 1 {
		fields = append(fields, shared.FieldError{Field: "limit", Detail: "given more than once"})
	} else if len(v) == 1 {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 || n > MaxTop {
			fields = append(fields, shared.FieldError{Field: "limit", Detail: fmt.Sprintf("must be an integer from 1 to %d", MaxTop)})
		}
		limit = n
	}
	r, err := Parse(q, now)
	if err != nil {
		var e *shared.Error
		if errors.As(err, &e) {
			fields = append(fields, e.Fields...)
		}
	}
	if len(fields) > 0 {
		return Range{}, "", 0, &shared.Error{Code: shared.EInvalid, Message: "invalid top-customers query: see errors", Fields: fields}
	}
	return r, by, limit, nil
}

// Customer is one row of the operator's top customers: what the user was
// admitted and denied in the range.
type Customer struct {
	UserID   int64  `json:"user_id"`
	Username string `json:"username"`
	Requests int64  `json:"requests"`
	Units    int64  `json:"units"`
	Denied   int64  `json:"denied"`
}

// TopCustomers is the body of GET /admin/usage/top.
type TopCustomers struct {
	By    Top        `json:"by"`
	From  time.Time  `json:"from"`
	To    time.Time  `json:"to"`
	Items []Customer `json:"items"`
}
