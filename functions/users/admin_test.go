package users

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ratebill/platform/shared/apikey"
	"github.com/ratebill/platform/shared/deps"
	"github.com/ratebill/platform/shared/deps/depstest"
	"github.com/ratebill/platform/shared/operator"
	"github.com/ratebill/platform/shared/ratelimit"
)

type adminClient struct {
	t     *testing.T
	h     http.Handler
	token string
}

func (c adminClient) do(method, path, token string, body any) (int, http.Header, map[string]any) {
	c.t.Helper()
	var rd *bytes.Reader
	switch b := body.(type) {
	case nil:
		rd = bytes.NewReader(nil)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		buf, _ := json.Marshal(b)
		rd = bytes.NewReader(buf)
	}
	r := httptest.NewRequest(method, path, rd)
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	c.h.ServeHTTP(w, r)
	var v map[string]any
	if w.Body.Len() > 0 {
		if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
			c.t.Fatalf("%s %s: %d %s: %v", method, path, w.Code, w.Body, err)
		}
	}
	return w.Code, w.Header(), v
}

func (c adminClient) want(method, path string, body any, status int) map[string]any {
	c.t.Helper()
	code, _, v := c.do(method, path, c.token, body)
	if code != status {
		c.t.Fatalf("%s %s: %d %v, want %d", method, path, code, v, status)
	}
	return v
}

// TestOperatorAPI runs the operator API against the real database: the
// bootstrap token, every read and change, the audit rows each change
// writes in its transaction, scopes, revocation and the 404s that give
// nothing away.
func TestOperatorAPI(t *testing.T) {
	t.Parallel()
	boot, _ := operator.Token.Generate(nil)
	d := depstest.New(t, map[string]string{"OPERATOR_BOOTSTRAP_TOKEN": boot})
	h, err := Handler(d)
	if err != nil {
		t.Fatal(err)
	}
	c := adminClient{t: t, h: h, token: boot}
	var ids []int64
	for i := range 5 {
		code, v := signUp(t, h, fmt.Sprintf("op%dUser", i), fmt.Sprintf("op%d@example.com", i))
		if code != 201 {
			t.Fatalf("sign-up %d %v", code, v)
		}
		ids = append(ids, int64(v["id"].(float64)))
	}

	// Concurrent first requests on a cold instance insert the bootstrap
	// token once.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := httptest.NewRequest("GET", "/admin/tokens", nil)
			r.Header.Set("Authorization", "Bearer "+boot)
			h.ServeHTTP(httptest.NewRecorder(), r)
		}()
	}
	wg.Wait()
	toks := c.want("GET", "/admin/tokens", nil, 200)["items"].([]any)
	if len(toks) != 1 || toks[0].(map[string]any)["name"] != "bootstrap" || toks[0].(map[string]any)["scope"] != "admin" ||
		toks[0].(map[string]any)["token_prefix"] != boot[:12] {
		t.Fatalf("tokens %v", toks)
	}

	// Paging: 2 per page over 5 users, then search.
	var seen []float64
	path := "/admin/users?limit=2"
	for pages := 0; ; pages++ {
		v := c.want("GET", path, nil, 200)
		for _, u := range v["items"].([]any) {
			seen = append(seen, u.(map[string]any)["id"].(float64))
		}
		if v["next_cursor"] == nil {
			if pages != 2 {
				t.Fatalf("%d pages", pages+1)
			}
			break
		}
		path = "/admin/users?limit=2&cursor=" + v["next_cursor"].(string)
	}
	if len(seen) != 5 || seen[0] != float64(ids[0]) || seen[4] != float64(ids[4]) {
		t.Fatalf("paged ids %v, want %v", seen, ids)
	}
	if v := c.want("GET", "/admin/users?q=OP3", nil, 200); len(v["items"].([]any)) != 1 {
		t.Fatalf("search by username: %v", v)
	}
	if v := c.want("GET", "/admin/users?q=4%40EXAMPLE", nil, 200); len(v["items"].([]any)) != 1 {
		t.Fatalf("search by email: %v", v)
	}
	if v := c.want("GET", "/admin/users?q=%25", nil, 200); len(v["items"].([]any)) != 0 {
		t.Fatalf("%% is matched literally: %v", v)
	}

	u := ids[1]
	up := fmt.Sprintf("/admin/users/%d", u)
	v := c.want("POST", up+"/suspend", map[string]string{"reason": "chargeback"}, 200)
	if v["suspended_at"] == nil || v["suspended_reason"] != "chargeback" {
		t.Fatalf("suspend: %v", v)
	}
	v = c.want("PUT", up+"/limit", map[string]int{"limit": 5, "window": 60}, 200)
	if l, _ := v["limit"].(map[string]any); l["limit"] != float64(5) || l["window"] != float64(60) {
		t.Fatalf("limit: %v", v)
	}
	v = c.want("POST", up+"/keys", map[string]any{"name": "ci", "expires_in": 3600}, 201)
	key, _ := v["api_key"].(string)
	if apikey.Validate(key) != nil || v["name"] != "ci" || v["expires_at"] == nil {
		t.Fatalf("issue: %v", v)
	}
	keyID := int64(v["id"].(float64))
	detail := c.want("GET", up, nil, 200)
	if len(detail["keys"].([]any)) != 2 || detail["usage"].(map[string]any)["total_requests"] != float64(0) || detail["suspended_reason"] != "chargeback" {
		t.Fatalf("detail: %v", detail)
	}
	if strings.Contains(fmt.Sprint(detail), key) {
		t.Fatal("the key appears after its creation")
	}
	c.want("DELETE", fmt.Sprintf("/admin/keys/%d", keyID), nil, 204)
	c.want("DELETE", fmt.Sprintf("/admin/keys/%d", keyID), nil, 404) // already revoked: same as absent
	c.want("DELETE", up+"/limit", nil, 200)
	if v := c.want("POST", up+"/reactivate", nil, 200); v["suspended_at"] != nil || v["limit"] != nil {
		t.Fatalf("reactivate: %v", v)
	}
	var version int64
	if err := testPool(t, d).QueryRow(context.Background(), `SELECT version FROM users WHERE id = $1`, u).Scan(&version); err != nil || version != 5 {
		t.Fatalf("users.version %d (%v), want 5: suspend, limit, revoke, clear, reactivate", version, err)
	}

	// Every change was published: the next decision on any instance
	// reports the user's version, so cached principals revalidate.
	res, err := d.Limiter.AllowUser(context.Background(), u, ratelimit.Limit{Requests: 10, Window: time.Minute}, 0)
	if err != nil || res.Version != version {
		t.Fatalf("Redis holds version %d (%v), want %d", res.Version, err, version)
	}

	// The audit log: newest first, one row per change, filtered.
	audit := c.want("GET", fmt.Sprintf("/admin/audit?user=%d", u), nil, 200)["items"].([]any)
	var actions []string
	for _, a := range audit {
		m := a.(map[string]any)
		actions = append(actions, m["action"].(string))
		actor := m["actor"].(map[string]any)
		if actor["type"] != "operator" || actor["name"] != "bootstrap" || m["request_id"] == "" || m["remote_addr"] == "" {
			t.Fatalf("audit row %v", m)
		}
	}
	if got := strings.Join(actions, ","); got != "user.reactivate,user.limit.clear,key.revoke,key.create,user.limit.set,user.suspend" {
		t.Fatalf("audit actions %s", got)
	}
	if a := c.want("GET", "/admin/audit?action=token.create", nil, 200)["items"].([]any); len(a) != 1 || a[0].(map[string]any)["actor"].(map[string]any)["type"] != "system" {
		t.Fatalf("bootstrap audit: %v", a)
	}
	pg := c.want("GET", fmt.Sprintf("/admin/audit?user=%d&limit=4", u), nil, 200)
	next := c.want("GET", fmt.Sprintf("/admin/audit?user=%d&limit=4&cursor=%s", u, pg["next_cursor"]), nil, 200)
	if len(pg["items"].([]any)) != 4 || len(next["items"].([]any)) != 2 || next["next_cursor"] != nil {
		t.Fatalf("audit pages %v / %v", pg, next)
	}

	// A viewer reads but never writes; a revoked token is refused.
	v = c.want("POST", "/admin/tokens", map[string]string{"name": "dash", "scope": "viewer"}, 201)
	viewer := v["token"].(string)
	viewerID := int64(v["id"].(float64))
	vc := adminClient{t: t, h: h, token: viewer}
	vc.want("GET", "/admin/users", nil, 200)
	for _, w := range []struct{ method, path string }{
		{"POST", up + "/suspend"}, {"POST", up + "/reactivate"}, {"PUT", up + "/limit"}, {"DELETE", up + "/limit"},
		{"POST", up + "/keys"}, {"DELETE", "/admin/keys/1"}, {"POST", "/admin/tokens"}, {"DELETE", "/admin/tokens/1"},
	} {
		if code, _, p := vc.do(w.method, w.path, viewer, map[string]string{"reason": "x"}); code != 403 || p["type"] != "urn:problem-type:ratebill:forbidden" {
			t.Errorf("viewer %s %s: %d %v", w.method, w.path, code, p)
		}
	}
	c.want("DELETE", fmt.Sprintf("/admin/tokens/%d", viewerID), nil, 204)
	if code, hdr, _ := vc.do("GET", "/admin/users", viewer, nil); code != 401 || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("revoked token: %d %v", code, hdr)
	}
	// The last admin token cannot be revoked.
	bootID := int64(toks[0].(map[string]any)["id"].(float64))
	c.want("DELETE", fmt.Sprintf("/admin/tokens/%d", bootID), nil, 409)

	// Hostile input: nothing changes, every answer a 4xx problem.
	bad := func(method, path, token string, body any, status int, typ string) {
		t.Helper()
		code, hdr, p := c.do(method, path, token, body)
		if code != status || p["type"] != "urn:problem-type:ratebill:"+typ {
			t.Errorf("%s %s: %d %v, want %d %s", method, path, code, p, status, typ)
		}
		if status == 401 && !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s %s: 401 without a Bearer challenge", method, path)
		}
	}
	unknown, _ := operator.Token.Generate(nil)
	bad("GET", "/admin/users", "", nil, 401, "unauthorized")
	bad("GET", "/admin/users", "rbo_short", nil, 401, "unauthorized")
	bad("GET", "/admin/users", key, nil, 401, "unauthorized") // an API key is not an operator token
	bad("GET", "/admin/users", unknown, nil, 401, "unauthorized")
	bad("GET", "/admin/users?limit=101", boot, nil, 422, "validation-failed")
	bad("GET", "/admin/users?limit=0", boot, nil, 422, "validation-failed")
	bad("GET", "/admin/users?cursor=not*base64", boot, nil, 400, "invalid-cursor")
	bad("GET", "/admin/users?cursor="+base64.RawURLEncoding.EncodeToString([]byte("-5")), boot, nil, 400, "invalid-cursor")
	bad("GET", "/admin/audit?action=drop.table", boot, nil, 422, "validation-failed")
	bad("GET", "/admin/audit?user=abc", boot, nil, 422, "validation-failed")
	for _, p := range []string{"/admin/users/999999", "/admin/users/abc", "/admin/users/0", "/admin/users/01", "/admin/users/99999999999999999999"} {
		bad("GET", p, boot, nil, 404, "not-found")
		bad("POST", p+"/suspend", boot, map[string]string{"reason": "x"}, 404, "not-found")
	}
	bad("DELETE", "/admin/keys/999999", boot, nil, 404, "not-found")
	bad("DELETE", "/admin/tokens/x", boot, nil, 404, "not-found")
	bad("POST", up+"/suspend", boot, `{"reason":`, 400, "malformed-request")
	bad("POST", up+"/suspend", boot, map[string]string{"reason": ""}, 422, "validation-failed")
	bad("POST", up+"/suspend", boot, map[string]string{"reason": strings.Repeat("x", 501)}, 422, "validation-failed")
	bad("POST", up+"/suspend", boot, map[string]string{"reason": "x", "until": "never"}, 422, "validation-failed")
	bad("POST", up+"/suspend", boot, `{"reason":"`+strings.Repeat("x", 20000)+`"}`, 413, "payload-too-large")
	bad("PUT", up+"/limit", boot, map[string]int{"limit": 0, "window": 60}, 422, "validation-failed")
	bad("PUT", up+"/limit", boot, `{"limit":1.5,"window":60}`, 422, "validation-failed")
	bad("POST", up+"/keys", boot, map[string]int{"expires_in": 59}, 422, "validation-failed")
	bad("POST", "/admin/tokens", boot, map[string]string{"name": "x", "scope": "root"}, 422, "validation-failed")
	if v := c.want("GET", up, nil, 200); v["suspended_at"] != nil || v["limit"] != nil {
		t.Fatalf("refused requests changed the user: %v", v)
	}
	var rows int64
	if err := testPool(t, d).QueryRow(context.Background(), `SELECT count(*) FROM audit_log`).Scan(&rows); err != nil || rows != 9 {
		t.Fatalf("%d audit rows (%v), want 9: bootstrap, 6 changes, the viewer token created and revoked", rows, err)
	}
}

// testPool connects to d's database, to read what the API cannot show.
func testPool(t *testing.T, d *deps.Deps) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), d.Config.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}
