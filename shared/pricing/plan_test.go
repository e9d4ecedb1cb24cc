package pricing

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func ptr(n int64) *int64 { return &n }

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// randomPrice is a price of 0 to 4 decimal places below 10.
func randomPrice(r *rand.Rand) decimal.Decimal {
	return decimal.New(r.Int64N(100_000), -int32(r.IntN(5)))
}

func randomPlan(r *rand.Rand) Plan {
	p := Plan{Name: "p", Currency: "USD", FixedFee: decimal.Zero,
		Limits: []Limit{{Name: "default", Units: 10, WindowSeconds: 60, Algorithm: Fixed}}}
	if r.IntN(2) == 0 {
		p.FixedFee = decimal.New(r.Int64N(1_000_000), -int32(r.IntN(4)))
	}
	if r.IntN(2) == 0 {
		p.IncludedUnits = r.Int64N(2000)
	}
	tiers := func() []Tier {
		n := 1 + r.IntN(5)
		var ts []Tier
		b := int64(0)
		for i := 0; i < n-1; i++ {
			b += 1 + r.Int64N(800)
			ts = append(ts, Tier{UpTo: ptr(b), UnitPrice: randomPrice(r)})
		}
		return append(ts, Tier{UnitPrice: randomPrice(r)})
	}
	switch r.IntN(4) {
	case 0:
		p.Price = Model{Kind: PerUnit, UnitPrice: randomPrice(r)}
	case 1:
		p.Price = Model{Kind: Graduated, Tiers: tiers()}
	case 2:
		p.Price = Model{Kind: Volume, Tiers: tiers()}
	default:
		p.Price = Model{Kind: Package, PackageSize: 1 + r.Int64N(300), PackagePrice: randomPrice(r)}
	}
	return p
}

// independent bills one segment unit by unit: every billable unit adds
// its price to the running sum of the line it belongs to; each line's sum
// is rounded once at the end with decimal's own half-up rounding. It
// shares no code with Compute.
func independent(s Segment) decimal.Decimal {
	p := s.Plan
	total := decimal.Zero
	if !p.FixedFee.IsZero() {
		total = total.Add(p.FixedFee.Mul(decimal.NewFromInt(s.Num)).DivRound(decimal.NewFromInt(s.Den), 2))
	}
	// Allowance: the largest a with a/included <= num/den.
	included := int64(0)
	for (included+1)*s.Den <= p.IncludedUnits*s.Num {
		included++
	}
	billable := s.Units - included
	if billable < 0 {
		billable = 0
	}
	switch p.Price.Kind {
	case PerUnit:
		sum := decimal.Zero
		for i := int64(0); i < billable; i++ {
			sum = sum.Add(p.Price.UnitPrice)
		}
		total = total.Add(sum.Round(2))
	case Graduated:
		sums := map[int]decimal.Decimal{}
		for i := int64(1); i <= billable; i++ {
			t := 0
			for t < len(p.Price.Tiers)-1 && i > *p.Price.Tiers[t].UpTo {
				t++
			}
			sums[t] = sums[t].Add(p.Price.Tiers[t].UnitPrice)
		}
		for _, v := range sums {
			total = total.Add(v.Round(2))
		}
	case Volume:
		if billable > 0 {
			t := len(p.Price.Tiers) - 1
			for k := len(p.Price.Tiers) - 2; k >= 0; k-- {
				if billable <= *p.Price.Tiers[k].UpTo {
					t = k
				}
			}
			sum := decimal.Zero
			for i := int64(0); i < billable; i++ {
				sum = sum.Add(p.Price.Tiers[t].UnitPrice)
			}
			total = total.Add(sum.Round(2))
		}
	case Package:
		sum := decimal.Zero
		for i := int64(0); i < billable; i++ {
			if i%p.Price.PackageSize == 0 {
				sum = sum.Add(p.Price.PackagePrice)
			}
		}
		total = total.Add(sum.Round(2))
	}
	return total
}

// TestInvoiceProperties: for random plans, plan changes and usage, the
// total equals the sum of the lines, equals an independent unit-by-unit
// calculation, and is within half a cent per line of the unrounded sum.
func TestInvoiceProperties(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	r := rand.New(rand.NewPCG(seed, 13))
	for c := 0; c < 3000; c++ {
		n := 1 + r.IntN(3)
		den := int64(30*86400 + r.IntN(2)*86400)
		var segs []Segment
		left := den
		for i := 0; i < n; i++ {
			num := left
			if i < n-1 {
				num = 1 + r.Int64N(left-int64(n-i-1))
			}
			left -= num
			segs = append(segs, Segment{Plan: randomPlan(r), Units: r.Int64N(5000), Num: num, Den: den})
		}
		inv := Compute(segs)
		sum := decimal.Zero
		var units int64
		for _, l := range inv.Lines {
			sum = sum.Add(l.Amount)
			// A prorated fee's quantity is a display ratio (16 places); its
			// amount is checked against the independent calculation.
			prorated := l.Kind == LineFixedFee && !l.Quantity.Equal(decimal.NewFromInt(1))
			if l.Amount.Exponent() < -2 || (!prorated && !l.Amount.Equal(l.Quantity.Mul(l.UnitPrice).Round(2))) {
				t.Fatalf("seed %d case %d: line %+v is not quantity x price rounded once", seed, c, l)
			}
			if l.Kind != LineFixedFee {
				units += l.Units
			}
		}
		want := decimal.Zero
		var wantUnits int64
		for _, s := range segs {
			want = want.Add(independent(s))
			wantUnits += s.Units
		}
		if !inv.Total.Equal(sum) || !inv.Subtotal.Equal(sum) || !inv.Total.Equal(want) {
			t.Fatalf("seed %d case %d: total %s, sum of lines %s, independent %s\nsegments %+v\nlines %+v", seed, c, inv.Total, sum, want, segs, inv.Lines)
		}
		if units != wantUnits || inv.Units != wantUnits {
			t.Fatalf("seed %d case %d: lines cover %d units, invoice says %d, recorded %d", seed, c, units, inv.Units, wantUnits)
		}
	}
}

// TestDefaultPlanBillsAsToday: the default plan built from the seed's
// variables bills exactly units × BILLING_UNIT_PRICE rounded as GET
// /billing rounds, for any usage and price.
func TestDefaultPlanBillsAsToday(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	r := rand.New(rand.NewPCG(seed, 1))
	for c := 0; c < 20000; c++ {
		price := decimal.New(r.Int64N(1_000_000), -int32(r.IntN(7)))
		units := r.Int64N(1 << uint(r.IntN(50)))
		p := DefaultPlan(1000, 24*time.Hour, price, "USD")
		if err := p.Validate(); err != nil {
			t.Fatal(err)
		}
		inv := p.Compute(units)
		if want := Price(units, price); !inv.Total.Equal(want) || len(inv.Lines) != 1 {
			t.Fatalf("seed %d: %d units at %s: plan bills %s in %d lines, GET /billing %s", seed, units, price, inv.Total, len(inv.Lines), want)
		}
	}
	p := DefaultPlan(1000, 24*time.Hour, dec("0.01"), "USD")
	if got := p.Compute(1000).Total.StringFixed(2); got != "10.00" {
		t.Fatalf("the seed's example: %s", got)
	}
	if l := p.Limits; len(l) != 1 || l[0] != (Limit{Name: "default", Units: 1000, WindowSeconds: 86400, Algorithm: Fixed}) {
		t.Fatalf("limits %+v", l)
	}
}

// TestWorkedExample is the example of docs/plans-and-invoices.md.
func TestWorkedExample(t *testing.T) {
	t.Parallel()
	p, err := ParsePlan([]byte(`{
  "name": "growth", "currency": "USD", "fixed_fee": "49.00", "included_units": 10000,
  "price": {"kind": "graduated", "tiers": [
    {"up_to": 100000, "unit_price": "0.002"},
    {"up_to": 1000000, "unit_price": "0.0015"},
    {"up_to": null, "unit_price": "0.001"}]},
  "limits": [{"name": "burst", "units": 50, "window_seconds": 1, "algorithm": "sliding"},
             {"name": "daily", "units": 200000, "window_seconds": 86400, "algorithm": "fixed"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	inv := p.Compute(1_234_567)
	var got []string
	for _, l := range inv.Lines {
		got = append(got, fmt.Sprintf("%s|%d|%s|%s", l.Description, l.Units, FormatUnitPrice(l.UnitPrice), FormatAmount(l.Amount)))
	}
	want := []string{
		"fixed fee|0|49.00|49.00",
		"included units (10000 of 10000)|10000|0.00|0.00",
		"tier 1 to 100000|100000|0.002|200.00",
		"tier 100001 to 1000000|900000|0.0015|1350.00",
		"tier 1000001 and above|224567|0.001|224.57",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") || FormatAmount(inv.Total) != "1823.57" {
		t.Fatalf("lines\n%s\ntotal %s", strings.Join(got, "\n"), inv.Total)
	}
	b, _ := json.Marshal(inv.Lines[4])
	if string(b) != `{"kind":"usage","plan":"growth","description":"tier 1000001 and above","units":224567,"quantity":"224567","unit_price":"0.001","amount":"224.57","tier_from":1000001}` {
		t.Fatalf("json %s", b)
	}
}

// TestPlanChangeProrates: half a month on a 30.00 plan with 1,000
// included units, half on a 90.00 plan with 3,000: each fee and
// allowance is halved, each plan prices its own half's units.
func TestPlanChangeProrates(t *testing.T) {
	t.Parallel()
	lim := []Limit{{Name: "default", Units: 10, WindowSeconds: 60, Algorithm: Fixed}}
	a := Plan{Name: "small", Currency: "USD", FixedFee: dec("30"), IncludedUnits: 1000, Price: Model{Kind: PerUnit, UnitPrice: dec("0.01")}, Limits: lim}
	b := Plan{Name: "large", Currency: "USD", FixedFee: dec("90"), IncludedUnits: 3001, Price: Model{Kind: PerUnit, UnitPrice: dec("0.005")}, Limits: lim}
	inv := Compute([]Segment{{Plan: a, Units: 700, Num: 15, Den: 30}, {Plan: b, Units: 2000, Num: 15, Den: 30}})
	// small: 15.00 + 500 included + 200 × 0.01 = 2.00; large: 45.00 +
	// 1500 included (3001/2 rounded down) + 500 × 0.005 = 2.50.
	if FormatAmount(inv.Total) != "64.50" || len(inv.Lines) != 6 || inv.Lines[1].Units != 500 || inv.Lines[4].Units != 1500 {
		t.Fatalf("%s %+v", inv.Total, inv.Lines)
	}
	// A third of 10.00 is 3.333… → 3.33; two thirds 6.666… → 6.67.
	c := a
	c.FixedFee = dec("10")
	if got := Compute([]Segment{{Plan: c, Num: 1, Den: 3}, {Plan: c, Num: 2, Den: 3}}); FormatAmount(got.Total) != "10.00" ||
		FormatAmount(got.Lines[0].Amount) != "3.33" || FormatAmount(got.Lines[3].Amount) != "6.67" {
		t.Fatalf("%+v", got.Lines)
	}
}

func TestParsePlanRejects(t *testing.T) {
	t.Parallel()
	ok := `{"name":"x","currency":"USD","fixed_fee":"0","included_units":0,"price":{"kind":"per_unit","unit_price":"0.01"},"limits":[{"name":"default","units":1,"window_seconds":1,"algorithm":"fixed"}]}`
	if _, err := ParsePlan([]byte(ok)); err != nil {
		t.Fatal(err)
	}
	bad := map[string]string{
		"name":           strings.Replace(ok, `"name":"x"`, `"name":"X Y"`, 1),
		"long name":      strings.Replace(ok, `"name":"x"`, `"name":"`+strings.Repeat("a", 65)+`"`, 1),
		"currency":       strings.Replace(ok, `"USD"`, `"usd"`, 1),
		"negative fee":   strings.Replace(ok, `"fixed_fee":"0"`, `"fixed_fee":"-1"`, 1),
		"fee places":     strings.Replace(ok, `"fixed_fee":"0"`, `"fixed_fee":"0.00000000001"`, 1),
		"included":       strings.Replace(ok, `"included_units":0`, `"included_units":-1`, 1),
		"kind":           strings.Replace(ok, `"per_unit"`, `"flat"`, 1),
		"unknown field":  strings.Replace(ok, `"name":"x"`, `"name":"x","tax":1`, 1),
		"trailing":       ok + `{}`,
		"no limits":      strings.Replace(ok, `[{"name":"default","units":1,"window_seconds":1,"algorithm":"fixed"}]`, `[]`, 1),
		"algorithm":      strings.Replace(ok, `"fixed"}`, `"leaky"}`, 1),
		"window":         strings.Replace(ok, `"window_seconds":1`, `"window_seconds":0`, 1),
		"dup limit":      strings.Replace(ok, `"fixed"}]`, `"fixed"},{"name":"default","units":1,"window_seconds":1,"algorithm":"fixed"}]`, 1),
		"tiers unsorted": strings.Replace(ok, `{"kind":"per_unit","unit_price":"0.01"}`, `{"kind":"graduated","tiers":[{"up_to":10,"unit_price":"1"},{"up_to":5,"unit_price":"1"},{"up_to":null,"unit_price":"1"}]}`, 1),
		"last bounded":   strings.Replace(ok, `{"kind":"per_unit","unit_price":"0.01"}`, `{"kind":"volume","tiers":[{"up_to":10,"unit_price":"1"}]}`, 1),
		"mid unbounded":  strings.Replace(ok, `{"kind":"per_unit","unit_price":"0.01"}`, `{"kind":"volume","tiers":[{"up_to":null,"unit_price":"1"},{"up_to":null,"unit_price":"1"}]}`, 1),
		"package size":   strings.Replace(ok, `{"kind":"per_unit","unit_price":"0.01"}`, `{"kind":"package","package_size":0,"package_price":"1"}`, 1),
		"mixed model":    strings.Replace(ok, `{"kind":"per_unit","unit_price":"0.01"}`, `{"kind":"per_unit","unit_price":"0.01","package_size":5}`, 1),
		"huge price":     strings.Replace(ok, `"0.01"`, `"1e40"`, 1),
		"not json":       `{`,
	}
	for name, b := range bad {
		if _, err := ParsePlan([]byte(b)); err == nil {
			t.Errorf("%s: accepted %s", name, b)
		}
	}
}

// TestPlanJSONRoundTrip: a plan written and read back is the same plan.
func TestPlanJSONRoundTrip(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 200; i++ {
		p := randomPlan(r)
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		q, err := ParsePlan(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !q.Compute(4321).Total.Equal(p.Compute(4321).Total) {
			t.Fatalf("%s", b)
		}
	}
}
