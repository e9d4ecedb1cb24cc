package invoicing

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/apikey"
	"github.com/ratebill/platform/shared/postgres"
	"github.com/ratebill/platform/shared/pricing"
	"github.com/ratebill/platform/shared/testdb"
)

type bundle struct {
	svc   *Service
	store *postgres.Store
	pool  *pgxpool.Pool
	now   time.Time
}

func setup(t *testing.T, now time.Time) *bundle {
	t.Helper()
	pool := testdb.Pool(t)
	store := postgres.NewStore(pool)
	b := &bundle{store: store, pool: pool, now: now}
	b.svc = &Service{Store: store, Default: pricing.DefaultPlan(1000, 24*time.Hour, decimal.RequireFromString("0.01"), "USD"),
		Now: func() time.Time { return b.now }}
	return b
}

// user creates a user whose account dates from created.
func (b *bundle) user(t *testing.T, name string, created time.Time) int64 {
	t.Helper()
	key, _ := apikey.Generate(nil)
	u, err := b.store.CreateUser(context.Background(), name, name+"@example.com", apikey.Hash(key), apikey.Display(key))
	if err != nil {
		t.Fatal(err)
	}
	b.exec(t, `UPDATE users SET created_at = $2 WHERE id = $1`, u.ID, created)
	return u.ID
}

func (b *bundle) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := b.pool.Exec(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// events records n calls of cost units each at time at, with their
// rollups, as the grouped write does (WriteUsage stamps the database's
// clock; these tests need other months).
func (b *bundle) events(t *testing.T, user int64, at time.Time, n int, units int64) {
	t.Helper()
	b.exec(t, `
WITH ins AS (
    INSERT INTO usage_events (user_id, request_id, endpoint, units, created_at)
    SELECT $1, 'r-' || md5(random()::text) || g, '/usage', $3, $2 FROM generate_series(1, $4) g
    RETURNING user_id, created_at, units
)
INSERT INTO usage_minutes AS m (user_id, minute, requests, units)
SELECT user_id, date_trunc('minute', created_at), count(*), sum(units) FROM ins GROUP BY 1, 2
ON CONFLICT (user_id, minute) DO UPDATE SET requests = m.requests + EXCLUDED.requests, units = m.units + EXCLUDED.units`,
		user, at, units, n)
}

func plan(t *testing.T, js string) pricing.Plan {
	t.Helper()
	p, err := pricing.ParsePlan([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustPeriod(s string) Period {
	p, err := ParsePeriod("period", s)
	if err != nil {
		panic(err)
	}
	return p
}

func TestParsePeriod(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"2026-11", "2000-01", "9999-12"} {
		if p, err := ParsePeriod("period", ok); err != nil || p.String() != ok {
			t.Errorf("%q: %v %v", ok, p, err)
		}
	}
	for _, bad := range []string{"", "2026-13", "2026-00", "26-11", "2026-1", "2026/11", "1999-12", "２０２６-11", "2026-11 ", "2026-11-01", "-2026-11", string(make([]byte, 10000))} {
		if _, err := ParsePeriod("period", bad); shared.ErrorCode(err) != shared.EInvalid {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if p := mustPeriod("2026-01").Prev(); p.String() != "2025-12" {
		t.Fatal(p)
	}
	if e := mustPeriod("2026-12").End(); !e.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatal(e)
	}
}

// TestOpenInvoiceDefaultPlan: with no assignment a user is billed by the
// default plan, exactly as GET /billing bills: units × price, from the
// calls the grouped write recorded.
func TestOpenInvoiceDefaultPlan(t *testing.T) {
	t.Parallel()
	b := setup(t, time.Now().UTC())
	ctx := context.Background()
	u := b.user(t, "plain", b.now.Add(-time.Hour))
	var evs []shared.UsageEvent
	for i, units := range []int64{1, 1, 4, 0} {
		evs = append(evs, shared.UsageEvent{UserID: u, RequestID: fmt.Sprintf("req-%06d", i), Endpoint: "/usage", Units: units})
	}
	if _, err := b.store.WriteUsage(ctx, evs); err != nil {
		t.Fatal(err)
	}
	b.now = time.Now().UTC() // the period of the database's clock
	inv, err := b.svc.Invoice(ctx, u, PeriodOf(b.now))
	if err != nil {
		t.Fatal(err)
	}
	if inv.Status != shared.InvoiceOpen || inv.Requests != 4 || inv.Units() != 7 || pricing.FormatAmount(inv.Total) != "0.07" ||
		len(inv.Lines) != 1 || inv.Lines[0].Units != 7 || inv.Currency != "USD" || inv.Segments[0].Plan.Name != "default" {
		t.Fatalf("%+v", inv)
	}
	// The future and before the account are 404s.
	if _, err := b.svc.Invoice(ctx, u, PeriodOf(b.now.AddDate(0, 1, 0))); shared.ErrorCode(err) != shared.ENotFound {
		t.Fatalf("next month: %v", err)
	}
	if _, err := b.svc.Invoice(ctx, u, PeriodOf(b.now.AddDate(0, -2, 0))); shared.ErrorCode(err) != shared.ENotFound {
		t.Fatalf("before the account: %v", err)
	}
}

// TestRandomPlansAgainstEvents: for random plans, plan changes and
// events over a past month, the invoice (from the rollups) equals an
// independent calculation from the raw events (counted per plan segment
// in SQL, priced unit by unit), and its total is the sum of its lines.
func TestRandomPlansAgainstEvents(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	r := rand.New(rand.NewPCG(seed, 3))
	b := setup(t, time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC))
	ctx := context.Background()
	p := mustPeriod("2026-11")
	plans := []string{
		`{"name":"grad","currency":"USD","fixed_fee":"19.99","included_units":100,"price":{"kind":"graduated","tiers":[{"up_to":50,"unit_price":"0.05"},{"up_to":300,"unit_price":"0.013"},{"up_to":null,"unit_price":"0.0007"}]},"limits":[{"name":"default","units":100,"window_seconds":60,"algorithm":"fixed"}]}`,
		`{"name":"vol","currency":"USD","fixed_fee":"0","included_units":0,"price":{"kind":"volume","tiers":[{"up_to":200,"unit_price":"0.02"},{"up_to":null,"unit_price":"0.015"}]},"limits":[{"name":"default","units":100,"window_seconds":60,"algorithm":"sliding"}]}`,
		`{"name":"pack","currency":"USD","fixed_fee":"5","included_units":10,"price":{"kind":"package","package_size":100,"package_price":"1.25"},"limits":[{"name":"default","units":100,"window_seconds":60,"algorithm":"fixed"}]}`,
	}
	for _, js := range plans {
		if err := b.store.CreatePlan(ctx, plan(t, js)); err != nil {
			t.Fatal(err)
		}
	}
	names := []string{"default", "grad", "vol", "pack"}
	for c := 0; c < 12; c++ {
		u := b.user(t, fmt.Sprintf("rnd%d", c), p.Start().AddDate(0, -1, 0))
		// Up to three plan changes, at whole minutes; one maybe before the period.
		for k := r.IntN(4); k > 0; k-- {
			at := p.Start().Add(time.Duration(r.Int64N(int64(30*24*time.Hour))) - 24*time.Hour).Truncate(time.Minute)
			if err := b.store.AssignPlan(ctx, shared.PlanAssignment{UserID: u, Plan: names[r.IntN(len(names))], EffectiveFrom: at}); err != nil {
				t.Fatal(err)
			}
		}
		for k := r.IntN(30); k > 0; k-- {
			at := p.Start().Add(time.Duration(r.Int64N(int64(p.End().Sub(p.Start())))))
			b.events(t, u, at, 1+r.IntN(40), 1+r.Int64N(5))
		}
		b.events(t, u, p.Start().Add(-time.Second), 3, 1) // outside: October
		b.events(t, u, p.End(), 3, 1)                     // outside: December
		inv, err := b.svc.Invoice(ctx, u, p)
		if err != nil {
			t.Fatal(err)
		}
		want := b.independent(t, u, p)
		sum := decimal.Zero
		for _, l := range inv.Lines {
			sum = sum.Add(l.Amount)
		}
		if !inv.Total.Equal(want) || !inv.Total.Equal(sum) {
			t.Fatalf("seed %d user %d: total %s, lines %s, from the events %s\n%+v", seed, u, inv.Total, sum, want, inv.Lines)
		}
	}
}

// independent prices the period from usage_events: the plan of each
// event is the latest assignment at or before it (SQL), segments and
// their shares from the assignments, each segment unit by unit.
func (b *bundle) independent(t *testing.T, user int64, p Period) decimal.Decimal {
	t.Helper()
	pool := b.pool
	ctx := context.Background()
	rows, err := pool.Query(ctx, `
WITH bounds AS (
    SELECT $2::timestamptz AS f
    UNION SELECT effective_from FROM plan_assignments WHERE user_id = $1 AND effective_from > $2 AND effective_from < $3
), segs AS (
    SELECT f, coalesce(lead(f) OVER (ORDER BY f), $3) AS t FROM bounds
)
SELECT extract(epoch FROM s.t - s.f)::bigint,
       coalesce((SELECT plan_name FROM plan_assignments a WHERE a.user_id = $1 AND a.effective_from <= s.f ORDER BY effective_from DESC LIMIT 1), 'default'),
       (SELECT coalesce(sum(units), 0)::bigint FROM usage_events e WHERE e.user_id = $1 AND e.created_at >= s.f AND e.created_at < s.t)
FROM segs s ORDER BY s.f`, user, p.Start(), p.End())
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	stored, err := b.store.Plans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]pricing.Plan{}
	for _, sp := range stored {
		byName[sp.Name] = sp.Plan
	}
	byName["default"] = b.svc.Default
	den := int64(p.End().Sub(p.Start()) / time.Second)
	total := decimal.Zero
	for rows.Next() {
		var secs, units int64
		var name string
		if err := rows.Scan(&secs, &name, &units); err != nil {
			t.Fatal(err)
		}
		total = total.Add(unitByUnit(byName[name], units, secs, den))
	}
	return total
}

// unitByUnit bills one segment by adding each billable unit's price to
// its line's running sum, rounding each line once.
func unitByUnit(p pricing.Plan, units, num, den int64) decimal.Decimal {
	total := p.FixedFee.Mul(decimal.NewFromInt(num)).DivRound(decimal.NewFromInt(den), 2)
	included := decimal.NewFromInt(p.IncludedUnits * num).Div(decimal.NewFromInt(den)).Floor().IntPart()
	billable := max(0, units-included)
	lines := map[string]decimal.Decimal{}
	tierOf := func(i int64) int {
		k := 0
		for k < len(p.Price.Tiers)-1 && i > *p.Price.Tiers[k].UpTo {
			k++
		}
		return k
	}
	for i := int64(1); i <= billable; i++ {
		switch p.Price.Kind {
		case pricing.PerUnit:
			lines["u"] = lines["u"].Add(p.Price.UnitPrice)
		case pricing.Graduated:
			k := tierOf(i)
			lines[fmt.Sprint(k)] = lines[fmt.Sprint(k)].Add(p.Price.Tiers[k].UnitPrice)
		case pricing.Volume:
			lines["v"] = lines["v"].Add(p.Price.Tiers[tierOf(billable)].UnitPrice)
		case pricing.Package:
			if (i-1)%p.Price.PackageSize == 0 {
				lines["p"] = lines["p"].Add(p.Price.PackagePrice)
			}
		}
	}
	for _, v := range lines {
		total = total.Add(v.Round(2))
	}
	return total
}

// TestPlanChangeMidPeriod: small (30.00, 1,000 included, 0.01) until
// 16 November 00:00, then large (90.00, 3,000 included, 0.005): each
// fee and allowance prorated by time (15 and 15 of 30 days), each
// plan's price on the units made under it.
func TestPlanChangeMidPeriod(t *testing.T) {
	t.Parallel()
	b := setup(t, time.Date(2026, 12, 10, 0, 0, 0, 0, time.UTC))
	ctx := context.Background()
	p := mustPeriod("2026-11")
	lim := `"limits":[{"name":"default","units":100,"window_seconds":60,"algorithm":"fixed"}]`
	for _, js := range []string{
		`{"name":"small","currency":"USD","fixed_fee":"30","included_units":1000,"price":{"kind":"per_unit","unit_price":"0.01"},` + lim + `}`,
		`{"name":"large","currency":"USD","fixed_fee":"90","included_units":3000,"price":{"kind":"per_unit","unit_price":"0.005"},` + lim + `}`,
	} {
		if err := b.store.CreatePlan(ctx, plan(t, js)); err != nil {
			t.Fatal(err)
		}
	}
	u := b.user(t, "switcher", p.Start().AddDate(0, -2, 0))
	change := time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC)
	for _, a := range []shared.PlanAssignment{{UserID: u, Plan: "small", EffectiveFrom: p.Start().AddDate(0, -1, 0)}, {UserID: u, Plan: "large", EffectiveFrom: change}} {
		if err := b.store.AssignPlan(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	b.events(t, u, change.Add(-time.Minute+time.Second), 700, 1) // the last minute of small
	b.events(t, u, change, 2000, 1)                              // the first of large
	inv, err := b.svc.Invoice(ctx, u, p)
	if err != nil {
		t.Fatal(err)
	}
	// small: 15.00 + 500 included + 200 × 0.01 = 2.00
	// large: 45.00 + 1500 included + 500 × 0.005 = 2.50
	got := ""
	for _, l := range inv.Lines {
		got += fmt.Sprintf("%s %s %d %s\n", l.Plan, l.Kind, l.Units, pricing.FormatAmount(l.Amount))
	}
	want := "small fixed_fee 0 15.00\nsmall included 500 0.00\nsmall usage 200 2.00\nlarge fixed_fee 0 45.00\nlarge included 1500 0.00\nlarge usage 500 2.50\n"
	if got != want || pricing.FormatAmount(inv.Total) != "64.50" || len(inv.Segments) != 2 || inv.Segments[1].Units != 2000 ||
		!inv.Segments[1].From.Equal(change) {
		t.Fatalf("got\n%swant\n%stotal %s segments %+v", got, want, inv.Total, inv.Segments)
	}
	// A change is a whole minute: 12:34:56 takes effect at 12:34.
	if err := b.store.AssignPlan(ctx, shared.PlanAssignment{UserID: u, Plan: "default", EffectiveFrom: time.Date(2026, 11, 20, 12, 34, 56, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	as, err := b.store.Assignments(ctx, u, p.Start(), p.End())
	if err != nil || len(as) != 3 || !as[2].From.Equal(time.Date(2026, 11, 20, 12, 34, 0, 0, time.UTC)) || !as[2].Plan.FromConfig {
		t.Fatalf("%+v %v", as, err)
	}
	if err := b.store.AssignPlan(ctx, shared.PlanAssignment{UserID: u, Plan: "nope", EffectiveFrom: change}); shared.ErrorCode(err) != shared.ENotFound {
		t.Fatalf("unknown plan: %v", err)
	}
	if err := b.store.AssignPlan(ctx, shared.PlanAssignment{UserID: u + 1000, Plan: "small", EffectiveFrom: change}); shared.ErrorCode(err) != shared.ENotFound {
		t.Fatalf("unknown user: %v", err)
	}
}

// TestCloseConcurrentlyAndLateEvents: two closing runs at once store
// each invoice exactly once, equal to the open invoice before; a third
// run stores nothing; the stored row cannot be changed; a plan change
// into the closed period is refused; an event recorded for the closed
// month afterwards leaves its invoice alone and is carried into the next.
func TestCloseConcurrentlyAndLateEvents(t *testing.T) {
	t.Parallel()
	p := mustPeriod("2026-10")
	b := setup(t, p.End().Add(30*time.Minute))
	ctx := context.Background()
	var users []int64
	for i := 0; i < 25; i++ {
		u := b.user(t, fmt.Sprintf("c%d", i), p.Start().Add(-time.Hour))
		b.events(t, u, p.Start().Add(time.Duration(i)*time.Hour), i, 3)
		users = append(users, u)
	}
	later := b.user(t, "later", p.End().Add(time.Minute)) // no October invoice
	open, err := b.svc.Invoice(ctx, users[7], p)
	if err != nil || open.Status != shared.InvoiceOpen || pricing.FormatAmount(open.Total) != "0.21" {
		t.Fatalf("%+v %v", open, err)
	}
	if _, err := b.svc.Close(ctx, p); shared.ErrorCode(err) != shared.EInvalid {
		t.Fatalf("closing within the grace time: %v", err)
	}
	b.now = p.End().Add(2 * time.Hour)
	var wg sync.WaitGroup
	results := make([]CloseResult, 2)
	errs := make([]error, 2)
	for i := range results {
		wg.Add(1)
		go func() { defer wg.Done(); results[i], errs[i] = b.svc.Close(ctx, p) }()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil || results[0].Closed+results[1].Closed != 25 {
		t.Fatalf("%+v %v", results, errs)
	}
	if again, err := b.svc.Close(ctx, p); err != nil || again.Closed != 0 || again.Already != 0 {
		t.Fatalf("third run: %+v %v", again, err)
	}
	closed, err := b.svc.Invoice(ctx, users[7], p)
	if err != nil || closed.Status != shared.InvoiceClosed || !closed.Total.Equal(open.Total) || closed.RecordedUnits != 21 ||
		len(closed.Lines) != 1 || closed.Segments[0].Plan.Name != "default" {
		t.Fatalf("%+v %v", closed, err)
	}
	if _, err := b.store.Invoice(ctx, later, p.String()); shared.ErrorCode(err) != shared.ENotFound {
		t.Fatalf("a user created after the period got an invoice: %v", err)
	}
	pool := b.pool
	if _, err := pool.Exec(ctx, `UPDATE invoices SET total = 0 WHERE user_id = $1`, users[7]); err == nil {
		t.Fatal("a closed invoice was updated")
	}
	if _, err := pool.Exec(ctx, `DELETE FROM invoices WHERE user_id = $1`, users[7]); err == nil {
		t.Fatal("a closed invoice was deleted")
	}
	if err := b.store.AssignPlan(ctx, shared.PlanAssignment{UserID: users[7], Plan: "default", EffectiveFrom: p.Start().Add(time.Hour)}); shared.ErrorCode(err) != shared.EConflict {
		t.Fatalf("a plan change into a closed period: %v", err)
	}

	// Late: 5 calls of 2 units stamped in October's last minute, after it closed.
	b.events(t, users[7], p.End().Add(-time.Second), 5, 2)
	b.events(t, users[7], p.End().Add(time.Hour), 1, 1) // and one in November
	after, err := b.svc.Invoice(ctx, users[7], p)
	if err != nil || !after.Total.Equal(closed.Total) || after.RecordedUnits != 21 || !after.ComputedAt.Equal(closed.ComputedAt) {
		t.Fatalf("the closed invoice changed: %+v %v", after, err)
	}
	next, err := b.svc.Invoice(ctx, users[7], PeriodOf(p.End()))
	if err != nil || next.CarriedUnits != 10 || next.RecordedUnits != 1 || next.Units() != 11 || pricing.FormatAmount(next.Total) != "0.11" {
		t.Fatalf("November: %+v %v", next, err)
	}
}
