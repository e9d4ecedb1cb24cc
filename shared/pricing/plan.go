package pricing

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"time"

	"github.com/shopspring/decimal"
)

// A Plan is what a customer buys: limits, an allowance of units included
// in every billing period, a price model for the units beyond it, and an
// optional fixed fee per period, all in one currency.
//
// Plans are stored as JSON (table plans) and validated here, in Go, by
// Validate: the database holds whatever Validate accepted.
type Plan struct {
	Name          string          `json:"name"`
	Currency      string          `json:"currency"`
	FixedFee      decimal.Decimal `json:"fixed_fee"`
	IncludedUnits int64           `json:"included_units"`
	Price         Model           `json:"price"`
	Limits        []Limit         `json:"limits"`
}

// Price model kinds.
const (
	PerUnit   = "per_unit"   // every billable unit at UnitPrice
	Graduated = "graduated"  // each unit at the price of the tier it falls in
	Volume    = "volume"     // every unit at the price of the tier the total falls in
	Package   = "package"    // packages of PackageSize units at PackagePrice, a started package counts whole
	maxTiers  = 20           // tiers per model
	maxPlaces = 10           // decimal places of a price
	maxLimits = 10           // limits per plan
	maxUnits  = int64(1e15)  // bound on counts, so that products stay far from overflow
	maxPrice  = 1_000_000_00 // bound on a price or fee (100 million)
)

// Model prices the billable units of a period: those beyond the plan's
// included units. Tier bounds count billable units, cumulatively.
type Model struct {
	Kind         string          `json:"kind"`
	UnitPrice    decimal.Decimal `json:"unit_price,omitzero"`
	Tiers        []Tier          `json:"tiers,omitempty"`
	PackageSize  int64           `json:"package_size,omitempty"`
	PackagePrice decimal.Decimal `json:"package_price,omitzero"`
}

// Tier is one step of a graduated or volume model: billable units up to
// and including UpTo (nil on the last tier: no bound) cost UnitPrice each.
type Tier struct {
	UpTo      *int64          `json:"up_to"`
	UnitPrice decimal.Decimal `json:"unit_price"`
}

// Limit is one rate limit of a plan: Units per WindowSeconds, decided by
// Algorithm. The gate decides every limit of a user's plan in one atomic
// Redis script (ratelimit.Limiter.AllowUserLimits): a call is admitted
// only when its cost fits all of them.
type Limit struct {
	Name          string `json:"name"`
	Units         int64  `json:"units"`
	WindowSeconds int64  `json:"window_seconds"`
	Algorithm     string `json:"algorithm"`
}

// Limit algorithms.
const (
	Fixed   = "fixed"
	Sliding = "sliding"
)

// DefaultPlanName names the plan of every user without an assignment.
const DefaultPlanName = "default"

// DefaultPlan is the seed's behaviour as a plan: one fixed-window limit
// named "default" of rateLimit units per window, no fee, no allowance,
// every unit at unitPrice. It bills exactly what GET /billing bills.
func DefaultPlan(rateLimit int64, window time.Duration, unitPrice decimal.Decimal, currency string) Plan {
	return Plan{
		Name:     DefaultPlanName,
		Currency: currency,
		FixedFee: decimal.Zero,
		Price:    Model{Kind: PerUnit, UnitPrice: unitPrice},
		Limits:   []Limit{{Name: "default", Units: rateLimit, WindowSeconds: int64(window / time.Second), Algorithm: Fixed}},
	}
}

var (
	nameRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)
)

// ParsePlan decodes and validates a plan from JSON, rejecting unknown
// fields and trailing data.
func ParsePlan(b []byte) (Plan, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p Plan
	if err := dec.Decode(&p); err != nil {
		return Plan{}, fmt.Errorf("decoding plan: %w", err)
	}
	if dec.More() {
		return Plan{}, fmt.Errorf("decoding plan: trailing data after the plan")
	}
	return p, p.Validate()
}

// Validate reports the first thing wrong with the plan, naming the field.
func (p Plan) Validate() error {
	if !nameRE.MatchString(p.Name) {
		return fmt.Errorf("name: 1 to 64 of a-z 0-9 _ -, starting with a letter or digit")
	}
	if !currencyRE.MatchString(p.Currency) {
		return fmt.Errorf("currency: three capital letters (ISO 4217), e.g. USD")
	}
	if err := checkMoney("fixed_fee", p.FixedFee); err != nil {
		return err
	}
	if p.IncludedUnits < 0 || p.IncludedUnits > maxUnits {
		return fmt.Errorf("included_units: 0 to %d", maxUnits)
	}
	if err := p.Price.validate(); err != nil {
		return err
	}
	if len(p.Limits) == 0 || len(p.Limits) > maxLimits {
		return fmt.Errorf("limits: 1 to %d limits", maxLimits)
	}
	seen := map[string]bool{}
	for i, l := range p.Limits {
		f := fmt.Sprintf("limits[%d]", i)
		switch {
		case !nameRE.MatchString(l.Name):
			return fmt.Errorf("%s.name: 1 to 64 of a-z 0-9 _ -", f)
		case seen[l.Name]:
			return fmt.Errorf("%s.name: %q appears twice", f, l.Name)
		case l.Units < 1 || l.Units > maxUnits:
			return fmt.Errorf("%s.units: 1 to %d", f, maxUnits)
		case l.WindowSeconds < 1 || l.WindowSeconds > 366*86400:
			return fmt.Errorf("%s.window_seconds: 1 to %d", f, 366*86400)
		case l.Algorithm != Fixed && l.Algorithm != Sliding:
			return fmt.Errorf("%s.algorithm: %q or %q", f, Fixed, Sliding)
		}
		seen[l.Name] = true
	}
	return nil
}

func checkMoney(field string, d decimal.Decimal) error {
	switch {
	case d.IsNegative():
		return fmt.Errorf("%s: must not be negative", field)
	case d.GreaterThan(decimal.NewFromInt(maxPrice)):
		return fmt.Errorf("%s: at most %d", field, maxPrice)
	case -d.Exponent() > maxPlaces && !d.Equal(d.Round(maxPlaces)):
		return fmt.Errorf("%s: at most %d decimal places", field, maxPlaces)
	}
	return nil
}

func (m Model) validate() error {
	switch m.Kind {
	case PerUnit:
		if len(m.Tiers) > 0 || m.PackageSize != 0 || !m.PackagePrice.IsZero() {
			return fmt.Errorf("price: a per_unit model has only unit_price")
		}
		return checkMoney("price.unit_price", m.UnitPrice)
	case Graduated, Volume:
		if !m.UnitPrice.IsZero() || m.PackageSize != 0 || !m.PackagePrice.IsZero() {
			return fmt.Errorf("price: a %s model has only tiers", m.Kind)
		}
		if len(m.Tiers) == 0 || len(m.Tiers) > maxTiers {
			return fmt.Errorf("price.tiers: 1 to %d tiers", maxTiers)
		}
		prev := int64(0)
		for i, t := range m.Tiers {
			f := fmt.Sprintf("price.tiers[%d]", i)
			last := i == len(m.Tiers)-1
			switch {
			case last && t.UpTo != nil:
				return fmt.Errorf("%s.up_to: the last tier has no bound (null)", f)
			case !last && t.UpTo == nil:
				return fmt.Errorf("%s.up_to: only the last tier may be unbounded", f)
			case !last && (*t.UpTo <= prev || *t.UpTo > maxUnits):
				return fmt.Errorf("%s.up_to: greater than the previous bound (%d), at most %d", f, prev, maxUnits)
			}
			if err := checkMoney(f+".unit_price", t.UnitPrice); err != nil {
				return err
			}
			if !last {
				prev = *t.UpTo
			}
		}
		return nil
	case Package:
		if !m.UnitPrice.IsZero() || len(m.Tiers) > 0 {
			return fmt.Errorf("price: a package model has only package_size and package_price")
		}
		if m.PackageSize < 1 || m.PackageSize > maxUnits {
			return fmt.Errorf("price.package_size: 1 to %d", maxUnits)
		}
		return checkMoney("price.package_price", m.PackagePrice)
	}
	return fmt.Errorf("price.kind: one of %s, %s, %s, %s", PerUnit, Graduated, Volume, Package)
}

// Line kinds.
const (
	LineFixedFee = "fixed_fee"
	LineIncluded = "included"
	LineUsage    = "usage" // per-unit, a tier, or packages
)

// Line is one line of an invoice. Quantity × UnitPrice is the exact
// amount, and Amount is it rounded once, half up, to the cent: the only
// rounding an invoice does. Units are the units the line covers (for a
// package line, Quantity counts packages).
type Line struct {
	Kind        string          `json:"kind"`
	Plan        string          `json:"plan"`
	Description string          `json:"description"`
	Units       int64           `json:"units"`
	Quantity    decimal.Decimal `json:"quantity"`
	UnitPrice   decimal.Decimal `json:"unit_price"`
	Amount      decimal.Decimal `json:"amount"`
	// TierFrom and TierTo bound a tier's billable units (1-based,
	// inclusive; TierTo 0 for the unbounded tier).
	TierFrom int64 `json:"tier_from,omitempty"`
	TierTo   int64 `json:"tier_to,omitempty"`
}

// Segment is the part of a billing period during which one plan was in
// effect, and the units recorded in it. Share is its fraction of the
// period's time: Num/Den seconds (Num == Den for a whole period).
type Segment struct {
	Plan     Plan
	Units    int64
	Num, Den int64
}

// Invoice is the bill of one period.
type Invoice struct {
	Currency string          `json:"currency"`
	Units    int64           `json:"units"`
	Lines    []Line          `json:"lines"`
	Subtotal decimal.Decimal `json:"subtotal"`
	Total    decimal.Decimal `json:"total"`
}

// Compute bills one whole period of units under plan p.
func (p Plan) Compute(units int64) Invoice {
	return Compute([]Segment{{Plan: p, Units: units, Num: 1, Den: 1}})
}

// Compute bills a period made of segments (a plan change in the middle
// of a period makes several). Each segment is billed on its own, by its
// plan:
//
//   - the fixed fee, prorated by the segment's share of the period's
//     time, rounded once, half up;
//   - the included units, prorated by the same share, rounded down (two
//     halves of a month never give more than one month's allowance);
//   - the price model applied to the segment's units beyond that
//     allowance, tiers counted from the first billable unit of the
//     segment (tiers restart with a new plan, as Lago does).
//
// Total is Subtotal (no tax or discount yet); both are the exact sum of
// the lines. Every segment's plan must have the same currency, else
// Compute panics: callers build segments from validated plans of one
// deployment, and mixing currencies is a bug, not input.
func Compute(segments []Segment) Invoice {
	var inv Invoice
	inv.Lines = []Line{}
	inv.Subtotal = decimal.Zero
	for i, s := range segments {
		if i == 0 {
			inv.Currency = s.Plan.Currency
		} else if s.Plan.Currency != inv.Currency {
			panic(fmt.Sprintf("pricing: segments in %s and %s", inv.Currency, s.Plan.Currency))
		}
		inv.Units += s.Units
		inv.Lines = append(inv.Lines, s.lines()...)
	}
	for _, l := range inv.Lines {
		inv.Subtotal = inv.Subtotal.Add(l.Amount)
	}
	inv.Total = inv.Subtotal
	return inv
}

func (s Segment) whole() bool { return s.Num == s.Den }

func (s Segment) lines() []Line {
	p := s.Plan
	var out []Line
	if !p.FixedFee.IsZero() {
		fee := p.FixedFee
		desc := "fixed fee"
		q := decimal.NewFromInt(1)
		if !s.whole() {
			q = ratio(s.Num, s.Den)
			desc = fmt.Sprintf("fixed fee, %d/%d of the period", s.Num, s.Den)
		}
		out = append(out, Line{Kind: LineFixedFee, Plan: p.Name, Description: desc, Quantity: q, UnitPrice: fee,
			Amount: mulRatRound(fee, s.Num, s.Den)})
	}
	included := p.IncludedUnits
	if !s.whole() {
		included = new(big.Int).Div(new(big.Int).Mul(big.NewInt(p.IncludedUnits), big.NewInt(s.Num)), big.NewInt(s.Den)).Int64()
	}
	billable := s.Units
	if included > 0 {
		used := min(s.Units, included)
		billable -= used
		out = append(out, Line{Kind: LineIncluded, Plan: p.Name, Description: fmt.Sprintf("included units (%d of %d)", used, included),
			Units: used, Quantity: decimal.NewFromInt(used), UnitPrice: decimal.Zero, Amount: decimal.Zero.Round(MinorUnits)})
	}
	return append(out, p.Price.lines(p.Name, billable)...)
}

// lines prices billable units; no line for zero units, except that a
// per-unit model always shows its one line (the default plan's invoice
// always says units × price).
func (m Model) lines(plan string, units int64) []Line {
	usage := func(desc string, u int64, q int64, price decimal.Decimal) Line {
		qd := decimal.NewFromInt(q)
		return Line{Kind: LineUsage, Plan: plan, Description: desc, Units: u, Quantity: qd, UnitPrice: price,
			Amount: qd.Mul(price).Round(MinorUnits)}
	}
	switch m.Kind {
	case PerUnit:
		return []Line{usage("units", units, units, m.UnitPrice)}
	case Graduated:
		var out []Line
		from := int64(1)
		for _, t := range m.Tiers {
			if from > units {
				break
			}
			to := units
			if t.UpTo != nil && *t.UpTo < units {
				to = *t.UpTo
			}
			l := usage(tierDesc(from, t.UpTo), to-from+1, to-from+1, t.UnitPrice)
			l.TierFrom, l.TierTo = from, bound(t.UpTo)
			out = append(out, l)
			if t.UpTo == nil {
				break
			}
			from = *t.UpTo + 1
		}
		return out
	case Volume:
		if units == 0 {
			return nil
		}
		from := int64(1)
		for _, t := range m.Tiers {
			if t.UpTo == nil || units <= *t.UpTo {
				l := usage("all units at "+tierDesc(from, t.UpTo), units, units, t.UnitPrice)
				l.TierFrom, l.TierTo = from, bound(t.UpTo)
				return []Line{l}
			}
			from = *t.UpTo + 1
		}
	case Package:
		if units == 0 {
			return nil
		}
		n := (units + m.PackageSize - 1) / m.PackageSize
		return []Line{usage(fmt.Sprintf("%d packages of %d units", n, m.PackageSize), units, n, m.PackagePrice)}
	}
	return nil
}

func bound(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

func tierDesc(from int64, upTo *int64) string {
	if upTo == nil {
		return fmt.Sprintf("tier %d and above", from)
	}
	return fmt.Sprintf("tier %d to %d", from, *upTo)
}

// ratio is num/den as a decimal for display (exact when it terminates,
// else 16 places); amounts never use it.
func ratio(num, den int64) decimal.Decimal {
	return decimal.NewFromInt(num).DivRound(decimal.NewFromInt(den), 16)
}

// mulRatRound returns d × num / den rounded half up to MinorUnits, with
// no intermediate rounding (big.Rat is exact).
func mulRatRound(d decimal.Decimal, num, den int64) decimal.Decimal {
	r := new(big.Rat).SetFrac(d.Coefficient(), big.NewInt(1))
	if e := d.Exponent(); e < 0 {
		r.Quo(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-e)), nil)))
	} else if e > 0 {
		r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(e)), nil)))
	}
	r.Mul(r, big.NewRat(num, den))
	return roundRat(r)
}

// roundRat rounds a non-negative rational half up to MinorUnits.
func roundRat(r *big.Rat) decimal.Decimal {
	scaled := new(big.Rat).Mul(r, big.NewRat(100, 1))
	scaled.Add(scaled, big.NewRat(1, 2))
	q := new(big.Int).Quo(scaled.Num(), scaled.Denom()) // floor for non-negative
	return decimal.NewFromBigInt(q, -MinorUnits)
}

// MarshalJSON writes amounts with exactly two decimals and prices with
// at least two ("0.10", "0.0015"), as the API shows money.
func (l Line) MarshalJSON() ([]byte, error) {
	type wire struct {
		Kind        string `json:"kind"`
		Plan        string `json:"plan"`
		Description string `json:"description"`
		Units       int64  `json:"units"`
		Quantity    string `json:"quantity"`
		UnitPrice   string `json:"unit_price"`
		Amount      string `json:"amount"`
		TierFrom    int64  `json:"tier_from,omitempty"`
		TierTo      int64  `json:"tier_to,omitempty"`
	}
	return json.Marshal(wire{l.Kind, l.Plan, l.Description, l.Units, l.Quantity.String(), FormatUnitPrice(l.UnitPrice),
		FormatAmount(l.Amount), l.TierFrom, l.TierTo})
}
