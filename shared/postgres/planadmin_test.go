package postgres_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/postgres"
	"github.com/ratebill/platform/shared/pricing"
	"github.com/ratebill/platform/shared/testdb"
)

func testPlan(t *testing.T, name string, units int64) pricing.Plan {
	t.Helper()
	p, err := pricing.ParsePlan([]byte(`{"name":"` + name + `","currency":"USD","fixed_fee":"0","included_units":0,
"price":{"kind":"per_unit","unit_price":"0.01"},"limits":[{"name":"default","units":` + strconv.FormatInt(units, 10) + `,"window_seconds":60,"algorithm":"fixed"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPutPlanRaisesVersionsOfItsUsers: a plan update raises, in its
// transaction, the version of exactly the users whose current
// assignment is the plan (not one moved off it, not one assigned it
// only from a future minute, not one on another plan), returns those
// versions, and audits the definition before and after; a create raises
// none; the default plan is refused.
func TestPutPlanRaisesVersionsOfItsUsers(t *testing.T) {
	t.Parallel()
	pool := testdb.Pool(t)
	s := postgres.NewStore(pool)
	ctx := context.Background()
	op := postgres.Actor{Type: postgres.ActorOperator, ID: 0, Name: "test"}
	created, vs, err := s.PutPlan(ctx, op, testPlan(t, "team", 100))
	if err != nil || !created || len(vs) != 0 {
		t.Fatalf("create: %v %v %v", created, vs, err)
	}
	if _, _, err := s.PutPlan(ctx, op, testPlan(t, "solo", 5)); err != nil {
		t.Fatal(err)
	}
	on, _ := newUser(t, s, "onplan")
	moved, _ := newUser(t, s, "movedoff")
	future, _ := newUser(t, s, "future")
	other, _ := newUser(t, s, "other")
	now := time.Now()
	for _, a := range []shared.PlanAssignment{
		{UserID: on, Plan: "team", EffectiveFrom: now.Add(-time.Hour)},
		{UserID: moved, Plan: "team", EffectiveFrom: now.Add(-2 * time.Hour)},
		{UserID: moved, Plan: "solo", EffectiveFrom: now.Add(-time.Hour)},
		{UserID: future, Plan: "team", EffectiveFrom: now.Add(24 * time.Hour)},
		{UserID: other, Plan: "solo", EffectiveFrom: now.Add(-time.Hour)},
	} {
		if _, err := s.AssignPlanAs(ctx, op, a); err != nil {
			t.Fatal(err)
		}
	}
	before, _, _, err := s.AdminGetUser(ctx, on)
	if err != nil {
		t.Fatal(err)
	}
	created, vs, err = s.PutPlan(ctx, op, testPlan(t, "team", 200))
	if err != nil || created {
		t.Fatalf("update: %v %v", created, err)
	}
	if len(vs) != 1 || vs[0].UserID != on || vs[0].Version != before.Version+1 {
		t.Fatalf("versions %+v, want only user %d at %d", vs, on, before.Version+1)
	}
	for _, u := range []int64{moved, future, other} {
		au, _, _, _ := s.AdminGetUser(ctx, u)
		var bumps int64
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE user_id = $1 AND action = 'user.plan.set'`, u).Scan(&bumps); err != nil {
			t.Fatal(err)
		}
		if au.Version != bumps { // users start at version 0; each assignment raised it once
			t.Errorf("user %d: version %d after %d assignments: the plan update touched it", u, au.Version, bumps)
		}
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'plan.update' AND target = 'plan:team'
AND before->'limits'->0->>'units' = '100' AND after->'limits'->0->>'units' = '200'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("plan.update audit rows %d %v", n, err)
	}
	if name, from, err := s.UserPlan(ctx, moved); err != nil || name != "solo" || from == nil {
		t.Fatalf("moved user's plan %q %v %v", name, from, err)
	}
	if name, from, err := s.UserPlan(ctx, future); err != nil || name != "default" || from != nil {
		t.Fatalf("future user's plan now %q %v %v", name, from, err)
	}
	if _, _, err := s.PutPlan(ctx, op, testPlan(t, "default", 1)); shared.ErrorCode(err) != shared.EConflict {
		t.Fatalf("default: %v, want a conflict", err)
	}
	if _, err := s.AssignPlanAs(ctx, op, shared.PlanAssignment{UserID: 1 << 60, Plan: "team", EffectiveFrom: now}); shared.ErrorCode(err) != shared.ENotFound {
		t.Fatalf("unknown user: %v", err)
	}
	if _, err := s.AssignPlanAs(ctx, op, shared.PlanAssignment{UserID: on, Plan: "nope", EffectiveFrom: now}); shared.ErrorCode(err) != shared.ENotFound {
		t.Fatalf("unknown plan: %v", err)
	}
	plans, _ := s.Plans(ctx)
	if !slices.ContainsFunc(plans, func(p shared.StoredPlan) bool { return p.Name == "team" && p.Plan.Limits[0].Units == 200 }) {
		t.Fatalf("plans %+v", plans)
	}
}
