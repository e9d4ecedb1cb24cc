package pricing

import "github.com/shopspring/decimal"

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
