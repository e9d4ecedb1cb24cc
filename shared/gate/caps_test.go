package gate_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/auth"
	"github.com/ratebill/platform/shared/gate"
	"github.com/ratebill/platform/shared/meter"
	"github.com/ratebill/platform/shared/postgres"
	"github.com/ratebill/platform/shared/pricing"
	"github.com/ratebill/platform/shared/ratelimit"
	"github.com/ratebill/platform/shared/testdb"
)

// cappedPlan: a fee of 1.00, 100 units included, then 50 units at 0.10
// and the rest at 0.05. A cap of 10.00 buys 230 units: 1.00 + 5.00 +
// 80 × 0.05.
func cappedPlan(t *testing.T, b bundle, user int64) {
	t.Helper()
	fifty := int64(50)
	p := pricing.Plan{Name: "capped", Currency: "USD", FixedFee: decimal.RequireFromString("1.00"), IncludedUnits: 100,
		Price: pricing.Model{Kind: pricing.Graduated, Tiers: []pricing.Tier{
			{UpTo: &fifty, UnitPrice: decimal.RequireFromString("0.10")},
			{UnitPrice: decimal.RequireFromString("0.05")}}},
		Limits: []pricing.Limit{{Name: "default", Units: 1_000_000, WindowSeconds: 3600, Algorithm: pricing.Fixed}}}
	ctx := context.Background()
	if err := b.store.CreatePlan(ctx, p); err != nil && shared.ErrorCode(err) != shared.EConflict {
		t.Fatal(err)
	}
	if err := b.store.AssignPlan(ctx, shared.PlanAssignment{UserID: user, Plan: "capped", EffectiveFrom: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
}

func setCap(t *testing.T, b bundle, amount string) {
	t.Helper()
	a := decimal.RequireFromString(amount)
	v, err := b.store.SetSpendCap(context.Background(), postgres.Actor{Type: postgres.ActorUser, ID: b.userID}, b.userID, &a)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.limiter.PublishVersion(context.Background(), b.userID, v); err != nil {
		t.Fatal(err)
	}
}

// replica is a second gate over the same Postgres and Redis, with its own
// Redis client, auth cache and recorder, as another instance has.
func replica(t *testing.T, b bundle, o gate.Options) *gate.Gate {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: testdb.Redis(t).Options().Addr})
	t.Cleanup(func() { rdb.Close() })
	rec := meter.New(b.store, meter.Options{Timeout: 2 * time.Second})
	t.Cleanup(func() { rec.Close(context.Background()) })
	return gate.New(auth.New(b.store, time.Minute, 100), ratelimit.New(rdb).WithLedger(b.store), rec, o)
}

// TestSpendCapExactAcrossReplicas: 400 concurrent calls over two replicas
// against a cap of 10.00 under a plan with a fee, an allowance and
// graduated prices: exactly the 230 units the cap buys are served and
// billed, the month's invoice is exactly 10.00, and every other call is
// a 402 spend-cap-exceeded that recorded nothing.
func TestSpendCapExactAcrossReplicas(t *testing.T) {
	t.Parallel()
	o := gate.Options{UserLimit: ratelimit.Limit{Requests: 10, Window: time.Hour}}
	b := setup(t, options{gate: o})
	cappedPlan(t, b, b.userID)
	setCap(t, b, "10.00")
	hs := []http.Handler{b.gate.Metered("/usage", echo), replica(t, b, o).Metered("/usage", echo)}
	codes := make([]int, 400)
	types := make([]string, 400)
	var wg sync.WaitGroup
	for i := range 400 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := call(hs[i%2], b.key, "")
			codes[i] = a.code
			if typ, ok := a.body["type"].(string); ok {
				types[i] = typ
			}
		}()
	}
	wg.Wait()
	count := map[int]int{}
	for i, c := range codes {
		count[c]++
		if c == http.StatusPaymentRequired && types[i] != "urn:problem-type:ratebill:spend-cap-exceeded" {
			t.Fatalf("402 of type %q", types[i])
		}
	}
	if count[200] != 230 || count[402] != 170 {
		t.Fatalf("statuses %v, want 230 served and 170 refused with 402", count)
	}
	units := ledgerUnits(t, b, b.userID)
	p, err := b.gate.Authenticate(context.Background(), b.key)
	if err != nil {
		t.Fatal(err)
	}
	total := p.PlanDef.Compute(units).Total
	if units != 230 || !total.Equal(decimal.RequireFromString("10.00")) {
		t.Fatalf("billed %d units, %s, want 230 units and exactly 10.00", units, total)
	}
}

// TestSpendCapEdges: a cap set in the middle of a month counts what the
// month already holds (seeded from the ledger); a call is refused when its
// whole cost does not fit, and the remaining budget is reported; a cap
// below the fixed fee refuses everything; clearing it serves again.
func TestSpendCapEdges(t *testing.T) {
	t.Parallel()
	b := setup(t, options{gate: gate.Options{UserLimit: ratelimit.Limit{Requests: 10, Window: time.Hour}}})
	cappedPlan(t, b, b.userID)
	ctx := context.Background()
	n := 0
	admit := func(cost int64) gate.Metering {
		t.Helper()
		p, err := b.gate.Authenticate(ctx, b.key)
		if err != nil {
			t.Fatal(err)
		}
		n++
		m, err := b.gate.Admit(ctx, p, gate.Call{Endpoint: "/verify", Cost: cost, RequestID: fmt.Sprintf("cap-edge-%04d", n)})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if m := admit(200); !m.Admitted() || m.Budget != nil {
		t.Fatalf("before the cap: %+v", m)
	}
	setCap(t, b, "10.00")
	admit(1) // notices the new version: the cap applies from the next call
	if m := admit(30); m.Admitted() || !m.CapExceeded || m.Budget == nil || m.Budget.RemainingUnits != 29 {
		t.Fatalf("cost 30 with 29 units left: admitted=%v exceeded=%v budget=%+v", m.Admitted(), m.CapExceeded, m.Budget)
	}
	m := admit(29)
	if !m.Admitted() || m.Budget.RemainingUnits != 0 || !m.Budget.Remaining.IsZero() || m.Budget.Spent.StringFixed(2) != "10.00" || m.Budget.Units != 230 {
		t.Fatalf("cost 29: admitted=%v budget=%+v", m.Admitted(), m.Budget)
	}
	if units := ledgerUnits(t, b, b.userID); units != 230 {
		t.Fatalf("ledger %d units, want 230", units)
	}
	setCap(t, b, "0.99") // below the fixed fee
	admit(0)             // refused, and notices the version
	if m := admit(1); m.Admitted() || m.Budget.Units != 0 {
		t.Fatalf("cap below the fee: admitted=%v budget=%+v", m.Admitted(), m.Budget)
	}
	clearCap(t, b)
	admit(0) // notices the version
	if m := admit(5); !m.Admitted() || m.Budget != nil {
		t.Fatalf("after clearing the cap: admitted=%v budget=%+v", m.Admitted(), m.Budget)
	}
}

func clearCap(t *testing.T, b bundle) {
	t.Helper()
	v, err := b.store.SetSpendCap(context.Background(), postgres.Actor{Type: postgres.ActorUser, ID: b.userID}, b.userID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.limiter.PublishVersion(context.Background(), b.userID, v); err != nil {
		t.Fatal(err)
	}
	if c, err := b.store.SpendCap(context.Background(), b.userID); err != nil || c != nil {
		t.Fatalf("cap after clearing: %v %v", c, err)
	}
}

// TestSpendCapNeverFailsOpen: with RATE_LIMIT_FAIL_OPEN, Redis down serves
// other users unlimited, but never a user with a spend cap.
func TestSpendCapNeverFailsOpen(t *testing.T) {
	t.Parallel()
	b := setup(t, options{redisURL: "redis://127.0.0.1:1/0", gate: gate.Options{FailOpen: true}})
	ctx := context.Background()
	a := decimal.RequireFromString("5.00")
	if _, err := b.store.SetSpendCap(ctx, postgres.Actor{Type: postgres.ActorUser, ID: b.userID}, b.userID, &a); err != nil {
		t.Fatal(err)
	}
	if a := call(b.gate.Metered("/usage", echo), b.key, ""); a.code != http.StatusServiceUnavailable {
		t.Fatalf("capped user with Redis down: %d, want 503", a.code)
	}
	if units := ledgerUnits(t, b, b.userID); units != 0 {
		t.Fatalf("recorded %d units", units)
	}
}
