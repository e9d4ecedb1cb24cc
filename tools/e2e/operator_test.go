package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ratebill/platform/shared/apikey"
)

// operatorToken is the format of operator tokens (package operator).
var operatorToken = apikey.Format{Prefix: "rbo_"}

// TestContractOperator exercises every operator operation and status
// through the gateway and the real users function: the bootstrap token,
// reads and changes, the audit rows they leave, scopes, and hostile
// input (wrong ids, viewer writes, malformed tokens, oversized pages,
// cursor tampering, bad bodies), which changes nothing.
func TestContractOperator(t *testing.T) {
	t.Parallel()
	boot, _ := operatorToken.Generate(nil)
	e := setup(t, options{replicas: 1, env: map[string]string{"OPERATOR_BOOTSTRAP_TOKEN": boot, "MAX_BODY_BYTES": "1024", "LOG_LEVEL": "debug"}})
	as := func(token string) map[string]string { return map[string]string{"Authorization": "Bearer " + token} }
	do := func(method, path, token string, body any) *response {
		t.Helper()
		r := req{method: method, path: path, body: body}
		if token != "" {
			r.header = as(token)
		}
		return e.do(r)
	}
	want := func(r *response, status int) map[string]any {
		t.Helper()
		if r.Status != status {
			t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
		}
		if len(r.Body) == 0 {
			return nil
		}
		return r.JSON(t)
	}
	key := e.signup("customer1")
	e.signup("customer2")
	e.signup("other3")

	// Reads.
	users := want(do("GET", "/admin/users?q=CUSTOMER&limit=1", boot, nil), 200)
	if len(users["items"].([]any)) != 1 || users["next_cursor"] == nil {
		t.Fatalf("first page %v", users)
	}
	first := users["items"].([]any)[0].(map[string]any)
	id := int64(first["id"].(float64))
	next := want(do("GET", "/admin/users?q=CUSTOMER&limit=1&cursor="+users["next_cursor"].(string), boot, nil), 200)
	if items := next["items"].([]any); len(items) != 1 || items[0].(map[string]any)["username"] != "customer2" {
		t.Fatalf("second page %v", next)
	}
	up := fmt.Sprintf("/admin/users/%d", id)
	detail := want(do("GET", up, boot, nil), 200)
	if keys := detail["keys"].([]any); len(keys) != 1 || keys[0].(map[string]any)["api_key_prefix"] != apikey.Display(key) {
		t.Fatalf("detail %v", detail)
	}

	// Changes, each answered with the user.
	if v := want(do("POST", up+"/suspend", boot, map[string]string{"reason": "abuse report 7"}), 200); v["suspended_reason"] != "abuse report 7" {
		t.Fatalf("suspend %v", v)
	}
	if v := want(do("POST", up+"/reactivate", boot, nil), 200); v["suspended_at"] != nil {
		t.Fatalf("reactivate %v", v)
	}
	if v := want(do("PUT", up+"/limit", boot, map[string]int{"limit": 500, "window": 3600}), 200); v["limit"] == nil {
		t.Fatalf("limit %v", v)
	}
	if v := want(do("DELETE", up+"/limit", boot, nil), 200); v["limit"] != nil {
		t.Fatalf("clear %v", v)
	}
	issued := want(do("POST", up+"/keys", boot, map[string]any{"name": "issued", "expires_in": 86400}), 201)
	newKey, _ := issued["api_key"].(string)
	if apikey.Validate(newKey) != nil {
		t.Fatalf("issued %v", issued)
	}
	if me := e.do(req{method: "GET", path: "/me", key: newKey}); me.Status != 200 {
		t.Fatalf("/me with the issued key: %d %s", me.Status, me.Body)
	}
	keyPath := fmt.Sprintf("/admin/keys/%d", int64(issued["id"].(float64)))
	want(do("DELETE", keyPath, boot, nil), 204)
	want(do("DELETE", keyPath, boot, nil), 404)

	// Tokens: a viewer reads, never writes; the last admin stays.
	tokens := want(do("GET", "/admin/tokens", boot, nil), 200)["items"].([]any)
	bootID := int64(tokens[0].(map[string]any)["id"].(float64))
	viewer := want(do("POST", "/admin/tokens", boot, map[string]string{"name": "dashboard", "scope": "viewer"}), 201)
	vtok := viewer["token"].(string)
	want(do("GET", "/admin/audit?limit=5", vtok, nil), 200)
	for _, w := range []struct {
		method, path string
		body         any
	}{
		{"POST", up + "/suspend", map[string]string{"reason": "x"}},
		{"POST", up + "/reactivate", nil},
		{"PUT", up + "/limit", map[string]int{"limit": 1, "window": 1}},
		{"DELETE", up + "/limit", nil},
		{"POST", up + "/keys", map[string]string{"name": "x"}},
		{"DELETE", keyPath, nil},
		{"POST", "/admin/tokens", map[string]string{"name": "x", "scope": "admin"}},
		{"DELETE", fmt.Sprintf("/admin/tokens/%d", bootID), nil},
	} {
		expectProblem(t, do(w.method, w.path, vtok, w.body), 403, "forbidden")
	}
	want(do("DELETE", fmt.Sprintf("/admin/tokens/%d", int64(viewer["id"].(float64))), boot, nil), 204)
	expectProblem(t, do("GET", "/admin/users", vtok, nil), 401, "unauthorized")
	expectProblem(t, do("DELETE", fmt.Sprintf("/admin/tokens/%d", bootID), boot, nil), 409, "conflict")

	// The audit log holds each change, newest first, with its actor.
	audit := want(do("GET", fmt.Sprintf("/admin/audit?user=%d&action=user.suspend", id), boot, nil), 200)["items"].([]any)
	if len(audit) != 1 {
		t.Fatalf("audit %v", audit)
	}
	a := audit[0].(map[string]any)
	if actor := a["actor"].(map[string]any); actor["type"] != "operator" || actor["name"] != "bootstrap" || a["request_id"] == "" || a["target"] != fmt.Sprintf("user:%d", id) {
		t.Fatalf("audit entry %v", a)
	}
	page := want(do("GET", "/admin/audit?limit=2", boot, nil), 200)
	want(do("GET", "/admin/audit?limit=2&cursor="+page["next_cursor"].(string), boot, nil), 200)

	// Hostile input.
	unknown, _ := operatorToken.Generate(nil)
	for _, c := range []struct {
		name, method, path, token string
		body                      any
		contentType               string
		status                    int
		code                      string
	}{
		{"no token", "GET", "/admin/users", "", nil, "", 401, "unauthorized"},
		{"malformed token", "GET", "/admin/users/1", "rbo_0000", nil, "", 401, "unauthorized"},
		{"api key as token", "GET", "/admin/tokens", key, nil, "", 401, "unauthorized"},
		{"unknown token", "GET", "/admin/audit", unknown, nil, "", 401, "unauthorized"},
		{"unknown token write", "POST", up + "/suspend", unknown, map[string]string{"reason": "x"}, "", 401, "unauthorized"},
		{"unknown token reactivate", "POST", up + "/reactivate", unknown, nil, "", 401, "unauthorized"},
		{"unknown token limit", "PUT", up + "/limit", unknown, map[string]int{"limit": 1, "window": 1}, "", 401, "unauthorized"},
		{"unknown token clear", "DELETE", up + "/limit", unknown, nil, "", 401, "unauthorized"},
		{"unknown token issue", "POST", up + "/keys", unknown, map[string]string{}, "", 401, "unauthorized"},
		{"unknown token revoke", "DELETE", "/admin/keys/1", unknown, nil, "", 401, "unauthorized"},
		{"unknown token create token", "POST", "/admin/tokens", unknown, map[string]string{"name": "x", "scope": "admin"}, "", 401, "unauthorized"},
		{"unknown token revoke token", "DELETE", "/admin/tokens/1", unknown, nil, "", 401, "unauthorized"},
		{"oversized page", "GET", "/admin/users?limit=1000", boot, nil, "", 422, "validation-failed"},
		{"zero page", "GET", "/admin/audit?limit=0", boot, nil, "", 422, "validation-failed"},
		{"tampered cursor", "GET", "/admin/users?cursor=" + strings.Repeat("~", 8), boot, nil, "", 400, "invalid-cursor"},
		{"tampered audit cursor", "GET", "/admin/audit?cursor=%2B%2F", boot, nil, "", 400, "invalid-cursor"},
		{"unknown user", "GET", "/admin/users/999999", boot, nil, "", 404, "not-found"},
		{"non-numeric user", "GET", "/admin/users/abc", boot, nil, "", 404, "not-found"},
		{"suspend nobody", "POST", "/admin/users/999999/suspend", boot, map[string]string{"reason": "x"}, "", 404, "not-found"},
		{"reactivate nobody", "POST", "/admin/users/0/reactivate", boot, nil, "", 404, "not-found"},
		{"limit nobody", "PUT", "/admin/users/999999/limit", boot, map[string]int{"limit": 1, "window": 1}, "", 404, "not-found"},
		{"clear nobody", "DELETE", "/admin/users/999999/limit", boot, nil, "", 404, "not-found"},
		{"issue for nobody", "POST", "/admin/users/999999/keys", boot, map[string]string{}, "", 404, "not-found"},
		{"revoke no key", "DELETE", "/admin/keys/999999", boot, nil, "", 404, "not-found"},
		{"revoke no token", "DELETE", "/admin/tokens/999999", boot, nil, "", 404, "not-found"},
		{"suspend malformed", "POST", up + "/suspend", boot, `{"reason":`, "", 400, "malformed-request"},
		{"suspend huge", "POST", up + "/suspend", boot, `{"reason":"` + strings.Repeat("x", 2048) + `"}`, "", 413, "payload-too-large"},
		{"suspend not JSON", "POST", up + "/suspend", boot, `reason=x`, "text/plain", 415, "unsupported-media-type"},
		{"suspend no reason", "POST", up + "/suspend", boot, `{}`, "", 422, "validation-failed"},
		{"suspend unknown field", "POST", up + "/suspend", boot, `{"reason":"x","forever":true}`, "", 422, "validation-failed"},
		{"limit malformed", "PUT", up + "/limit", boot, `{"limit":`, "", 400, "malformed-request"},
		{"limit huge", "PUT", up + "/limit", boot, `{"limit":1,"window":1,"x":"` + strings.Repeat("x", 2048) + `"}`, "", 413, "payload-too-large"},
		{"limit not JSON", "PUT", up + "/limit", boot, `limit=1`, "text/plain", 415, "unsupported-media-type"},
		{"limit zero", "PUT", up + "/limit", boot, `{"limit":0,"window":60}`, "", 422, "validation-failed"},
		{"issue malformed", "POST", up + "/keys", boot, `{"name":`, "", 400, "malformed-request"},
		{"issue huge", "POST", up + "/keys", boot, `{"name":"` + strings.Repeat("x", 2048) + `"}`, "", 413, "payload-too-large"},
		{"issue not JSON", "POST", up + "/keys", boot, `name=x`, "text/plain", 415, "unsupported-media-type"},
		{"issue short expiry", "POST", up + "/keys", boot, `{"expires_in":1}`, "", 422, "validation-failed"},
		{"token malformed", "POST", "/admin/tokens", boot, `{"name":`, "", 400, "malformed-request"},
		{"token huge", "POST", "/admin/tokens", boot, `{"name":"` + strings.Repeat("x", 2048) + `"}`, "", 413, "payload-too-large"},
		{"token not JSON", "POST", "/admin/tokens", boot, `name=x`, "text/plain", 415, "unsupported-media-type"},
		{"token bad scope", "POST", "/admin/tokens", boot, `{"name":"x","scope":"root"}`, "", 422, "validation-failed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := req{method: c.method, path: c.path, body: c.body, contentType: c.contentType}
			if c.token != "" {
				r.header = as(c.token)
			}
			resp := e.do(r)
			expectProblem(t, resp, c.status, c.code)
			if c.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 with WWW-Authenticate %q, want Bearer", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
	// Nothing of the above changed the user or wrote to the audit log.
	if v := want(do("GET", up, boot, nil), 200); v["suspended_at"] != nil || v["limit"] != nil {
		t.Fatalf("hostile requests changed the user: %v", v)
	}
	if n := e.queryInt(`SELECT count(*) FROM audit_log`); n != 9 {
		t.Fatalf("%d audit rows, want 9 (bootstrap, 4 user changes, key create and revoke, viewer token create and revoke)", n)
	}
	// No token or key reaches a log line (every request was logged:
	// LOG_LEVEL=debug).
	logs := e.stack.Logs("users", 0)
	if !strings.Contains(logs, "/admin/users") {
		t.Fatal("the users function logged no request; the check below would prove nothing")
	}
	for _, secret := range []string{boot, vtok, newKey, unknown} {
		if strings.Contains(logs, secret) || strings.Contains(logs, secret[4:]) {
			t.Errorf("a token or key (%s…) appears in the users function's log", secret[:8])
		}
	}
}
