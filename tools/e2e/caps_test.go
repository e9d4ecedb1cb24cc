package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestContractSpendCap walks a spend cap over HTTP: the customer sets it
// (every hostile body refused with the right problem), the calls it buys
// are served with the remaining budget reported, the next is refused
// before it is served (402 on /usage, SPEND_CAP_EXCEEDED on /verify,
// X-Ratebill-Status 402 on /auth) and not billed; clearing it serves
// again. The operator sets and clears caps for a user.
func TestContractSpendCap(t *testing.T) {
	t.Parallel()
	boot, _ := operatorToken.Generate(nil)
	e := setup(t, options{replicas: 1, env: map[string]string{"OPERATOR_BOOTSTRAP_TOKEN": boot}})
	key := e.signup("capped")
	uid := int64(e.do(req{method: "GET", path: "/me", key: key}).JSON(t)["id"].(float64))

	if c := e.do(req{method: "GET", path: "/billing/cap", key: key}).JSON(t); c["amount"] != nil || c["currency"] != "USD" {
		t.Fatalf("no cap: %v", c)
	}
	for _, c := range []struct {
		name, body, contentType string
		status                  int
		code                    string
	}{
		{"not JSON", `{"amount":`, "", 400, "malformed-request"},
		{"too large", `{"amount":"` + strings.Repeat("1", 20<<10) + `"}`, "", 413, "payload-too-large"},
		{"wrong media type", `{"amount":"1.00"}`, "text/plain", 415, "unsupported-media-type"},
		{"missing", `{}`, "", 422, "validation-failed"},
		{"null", `{"amount":null}`, "", 422, "validation-failed"},
		{"a number", `{"amount":5}`, "", 422, "validation-failed"},
		{"negative", `{"amount":"-1.00"}`, "", 422, "validation-failed"},
		{"three places", `{"amount":"1.001"}`, "", 422, "validation-failed"},
		{"exponent", `{"amount":"1e3"}`, "", 422, "validation-failed"},
		{"huge", `{"amount":"10000000000000000"}`, "", 422, "validation-failed"},
		{"unknown field", `{"amount":"1.00","currency":"EUR"}`, "", 422, "validation-failed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			expectProblem(t, e.do(req{method: "PUT", path: "/billing/cap", key: key, body: c.body, contentType: c.contentType}), c.status, c.code)
		})
	}
	if c := e.do(req{method: "GET", path: "/billing/cap", key: key}).JSON(t); c["amount"] != nil {
		t.Fatalf("a refused body changed the cap: %v", c)
	}
	expectProblem(t, e.do(req{method: "PUT", path: "/billing/cap", body: `{"amount":"1.00"}`}), 401, "unauthorized")

	// 0.02 at 0.01 a unit buys 2 units.
	if c := e.do(req{method: "PUT", path: "/billing/cap", key: key, body: `{"amount":"0.02"}`}).JSON(t); c["amount"] != "0.02" {
		t.Fatalf("set: %v", c)
	}
	if c := e.do(req{method: "GET", path: "/billing/cap", key: key}).JSON(t); c["amount"] != "0.02" {
		t.Fatalf("get: %v", c)
	}
	u := e.do(req{method: "GET", path: "/usage", key: key}).JSON(t)
	b, _ := u["budget"].(map[string]any)
	if b == nil || b["cap"] != "0.02" || b["spent"] != "0.01" || b["remaining"] != "0.01" || b["units"] != float64(2) || b["remaining_units"] != float64(1) {
		t.Fatalf("budget after one call: %v", u)
	}
	v := e.do(req{method: "POST", path: "/verify", body: map[string]any{"key": key, "cost": 2}}).JSON(t)
	if v["valid"] != false || v["code"] != "SPEND_CAP_EXCEEDED" || v["cost"] != float64(0) {
		t.Fatalf("verify of 2 units with 1 left: %v", v)
	}
	if r := e.do(req{method: "GET", path: "/usage", key: key}); r.Status != 200 {
		t.Fatalf("last unit: %d %s", r.Status, r.Body)
	}
	p := expectProblem(t, e.do(req{method: "GET", path: "/usage", key: key}), 402, "spend-cap-exceeded")
	if !strings.Contains(fmt.Sprint(p["detail"]), "0.02") {
		t.Fatalf("402 detail %v", p["detail"])
	}
	a := e.do(req{method: "GET", path: "/auth", header: map[string]string{"X-API-Key": key}})
	if a.Status != 403 || a.Header.Get("X-Ratebill-Status") != "402" {
		t.Fatalf("/auth over the cap: %d %v", a.Status, a.Header)
	}
	if bill := e.do(req{method: "GET", path: "/billing", key: key}).JSON(t); bill["units"] != float64(2) || bill["amount"] != "0.02" {
		t.Fatalf("billed %v, want 2 units, 0.02", bill)
	}
	if r := e.do(req{method: "DELETE", path: "/billing/cap", key: key}); r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	e.do(req{method: "GET", path: "/usage", key: key}) // notices the change (decided under the cap)
	if u := e.do(req{method: "GET", path: "/usage", key: key}); u.Status != 200 || u.JSON(t)["budget"] != nil {
		t.Fatalf("after clearing: %d %s", u.Status, u.Body)
	}

	// The operator, for the customer.
	op := map[string]string{"Authorization": "Bearer " + boot}
	path := fmt.Sprintf("/admin/users/%d/cap", uid)
	if c := e.do(req{method: "PUT", path: path, header: op, body: `{"amount":"25"}`}).JSON(t); c["amount"] != "25.00" || c["user_id"] != float64(uid) {
		t.Fatalf("operator set: %v", c)
	}
	if c := e.do(req{method: "GET", path: "/billing/cap", key: key}).JSON(t); c["amount"] != "25.00" {
		t.Fatalf("the customer sees %v", c)
	}
	for _, c := range []struct {
		name, body, contentType string
		status                  int
		code                    string
	}{
		{"not JSON", `[`, "", 400, "malformed-request"},
		{"too large", `{"amount":"` + strings.Repeat("1", 20<<10) + `"}`, "", 413, "payload-too-large"},
		{"wrong media type", `{"amount":"1.00"}`, "text/plain", 415, "unsupported-media-type"},
		{"negative", `{"amount":"-5"}`, "", 422, "validation-failed"},
	} {
		expectProblem(t, e.do(req{method: "PUT", path: path, header: op, body: c.body, contentType: c.contentType}), c.status, c.code)
	}
	expectProblem(t, e.do(req{method: "PUT", path: "/admin/users/999999999/cap", header: op, body: `{"amount":"1"}`}), 404, "not-found")
	expectProblem(t, e.do(req{method: "DELETE", path: "/admin/users/999999999/cap", header: op}), 404, "not-found")
	expectProblem(t, e.do(req{method: "PUT", path: path, body: `{"amount":"1"}`}), 401, "unauthorized")
	expectProblem(t, e.do(req{method: "DELETE", path: path}), 401, "unauthorized")
	viewer := e.do(req{method: "POST", path: "/admin/tokens", header: op, body: map[string]string{"name": "cap-viewer", "scope": "viewer"}}).JSON(t)
	vh := map[string]string{"Authorization": "Bearer " + viewer["token"].(string)}
	expectProblem(t, e.do(req{method: "PUT", path: path, header: vh, body: `{"amount":"1"}`}), 403, "forbidden")
	expectProblem(t, e.do(req{method: "DELETE", path: path, header: vh}), 403, "forbidden")
	if r := e.do(req{method: "DELETE", path: path, header: op}); r.Status != 204 {
		t.Fatalf("operator clear: %d %s", r.Status, r.Body)
	}
	audit := e.do(req{method: "GET", path: fmt.Sprintf("/admin/audit?user=%d&action=user.cap.set", uid), header: op}).JSON(t)
	if items, _ := audit["items"].([]any); len(items) != 2 {
		t.Fatalf("audit user.cap.set: %v", audit)
	}
	expectProblem(t, e.do(req{method: "DELETE", path: "/billing/cap"}), 401, "unauthorized")
	expectProblem(t, e.do(req{method: "GET", path: "/billing/cap"}), 401, "unauthorized")
}
