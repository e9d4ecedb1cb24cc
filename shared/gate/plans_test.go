package gate_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/apikey"
	"github.com/ratebill/platform/shared/gate"
	"github.com/ratebill/platform/shared/postgres"
	"github.com/ratebill/platform/shared/pricing"
	"github.com/ratebill/platform/shared/ratelimit"
)

// putOnPlan stores a plan with limits and puts user on it from now.
func putOnPlan(t *testing.T, b bundle, user int64, name string, limits []pricing.Limit) {
	t.Helper()
	ctx := context.Background()
	p := pricing.Plan{Name: name, Currency: "USD", Price: pricing.Model{Kind: pricing.PerUnit, UnitPrice: decimal.RequireFromString("0.01")}, Limits: limits}
	if err := b.store.CreatePlan(ctx, p); err != nil && shared.ErrorCode(err) != shared.EConflict {
		t.Fatal(err)
	}
	if err := b.store.AssignPlan(ctx, shared.PlanAssignment{UserID: user, Plan: name, EffectiveFrom: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

func ledgerUnits(t *testing.T, b bundle, user int64) int64 {
	t.Helper()
	var n int64
	if err := b.pool.QueryRow(context.Background(), `SELECT coalesce(sum(units), 0) FROM usage_events WHERE user_id = $1`, user).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPlanWithSeveralLimits: the gate enforces every limit of the user's
// plan in one decision; a call denied by the burst limit is answered 429
// naming it, takes nothing from the daily limit and is not recorded; the
// headers show the limit closest to running out and name every limit.
func TestPlanWithSeveralLimits(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	putOnPlan(t, b, b.userID, "burst-daily", []pricing.Limit{
		{Name: "burst", Units: 3, WindowSeconds: 60, Algorithm: pricing.Sliding},
		{Name: "daily", Units: 5, WindowSeconds: 86400, Algorithm: pricing.Fixed},
	})
	h := b.gate.Metered("/usage", echo)
	for i := 1; i <= 3; i++ {
		a := call(h, b.key, "")
		if a.code != http.StatusOK {
			t.Fatalf("call %d: %d %v", i, a.code, a.body)
		}
		if got := a.header.Get("RateLimit-Policy"); got != `"burst";q=3;w=60, "daily";q=5;w=86400` {
			t.Fatalf("RateLimit-Policy %q", got)
		}
		if got, want := a.header.Get("X-RateLimit-Remaining"), fmt.Sprint(3-i); got != want || a.header.Get("X-RateLimit-Limit") != "3" {
			t.Fatalf("call %d: X-RateLimit-Limit %s Remaining %s, want the burst limit's 3 and %s", i, a.header.Get("X-RateLimit-Limit"), got, want)
		}
	}
	a := call(h, b.key, "")
	if a.code != http.StatusTooManyRequests || !strings.Contains(fmt.Sprint(a.body["detail"]), `"burst"`) || a.header.Get("Retry-After") == "" {
		t.Fatalf("4th call: %d %v %v", a.code, a.body, a.header)
	}
	if !strings.HasPrefix(a.header.Get("RateLimit"), `"burst";r=0;`) {
		t.Fatalf("RateLimit %q, want the burst limit", a.header.Get("RateLimit"))
	}
	p, err := b.gate.Authenticate(context.Background(), b.key)
	if err != nil {
		t.Fatal(err)
	}
	d, err := b.limiter.AllowUserLimits(context.Background(), b.userID, b.gate.LimitsFor(p), 0)
	if err != nil {
		t.Fatal(err)
	}
	if d.Results[0].Used != 3 || d.Results[1].Used != 3 || ledgerUnits(t, b, b.userID) != 3 {
		t.Fatalf("burst %d daily %d ledger %d, want 3 each", d.Results[0].Used, d.Results[1].Used, ledgerUnits(t, b, b.userID))
	}
}

// TestOverrideWinsOverThePlan: the operator's override replaces the
// plan's limit named "default" (the other limits stay), and every limit
// of a plan without one.
func TestOverrideWinsOverThePlan(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	ctx := context.Background()
	newUser := func() (int64, string) {
		key, _ := apikey.Generate(nil)
		u, err := b.store.CreateUser(ctx, fmt.Sprintf("u%d", rand.Int64()), fmt.Sprintf("u%d@example.com", rand.Int64()), apikey.Hash(key), apikey.Display(key))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.store.SetUserLimit(ctx, postgres.Actor{Type: postgres.ActorSystem, Name: "test"}, u.ID, 2, 3600); err != nil {
			t.Fatal(err)
		}
		return u.ID, key
	}
	withDefault, k1 := newUser()
	putOnPlan(t, b, withDefault, "with-default", []pricing.Limit{
		{Name: "default", Units: 100, WindowSeconds: 3600, Algorithm: pricing.Fixed},
		{Name: "burst", Units: 50, WindowSeconds: 1, Algorithm: pricing.Sliding},
	})
	without, k2 := newUser()
	putOnPlan(t, b, without, "without-default", []pricing.Limit{{Name: "daily", Units: 100, WindowSeconds: 86400, Algorithm: pricing.Sliding}})
	for _, tt := range []struct {
		key  string
		want []ratelimit.Limit
	}{
		{k1, []ratelimit.Limit{{Name: "default", Requests: 2, Window: time.Hour}, {Name: "burst", Requests: 50, Window: time.Second, Algorithm: ratelimit.Sliding}}},
		{k2, []ratelimit.Limit{{Requests: 2, Window: time.Hour}}},
	} {
		p, err := b.gate.Authenticate(ctx, tt.key)
		if err != nil {
			t.Fatal(err)
		}
		if got := b.gate.LimitsFor(p); fmt.Sprint(got) != fmt.Sprint(tt.want) || got[0].Name != tt.want[0].Name {
			t.Fatalf("user %d: limits %+v, want %+v", p.UserID, got, tt.want)
		}
		h := b.gate.Metered("/usage", echo)
		if a, a2, a3 := call(h, tt.key, ""), call(h, tt.key, ""), call(h, tt.key, ""); a.code != 200 || a2.code != 200 || a3.code != http.StatusTooManyRequests {
			t.Fatalf("user %d: %d %d %d, want the override's 2 admitted", p.UserID, a.code, a2.code, a3.code)
		}
	}
}

// TestPlanLimitsRefundedWhenNotRecorded: a call admitted by every limit
// but then not recorded (Postgres down) gives its units back to every
// limit.
func TestPlanLimitsRefundedWhenNotRecorded(t *testing.T) {
	t.Parallel()
	b := setup(t, options{recordToDB: "postgres://nobody@127.0.0.1:1/none?connect_timeout=1"})
	putOnPlan(t, b, b.userID, "refunded", []pricing.Limit{
		{Name: "burst", Units: 3, WindowSeconds: 60, Algorithm: pricing.Sliding},
		{Name: "daily", Units: 5, WindowSeconds: 86400, Algorithm: pricing.Fixed},
	})
	p, err := b.gate.Authenticate(context.Background(), b.key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.gate.Admit(context.Background(), p, gate.Call{Endpoint: "/usage", Cost: 2}); shared.ErrorCode(err) != shared.EUnavailable {
		t.Fatalf("Admit: %v, want EUnavailable", err)
	}
	d, err := b.limiter.AllowUserLimits(context.Background(), b.userID, b.gate.LimitsFor(p), 0)
	if err != nil {
		t.Fatal(err)
	}
	if d.Results[0].Used != 0 || d.Results[1].Used != 0 {
		t.Fatalf("after the refund: burst %d daily %d, want 0", d.Results[0].Used, d.Results[1].Used)
	}
}
