package pricing

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/shopspring/decimal"
)

// smallPlan is a small plan of any price model, with prices in cents
// and tenths of cents, so that caps bind within a few thousand units.
func smallPlan(r *rand.Rand) Plan {
	price := func() decimal.Decimal { return decimal.New(r.Int64N(60)+5, -3) } // 0.005 to 0.064
	p := Plan{Name: "p", Currency: "USD", FixedFee: decimal.New(r.Int64N(300), -2), IncludedUnits: r.Int64N(50)}
	switch r.IntN(4) {
	case 0:
		p.Price = Model{Kind: PerUnit, UnitPrice: price()}
	case 1, 2:
		kind := Graduated
		if r.IntN(2) == 0 {
			kind = Volume
		}
		n, bound := r.IntN(4)+1, int64(0)
		for i := range n {
			t := Tier{UnitPrice: price()}
			if i < n-1 {
				bound += r.Int64N(300) + 1
				b := bound
				t.UpTo = &b
			}
			p.Price.Tiers = append(p.Price.Tiers, t)
		}
		p.Price.Kind = kind
	default:
		p.Price = Model{Kind: Package, PackageSize: r.Int64N(20) + 1, PackagePrice: price().Mul(decimal.NewFromInt(20))}
	}
	p.Limits = []Limit{{Name: "default", Units: 1, WindowSeconds: 1, Algorithm: Fixed}}
	if err := p.Validate(); err != nil {
		panic(err)
	}
	return p
}

// TestUnitsWithinProperty: for random plans and caps, the converted
// units are exactly what a unit-by-unit walk of the invoice finds: every
// count up to them costs at most the cap (never a cent over), and one
// more unit would cost more.
func TestUnitsWithinProperty(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(13, 2026))
	for i := range 500 {
		p := smallPlan(r)
		limit := decimal.New(r.Int64N(1000), -2) // 0.00 to 9.99
		got := p.UnitsWithin(limit)
		want, found := int64(0), false
		for u := int64(0); u <= 20000; u++ {
			if p.Compute(u).Total.GreaterThan(limit) {
				want, found = u-1, true
				break
			}
		}
		if !found {
			t.Fatalf("case %d: no count up to 20000 costs more than %s under %+v", i, limit, p.Price)
		}
		if want < 0 {
			want = 0 // the fixed fee alone is over the cap: nothing may be served
		}
		if got != want {
			t.Fatalf("case %d: UnitsWithin(%s) = %d, want %d (plan %s)", i, limit, got, want, fmt.Sprint(p.FixedFee, p.IncludedUnits, p.Price))
		}
	}
}

func TestUnitsWithinEdges(t *testing.T) {
	t.Parallel()
	up := func(n int64) *int64 { return &n }
	graduated := Plan{Name: "g", Currency: "USD", FixedFee: decimal.RequireFromString("10.00"), IncludedUnits: 1000,
		Price: Model{Kind: Graduated, Tiers: []Tier{
			{UpTo: up(100), UnitPrice: decimal.RequireFromString("0.10")},
			{UnitPrice: decimal.RequireFromString("0.05")}}}}
	volume := Plan{Name: "v", Currency: "USD", Price: Model{Kind: Volume, Tiers: []Tier{
		{UpTo: up(100), UnitPrice: decimal.RequireFromString("0.10")},
		{UnitPrice: decimal.RequireFromString("0.01")}}}}
	free := Plan{Name: "f", Currency: "USD", Price: Model{Kind: PerUnit, UnitPrice: decimal.Zero}}
	for _, tt := range []struct {
		name string
		p    Plan
		cap  string
		want int64
	}{
		{"fee over the cap", graduated, "9.99", 0},
		{"fee exactly the cap: the allowance", graduated, "10.00", 1000},
		{"a cent short of the first billable unit", graduated, "10.09", 1000},
		{"first billable unit", graduated, "10.10", 1001},
		{"whole first tier", graduated, "20.00", 1100},
		{"into the second tier", graduated, "20.05", 1101},
		{"second tier, rounding", graduated, "20.07", 1101},
		// Volume: 100 units cost 10.00, 101 cost 1.01; a cap of 5.00
		// stops at 50, though 101..500 would cost less than 5.00 again.
		{"volume stops at the first count over", volume, "5.00", 50},
		{"volume, cap above the first tier's top", volume, "10.00", 1000},
		{"free units", free, "0.00", maxUnits},
	} {
		if got := tt.p.UnitsWithin(decimal.RequireFromString(tt.cap)); got != tt.want {
			t.Errorf("%s: UnitsWithin(%s) = %d, want %d", tt.name, tt.cap, got, tt.want)
		}
	}
}

func TestParseCap(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"50": "50.00", "50.5": "50.50", "0": "0.00", "0.01": "0.01", "1000000000000000": "1000000000000000.00"} {
		if got, err := ParseCap(in); err != nil || got.StringFixed(2) != want {
			t.Errorf("ParseCap(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "+1", "1e3", "0.001", "1,00", " 1", "1 ", "abc", ".", "1000000000000000.01", "NaN", "Infinity", "0x10", "١"} {
		if _, err := ParseCap(in); err == nil {
			t.Errorf("ParseCap(%q) accepted", in)
		}
	}
}
