package pricing

import (
	"fmt"

	"github.com/shopspring/decimal"
)

// UnitsWithin converts a spend cap into units: the most units a period
// may hold under plan p so that the period's invoice total never goes
// over limit, however the units arrive (every count up to the result
// costs at most limit). With a fixed fee above the cap it is 0; when no
// count of units ever costs more than the cap (free units) it is the
// bound on counts, 10^15.
//
// The invoice total is non-decreasing in the units under per-unit,
// graduated and package prices, so the answer is found by bisection on
// Compute itself (the invoice's own arithmetic and rounding, so the cap
// and the invoice never disagree by a cent). Under volume prices the
// total can drop when the count enters a cheaper tier; it only rises
// within a tier, so the tiers are searched in order for the first count
// that costs more than the cap.
func (p Plan) UnitsWithin(limit decimal.Decimal) int64 {
	over := func(u int64) bool { return p.Compute(u).Total.GreaterThan(limit) }
	if over(0) {
		return 0
	}
	// Monotone segments of total units [lo, hi].
	type seg struct{ lo, hi int64 }
	segs := []seg{{0, maxUnits}}
	if p.Price.Kind == Volume {
		segs = segs[:0]
		lo := int64(0)
		for _, t := range p.Price.Tiers {
			if t.UpTo == nil {
				segs = append(segs, seg{lo, maxUnits})
				break
			}
			hi := min(p.IncludedUnits+*t.UpTo, maxUnits)
			segs = append(segs, seg{lo, hi})
			lo = hi + 1
		}
	}
	for _, s := range segs {
		if !over(s.hi) {
			continue
		}
		// The first count over the cap is in (lo, hi]: lo is not over
		// (the previous segment's counts and 0 were not).
		lo, hi := s.lo, s.hi
		if over(lo) {
			return lo - 1
		}
		for hi-lo > 1 {
			mid := lo + (hi-lo)/2
			if over(mid) {
				hi = mid
			} else {
				lo = mid
			}
		}
		return lo
	}
	return maxUnits
}

// MaxCap bounds a spend cap (10^15 in the currency).
var MaxCap = decimal.New(1, 15)

// ParseCap reads a spend cap as the API takes it: a decimal string of at
// most two places ("50", "50.5", "50.00"), from 0 to MaxCap. The error
// says what is accepted, for a 422 on the field.
func ParseCap(s string) (decimal.Decimal, error) {
	bad := fmt.Errorf("must be a decimal string with at most 2 places, from 0 to %s, e.g. \"50.00\"", MaxCap.String())
	if s == "" || len(s) > 24 {
		return decimal.Zero, bad
	}
	for _, c := range s {
		if (c < '0' || c > '9') && c != '.' {
			return decimal.Zero, bad // no sign, exponent or spaces
		}
	}
	d, err := decimal.NewFromString(s)
	if err != nil || d.IsNegative() || d.GreaterThan(MaxCap) || !d.Equal(d.Round(2)) {
		return decimal.Zero, bad
	}
	return d.Round(2), nil
}
