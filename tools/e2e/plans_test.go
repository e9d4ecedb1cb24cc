package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ratebill/platform/shared/routes"
)

// growthPlan is a valid plan definition with a headline limit of units
// per hour.
func growthPlan(units int64) map[string]any {
	return map[string]any{
		"currency": "USD", "fixed_fee": "49.00", "included_units": 10000,
		"price": map[string]any{"kind": "graduated", "tiers": []any{
			map[string]any{"up_to": 100000, "unit_price": "0.002"},
			map[string]any{"up_to": nil, "unit_price": "0.001"}}},
		"limits": []any{map[string]any{"name": "hourly", "units": units, "window_seconds": 3600, "algorithm": "fixed"}},
	}
}

// TestContractOperatorPlans exercises the plan operations through the
// gateway and the real users function: create, replace, read, list,
// assign, the user's plan in GET /admin/users/{id}, the audit rows, the
// viewer's 403s and hostile input, which changes nothing.
func TestContractOperatorPlans(t *testing.T) {
	t.Parallel()
	boot, _ := operatorToken.Generate(nil)
	e := setup(t, options{replicas: 1, env: map[string]string{"OPERATOR_BOOTSTRAP_TOKEN": boot, "MAX_BODY_BYTES": "2048"}})
	do := func(method, path, token string, body any) *response {
		t.Helper()
		return e.do(req{method: method, path: path, body: body, header: map[string]string{"Authorization": "Bearer " + token}})
	}
	want := func(r *response, status int) map[string]any {
		t.Helper()
		if r.Status != status {
			t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
		}
		return r.JSON(t)
	}
	key := e.signup("planned")
	uid := int64(e.do(req{method: "GET", path: "/me", key: key}).JSON(t)["id"].(float64))
	up := fmt.Sprintf("/admin/users/%d", uid)

	if p := want(do("GET", up, boot, nil), 200)["plan"].(map[string]any); p["plan"] != "default" || p["effective_from"] != nil {
		t.Fatalf("a new user's plan %v", p)
	}
	created := want(do("PUT", "/admin/plans/growth", boot, growthPlan(500)), 201)
	if created["name"] != "growth" || created["from_config"] != false || created["fixed_fee"] != "49" && created["fixed_fee"] != "49.00" {
		t.Fatalf("created %v", created)
	}
	def := growthPlan(700)
	def["name"] = "growth"
	replaced := want(do("PUT", "/admin/plans/growth", boot, def), 200)
	if l := replaced["limits"].([]any)[0].(map[string]any); l["units"] != float64(700) {
		t.Fatalf("replaced %v", replaced)
	}
	if g := want(do("GET", "/admin/plans/growth", boot, nil), 200); g["limits"].([]any)[0].(map[string]any)["units"] != float64(700) {
		t.Fatalf("read %v", g)
	}
	list := want(do("GET", "/admin/plans", boot, nil), 200)["items"].([]any)
	if len(list) != 2 || list[0].(map[string]any)["name"] != "default" || list[0].(map[string]any)["from_config"] != true ||
		list[1].(map[string]any)["name"] != "growth" {
		t.Fatalf("list %v", list)
	}
	assigned := want(do("PUT", up+"/plan", boot, map[string]any{"plan": "growth"}), 200)
	if assigned["plan"] != "growth" || assigned["user_id"] != float64(uid) || assigned["effective_from"] == nil {
		t.Fatalf("assigned %v", assigned)
	}
	if p := want(do("GET", up, boot, nil), 200)["plan"].(map[string]any); p["plan"] != "growth" {
		t.Fatalf("the user's plan after assignment %v", p)
	}
	// The assignment takes effect now: the key's window becomes the plan's
	// (the call that notices the published version may still answer with
	// the cached principal, so poll with a deadline).
	for deadline := time.Now().Add(2 * time.Second); ; {
		w := e.do(req{method: "GET", path: "/usage", key: key}).JSON(t)["window"].(map[string]any)
		if w["limit"] == float64(700) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("window 2 s after the assignment %v", w)
		}
	}
	future := time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	want(do("PUT", up+"/plan", boot, map[string]any{"plan": "default", "effective": future}), 200)

	// A closed invoice fixes its month: no assignment into it.
	if n := e.queryInt(`INSERT INTO invoices (user_id, period, status, currency, plans, lines, requests, recorded_units, carried_units, subtotal, total)
VALUES ($1, '2026-01', 'closed', 'USD', '[]', '[]', 0, 0, 0, 0, 0) RETURNING 1`, uid); n != 1 {
		t.Fatal("inserting a closed invoice")
	}
	expectProblem(t, do("PUT", up+"/plan", boot, map[string]any{"plan": "growth", "effective": "2026-01-15T00:00:00Z"}), 409, "conflict")
	expectProblem(t, do("PUT", "/admin/plans/default", boot, growthPlan(1)), 409, "conflict")

	// Audit rows, with before and after.
	for action, n := range map[string]int{"plan.create": 1, "plan.update": 1, "user.plan.set": 2} {
		items := want(do("GET", "/admin/audit?action="+action, boot, nil), 200)["items"].([]any)
		if len(items) != n {
			t.Fatalf("%s: %d audit rows, want %d: %v", action, len(items), n, items)
		}
	}
	upd := want(do("GET", "/admin/audit?action=plan.update", boot, nil), 200)["items"].([]any)[0].(map[string]any)
	if upd["target"] != "plan:growth" || !strings.Contains(string(mustJSON(t, upd["before"])), `"units":500`) ||
		!strings.Contains(string(mustJSON(t, upd["after"])), `"units":700`) {
		t.Fatalf("plan.update audit %v", upd)
	}
	set := want(do("GET", fmt.Sprintf("/admin/audit?user=%d&action=user.plan.set", uid), boot, nil), 200)["items"].([]any)
	if last := set[1].(map[string]any); last["before"].(map[string]any)["plan"] != "default" || last["after"].(map[string]any)["plan"] != "growth" {
		t.Fatalf("user.plan.set audit %v", last)
	}

	// A viewer reads, never writes.
	vtok := want(do("POST", "/admin/tokens", boot, map[string]string{"name": "viewer", "scope": "viewer"}), 201)["token"].(string)
	want(do("GET", "/admin/plans", vtok, nil), 200)
	want(do("GET", "/admin/plans/growth", vtok, nil), 200)
	expectProblem(t, do("PUT", "/admin/plans/growth", vtok, growthPlan(1)), 403, "forbidden")
	expectProblem(t, do("PUT", up+"/plan", vtok, map[string]any{"plan": "default"}), 403, "forbidden")

	audits := e.queryInt(`SELECT count(*) FROM audit_log`)
	unknown, _ := operatorToken.Generate(nil)
	bad := growthPlan(1)
	bad["price"] = map[string]any{"kind": "graduated", "tiers": []any{map[string]any{"up_to": 10, "unit_price": "0.1"}}}
	eur := growthPlan(1)
	eur["currency"] = "EUR"
	named := growthPlan(1)
	named["name"] = "other"
	for _, c := range []struct {
		name, method, path, token string
		body                      any
		contentType               string
		status                    int
		code, field               string
	}{
		{"no token list", "GET", "/admin/plans", "", nil, "", 401, "unauthorized", ""},
		{"unknown token read", "GET", "/admin/plans/growth", unknown, nil, "", 401, "unauthorized", ""},
		{"unknown token put", "PUT", "/admin/plans/growth", unknown, growthPlan(1), "", 401, "unauthorized", ""},
		{"unknown token assign", "PUT", up + "/plan", unknown, map[string]any{"plan": "growth"}, "", 401, "unauthorized", ""},
		{"unknown plan", "GET", "/admin/plans/nope", boot, nil, "", 404, "not-found", ""},
		{"assign unknown plan", "PUT", up + "/plan", boot, map[string]any{"plan": "nope"}, "", 404, "not-found", ""},
		{"assign unknown user", "PUT", "/admin/users/999999/plan", boot, map[string]any{"plan": "growth"}, "", 404, "not-found", ""},
		{"assign malformed user", "PUT", "/admin/users/x/plan", boot, map[string]any{"plan": "growth"}, "", 404, "not-found", ""},
		{"plan malformed", "PUT", "/admin/plans/growth", boot, `{"currency":`, "", 400, "malformed-request", ""},
		{"plan huge", "PUT", "/admin/plans/growth", boot, `{"currency":"` + strings.Repeat("x", 4096) + `"}`, "", 413, "payload-too-large", ""},
		{"plan not JSON", "PUT", "/admin/plans/growth", boot, `currency=USD`, "text/plain", 415, "unsupported-media-type", ""},
		{"plan unknown field", "PUT", "/admin/plans/growth", boot, `{"currency":"USD","free":true}`, "", 422, "validation-failed", "free"},
		{"plan no limits", "PUT", "/admin/plans/growth", boot, map[string]any{"currency": "USD", "price": map[string]any{"kind": "per_unit", "unit_price": "0.1"}, "limits": []any{}}, "", 422, "validation-failed", "limits"},
		{"plan bounded last tier", "PUT", "/admin/plans/growth", boot, bad, "", 422, "validation-failed", "price.tiers"},
		{"plan other currency", "PUT", "/admin/plans/growth", boot, eur, "", 422, "validation-failed", "currency"},
		{"plan other name", "PUT", "/admin/plans/growth", boot, named, "", 422, "validation-failed", "name"},
		{"plan bad path name", "PUT", "/admin/plans/Growth!", boot, growthPlan(1), "", 422, "validation-failed", "name"},
		{"assign malformed", "PUT", up + "/plan", boot, `{"plan":`, "", 400, "malformed-request", ""},
		{"assign huge", "PUT", up + "/plan", boot, `{"plan":"` + strings.Repeat("x", 4096) + `"}`, "", 413, "payload-too-large", ""},
		{"assign not JSON", "PUT", up + "/plan", boot, `plan=growth`, "text/plain", 415, "unsupported-media-type", ""},
		{"assign no plan", "PUT", up + "/plan", boot, `{}`, "", 422, "validation-failed", "plan"},
		{"assign bad time", "PUT", up + "/plan", boot, `{"plan":"growth","effective":"tomorrow"}`, "", 422, "validation-failed", "effective"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := req{method: c.method, path: c.path, body: c.body, contentType: c.contentType}
			if c.token != "" {
				r.header = map[string]string{"Authorization": "Bearer " + c.token}
			}
			p := expectProblem(t, e.do(r), c.status, c.code)
			if c.field != "" && !strings.Contains(string(mustJSON(t, p["errors"])), `"field":"`+c.field) {
				t.Errorf("errors %v, want the field %s named", p["errors"], c.field)
			}
		})
	}
	if n := e.queryInt(`SELECT count(*) FROM audit_log`); n != audits {
		t.Fatalf("hostile requests wrote %d audit rows", n-audits)
	}
	if g := want(do("GET", "/admin/plans/growth", boot, nil), 200); g["limits"].([]any)[0].(map[string]any)["units"] != float64(700) {
		t.Fatalf("hostile requests changed the plan: %v", g)
	}
}

// TestPlanChangeReachesOtherReplicas: a plan assignment and a plan
// update publish the versions of the users they change, so both usage
// replicas, which cached the key for a minute, see the new limit within
// a second.
func TestPlanChangeReachesOtherReplicas(t *testing.T) {
	t.Parallel()
	boot, _ := operatorToken.Generate(nil)
	e := setup(t, options{replicas: 2, env: map[string]string{"OPERATOR_BOOTSTRAP_TOKEN": boot, "AUTH_CACHE_TTL": "60", "API_RATE_LIMIT": "1000000"}})
	op := map[string]string{"Authorization": "Bearer " + boot}
	key := e.signup("replicated")
	other := e.signup("bystander")
	uid := int64(e.do(req{method: "GET", path: "/me", key: key}).JSON(t)["id"].(float64))
	if r := e.do(req{method: "PUT", path: "/admin/plans/pro", header: op, body: growthPlan(5000)}); r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	replicas := e.stack.Instances[routes.Usage]
	if len(replicas) != 2 {
		t.Fatalf("usage replicas %v", replicas)
	}
	limitOn := func(base, key string) float64 {
		r := e.do(req{base: base, method: "GET", path: "/usage", key: key})
		if r.Status != 200 {
			t.Fatalf("%s: %d %s", base, r.Status, r.Body)
		}
		return r.JSON(t)["window"].(map[string]any)["limit"].(float64)
	}
	for _, base := range replicas { // cache the keys on both replicas
		if l := limitOn(base, key); l != 1000000 {
			t.Fatalf("before: limit %v on %s", l, base)
		}
		limitOn(base, other)
	}
	// until polls each replica until the key's limit is want, returning
	// the time from start to the first such answer per replica.
	until := func(want float64, start time.Time) []time.Duration {
		out := make([]time.Duration, len(replicas))
		for i, base := range replicas {
			for deadline := start.Add(5 * time.Second); ; {
				if limitOn(base, key) == want {
					out[i] = time.Since(start)
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("replica %s still serves the old limit after %v, want %v", base, time.Since(start), want)
				}
			}
		}
		return out
	}
	check := func(what string, took []time.Duration) {
		t.Logf("%s: new limit on each usage replica %v after the response", what, took)
		for i, d := range took {
			if d > time.Second {
				t.Errorf("%s: replica %d served the old limit for %v, bound 1 s", what, i, d)
			}
		}
	}

	r := e.do(req{method: "PUT", path: fmt.Sprintf("/admin/users/%d/plan", uid), header: op, body: map[string]any{"plan": "pro"}})
	done := time.Now()
	if r.Status != 200 {
		t.Fatalf("assign: %d %s", r.Status, r.Body)
	}
	check("assignment", until(5000, done))

	r = e.do(req{method: "PUT", path: "/admin/plans/pro", header: op, body: growthPlan(6000)})
	done = time.Now()
	if r.Status != 200 {
		t.Fatalf("update: %d %s", r.Status, r.Body)
	}
	check("plan update", until(6000, done))
	// A user not on the plan keeps the default.
	for _, base := range replicas {
		if l := limitOn(base, other); l != 1000000 {
			t.Fatalf("bystander's limit %v on %s", l, base)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
