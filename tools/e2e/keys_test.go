package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/ratebill/platform/shared/ratelimit"
	"github.com/ratebill/platform/shared/routes"
)

// keyIDOf returns the id of the caller's key whose prefix starts key.
func keyIDOf(t *testing.T, e *env, key string) int64 {
	t.Helper()
	r := e.do(req{method: "GET", path: "/keys", key: key})
	if r.Status != 200 {
		t.Fatalf("GET /keys: %d %s", r.Status, r.Body)
	}
	for _, it := range r.JSON(t)["items"].([]any) {
		k := it.(map[string]any)
		if strings.HasPrefix(key, k["api_key_prefix"].(string)) {
			return int64(k["id"].(float64))
		}
	}
	t.Fatalf("no key with the prefix of %s…", key[:11])
	return 0
}

// TestContractKeys: the caller's keys end to end, every documented
// status of the four operations, and hostile input: other users' ids,
// ids that are not numbers, huge bodies, bad names, out-of-range
// expiries and grace periods, unknown fields. Refused requests change
// nothing (the audit log counts the changes).
func TestContractKeys(t *testing.T) {
	t.Parallel()
	e := setup(t, options{replicas: 1, env: map[string]string{"KEYS_PER_USER_MAX": "3", "MAX_BODY_BYTES": "1024"}})
	key := e.signup("keyholder")
	otherKey := e.signup("neighbour")
	first := keyIDOf(t, e, key)
	otherID := keyIDOf(t, e, otherKey)

	// Create: a named key that expires in a day, an unnamed one from an
	// empty body.
	r := e.do(req{method: "POST", path: "/keys", key: key, body: map[string]any{"name": "ci", "expires_in": 86400}})
	if r.Status != 201 {
		t.Fatalf("POST /keys: %d %s", r.Status, r.Body)
	}
	ci := r.JSON(t)
	ciKey := ci["api_key"].(string)
	ciID := int64(ci["id"].(float64))
	exp, _ := time.Parse(time.RFC3339Nano, ci["expires_at"].(string))
	if ci["name"] != "ci" || !strings.HasPrefix(ciKey, ci["api_key_prefix"].(string)) || time.Until(exp) < 23*time.Hour || time.Until(exp) > 25*time.Hour {
		t.Fatalf("created %v", ci)
	}
	if r := e.do(req{method: "POST", path: "/keys", key: ciKey}); r.Status != 201 || r.JSON(t)["name"] != "" || r.JSON(t)["expires_at"] != nil {
		t.Fatalf("POST /keys without a body, with the new key: %d %s", r.Status, r.Body)
	}
	// The cap: three active keys.
	expectProblem(t, e.do(req{method: "POST", path: "/keys", key: key, body: `{}`}), 409, "conflict")

	// The new key is the same user: same usage, same limits.
	if u := e.do(req{method: "GET", path: "/usage", key: ciKey}); u.Status != 200 {
		t.Fatalf("usage with the new key: %d", u.Status)
	}
	if u := e.do(req{method: "GET", path: "/usage", key: key}).JSON(t); u["total_requests"] != float64(2) {
		t.Fatalf("usage with the first key after one call with the second: %v", u)
	}

	// List: newest first, every key.
	l := e.do(req{method: "GET", path: "/keys", key: key}).JSON(t)
	items := l["items"].([]any)
	if len(items) != 3 || int64(items[1].(map[string]any)["id"].(float64)) != ciID || int64(items[2].(map[string]any)["id"].(float64)) != first || l["next_cursor"] != nil {
		t.Fatalf("GET /keys: %v", l)
	}
	audits := func() int64 { return e.queryInt(`SELECT count(*) FROM audit_log`) }
	before := audits()

	// Hostile input: nothing changes.
	long := strings.Repeat("n", 65)
	for _, c := range []struct {
		name, method, path, body, contentType string
		status                                int
		code                                  string
	}{
		{"create: malformed", "POST", "/keys", `{"name":`, "", 400, "malformed-request"},
		{"create: too large", "POST", "/keys", `{"name":"` + strings.Repeat("a", 2048) + `"}`, "", 413, "payload-too-large"},
		{"create: not JSON", "POST", "/keys", `name=x`, "text/plain", 415, "unsupported-media-type"},
		{"create: long name", "POST", "/keys", `{"name":"` + long + `"}`, "", 422, "validation-failed"},
		{"create: control character", "POST", "/keys", `{"name":"a\u0007b"}`, "", 422, "validation-failed"},
		{"create: expires too soon", "POST", "/keys", `{"expires_in":59}`, "", 422, "validation-failed"},
		{"create: expires too late", "POST", "/keys", `{"expires_in":31536001}`, "", 422, "validation-failed"},
		{"create: expires fraction", "POST", "/keys", `{"expires_in":60.5}`, "", 422, "validation-failed"},
		{"create: expires string", "POST", "/keys", `{"expires_in":"60"}`, "", 422, "validation-failed"},
		{"create: unknown field", "POST", "/keys", `{"name":"x","scope":"admin"}`, "", 422, "validation-failed"},
		{"rotate: malformed", "POST", fmt.Sprintf("/keys/%d/rotate", ciID), `{"grace_seconds":`, "", 400, "malformed-request"},
		{"rotate: too large", "POST", fmt.Sprintf("/keys/%d/rotate", ciID), `{"x":"` + strings.Repeat("a", 2048) + `"}`, "", 413, "payload-too-large"},
		{"rotate: not JSON", "POST", fmt.Sprintf("/keys/%d/rotate", ciID), `grace=1`, "text/plain", 415, "unsupported-media-type"},
		{"rotate: negative grace", "POST", fmt.Sprintf("/keys/%d/rotate", ciID), `{"grace_seconds":-1}`, "", 422, "validation-failed"},
		{"rotate: grace past a week", "POST", fmt.Sprintf("/keys/%d/rotate", ciID), `{"grace_seconds":604801}`, "", 422, "validation-failed"},
		{"rotate: unknown field", "POST", fmt.Sprintf("/keys/%d/rotate", ciID), `{"grace":1}`, "", 422, "validation-failed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			expectProblem(t, e.do(req{method: c.method, path: c.path, key: key, body: c.body, contentType: c.contentType}), c.status, c.code)
		})
	}
	// Ids that are not the caller's key: one answer, byte for byte.
	var bodies []string
	for _, id := range []string{strconv.FormatInt(otherID, 10), "99999999999", "abc", "0", "-1", "1e3", "%2B1", strconv.FormatInt(otherID, 10) + ".0", "99999999999999999999999"} {
		for _, m := range []struct{ method, path, body string }{
			{"DELETE", "/keys/" + id, ""},
			{"POST", "/keys/" + id + "/rotate", `{"grace_seconds":0}`},
		} {
			var body any
			if m.body != "" {
				body = m.body
			}
			r := e.do(req{method: m.method, path: m.path, key: key, body: body, header: map[string]string{"X-Request-Id": "same-request-id"}})
			p := expectProblem(t, r, 404, "not-found")
			delete(p, "instance")
			b := fmt.Sprint(p)
			bodies = append(bodies, b)
			if b != bodies[0] {
				t.Errorf("%s %s: %s differs from %s", m.method, m.path, b, bodies[0])
			}
		}
	}
	if n := audits(); n != before {
		t.Fatalf("refused requests wrote %d audit rows", n-before)
	}
	if r := e.do(req{method: "GET", path: "/usage", key: otherKey}); r.Status != 200 {
		t.Fatalf("the neighbour's key after the attempts on it: %d", r.Status)
	}

	// Rotate with the default grace: the old key keeps working.
	r = e.do(req{method: "POST", path: fmt.Sprintf("/keys/%d/rotate", first), key: key})
	if r.Status != 409 {
		t.Fatalf("rotation with grace at the cap: %d %s, want 409", r.Status, r.Body)
	}
	expectProblem(t, r, 409, "conflict")
	r = e.do(req{method: "POST", path: fmt.Sprintf("/keys/%d/rotate", first), key: key, body: map[string]any{"grace_seconds": 0}})
	if r.Status != 201 {
		t.Fatalf("rotation without grace: %d %s", r.Status, r.Body)
	}
	rot := r.JSON(t)
	replaced := rot["replaced"].(map[string]any)
	if int64(replaced["id"].(float64)) != first || replaced["revoked_at"] == nil || rot["api_key"] == nil {
		t.Fatalf("rotation: %v", rot)
	}
	newKey := rot["api_key"].(string)
	expectProblem(t, e.do(req{method: "GET", path: "/usage", key: key}), 401, "unauthorized")
	r = e.do(req{method: "POST", path: fmt.Sprintf("/keys/%d/rotate", ciID), key: newKey, body: map[string]any{"grace_seconds": 3600}})
	if r.Status != 409 { // ci's grace period would need a fourth active key
		t.Fatalf("rotation with grace at the cap: %d %s", r.Status, r.Body)
	}
	// Revoke the unnamed key, then rotate ci with an hour of grace.
	for _, it := range e.do(req{method: "GET", path: "/keys", key: newKey}).JSON(t)["items"].([]any) {
		k := it.(map[string]any)
		if k["name"] == "" && k["revoked_at"] == nil && !strings.HasPrefix(newKey, k["api_key_prefix"].(string)) {
			if r := e.do(req{method: "DELETE", path: fmt.Sprintf("/keys/%d", int64(k["id"].(float64))), key: newKey}); r.Status != 204 || len(r.Body) != 0 {
				t.Fatalf("DELETE: %d %s", r.Status, r.Body)
			}
		}
	}
	r = e.do(req{method: "POST", path: fmt.Sprintf("/keys/%d/rotate", ciID), key: newKey, body: map[string]any{"grace_seconds": 3600}})
	if r.Status != 201 {
		t.Fatalf("rotation with an hour of grace: %d %s", r.Status, r.Body)
	}
	rot = r.JSON(t)
	graceEnd, _ := time.Parse(time.RFC3339Nano, rot["replaced"].(map[string]any)["expires_at"].(string))
	if rot["name"] != "ci" || time.Until(graceEnd) > time.Hour || time.Until(graceEnd) < 59*time.Minute {
		t.Fatalf("rotation with grace: %v", rot)
	}
	if u := e.do(req{method: "GET", path: "/usage", key: ciKey}); u.Status != 200 {
		t.Fatalf("the old key in its grace period: %d", u.Status)
	}
	// Revoking twice: the second is 404.
	if r := e.do(req{method: "DELETE", path: fmt.Sprintf("/keys/%d", ciID), key: newKey}); r.Status != 204 {
		t.Fatalf("revoke: %d", r.Status)
	}
	expectProblem(t, e.do(req{method: "DELETE", path: fmt.Sprintf("/keys/%d", ciID), key: newKey}), 404, "not-found")
	expectProblem(t, e.do(req{method: "GET", path: "/usage", key: ciKey}), 401, "unauthorized")
	if n := e.queryInt(`SELECT count(*) FROM audit_log WHERE actor_type = 'user' AND action LIKE 'key.%'`); n != 6 {
		t.Fatalf("%d audit rows, want 6 (2 creates, 2 rotations, 2 revocations)", n)
	}
	for _, k := range []string{key, ciKey, newKey} {
		// Past the display prefix: no part of a key is in the log.
		if n := e.queryInt(`SELECT count(*) FROM audit_log WHERE coalesce(before::text, '') || coalesce(after::text, '') LIKE '%' || $1 || '%'`, k[11:30]); n != 0 {
			t.Fatal("a key reached the audit log")
		}
	}

	// Unauthenticated: 401 on every operation.
	for _, m := range []struct{ method, path string }{{"GET", "/keys"}, {"POST", "/keys"}, {"POST", "/keys/1/rotate"}, {"DELETE", "/keys/1"}} {
		expectProblem(t, e.do(req{method: m.method, path: m.path, key: ciKey}), 401, "unauthorized")
	}

	// The caller may revoke its own, last key; then nothing works.
	last := keyIDOf(t, e, newKey)
	if r := e.do(req{method: "DELETE", path: fmt.Sprintf("/keys/%d", last), key: newKey}); r.Status != 204 {
		t.Fatalf("revoking the last key: %d %s", r.Status, r.Body)
	}
	expectProblem(t, e.do(req{method: "GET", path: "/keys", key: newKey}), 401, "unauthorized")
}

// suspend marks the user suspended (as the operator API does: version
// raised in the same statement) and publishes the version; it returns
// when the publication is done.
func suspend(t *testing.T, e *env, userID int64, suspended bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	q := `UPDATE users SET suspended_at = now(), suspended_reason = 'test', version = version + 1 WHERE id = $1 RETURNING version`
	if !suspended {
		q = `UPDATE users SET suspended_at = NULL, suspended_reason = NULL, version = version + 1 WHERE id = $1 RETURNING version`
	}
	var v int64
	if err := c.QueryRow(ctx, q, userID).Scan(&v); err != nil {
		t.Fatal(err)
	}
	opt, err := redis.ParseURL(e.redis.URL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if err := ratelimit.New(rdb).PublishVersion(ctx, userID, v); err != nil {
		t.Fatal(err)
	}
}

// TestContractSuspended: every key of a suspended user is refused with
// 403 suspended on every route that takes a key (/verify: SUSPENDED;
// /auth: 403 with X-Ratebill-Status 403), and works again once the
// suspension is lifted; an expired key is 401 (/verify: EXPIRED).
func TestContractSuspended(t *testing.T) {
	t.Parallel()
	e := setup(t, options{replicas: 1})
	key := e.signup("suspendee")
	uid := int64(e.do(req{method: "GET", path: "/me", key: key}).JSON(t)["id"].(float64))
	suspend(t, e, uid, true)
	for _, r := range []req{
		{method: "GET", path: "/me", key: key},
		{method: "GET", path: "/usage", key: key},
		{method: "GET", path: "/billing", key: key},
		{method: "GET", path: "/billing?period=2026-11", key: key},
		{method: "GET", path: "/billing/invoices", key: key},
		{method: "GET", path: "/billing/cap", key: key},
		{method: "PUT", path: "/billing/cap", key: key, body: `{"amount":"1.00"}`},
		{method: "DELETE", path: "/billing/cap", key: key},
		{method: "GET", path: "/keys", key: key},
		{method: "POST", path: "/keys", key: key, body: `{}`},
		{method: "POST", path: "/keys/1/rotate", key: key},
		{method: "DELETE", path: "/keys/1", key: key},
	} {
		expectProblem(t, e.do(r), 403, "suspended")
	}
	v := e.do(req{method: "POST", path: "/verify", body: map[string]any{"key": key}}).JSON(t)
	if v["valid"] != false || v["code"] != "SUSPENDED" || v["user"].(map[string]any)["id"] != float64(uid) || v["cost"] != float64(0) {
		t.Fatalf("/verify for a suspended user: %v", v)
	}
	a := e.do(req{method: "GET", path: "/auth", header: map[string]string{"X-API-Key": key}})
	if a.Status != 403 || a.Header.Get("X-Ratebill-Status") != "403" || a.JSON(t)["type"] != "urn:problem-type:ratebill:suspended" {
		t.Fatalf("/auth for a suspended user: %d %v %s", a.Status, a.Header, a.Body)
	}
	suspend(t, e, uid, false)
	if r := e.do(req{method: "GET", path: "/usage", key: key}); r.Status != 200 {
		t.Fatalf("after reactivation: %d %s", r.Status, r.Body)
	}
	if n := e.queryInt(`SELECT count(*) FROM usage_events WHERE user_id = $1`, uid); n != 1 {
		t.Fatalf("%d usage events, want 1: the refused calls are not billed", n)
	}

	// Expiry: a key that expired is 401 and /verify EXPIRED.
	r := e.do(req{method: "POST", path: "/keys", key: key, body: map[string]any{"expires_in": 60}})
	if r.Status != 201 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	short := r.JSON(t)["api_key"].(string)
	e.queryInt(`WITH u AS (UPDATE api_keys SET expires_at = now() WHERE id = $1 RETURNING 1) SELECT count(*) FROM u`, int64(r.JSON(t)["id"].(float64)))
	p := expectProblem(t, e.do(req{method: "GET", path: "/me", key: short}), 401, "unauthorized")
	if !strings.Contains(p["detail"].(string), "expired") {
		t.Fatalf("expired key: %v", p)
	}
	if v := e.do(req{method: "POST", path: "/verify", body: map[string]any{"key": short}}).JSON(t); v["code"] != "EXPIRED" {
		t.Fatalf("/verify of an expired key: %v", v)
	}
	if a := e.do(req{method: "GET", path: "/auth", header: map[string]string{"X-API-Key": short}}); a.Status != 401 {
		t.Fatalf("/auth of an expired key: %d", a.Status)
	}
}

// TestRevocationReachesOtherReplicas: two usage replicas have the key
// cached (AUTH_CACHE_TTL 60 s); DELETE /keys/{id} (users function) must
// make the other replicas refuse it within 1 s of its response, and a
// suspension likewise. The measured times are logged.
func TestRevocationReachesOtherReplicas(t *testing.T) {
	t.Parallel()
	e := setup(t, options{replicas: 2, env: map[string]string{"AUTH_CACHE_TTL": "60", "API_RATE_LIMIT": "1000000"}})
	owner := e.signup("revoker")
	r := e.do(req{method: "POST", path: "/keys", key: owner, body: map[string]any{"name": "to revoke"}})
	if r.Status != 201 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	victim, victimID := r.JSON(t)["api_key"].(string), int64(r.JSON(t)["id"].(float64))
	replicas := e.stack.Instances[routes.Usage]
	if len(replicas) != 2 {
		t.Fatalf("usage replicas %v", replicas)
	}
	warm := func(key string) {
		for _, base := range replicas {
			if r := e.do(req{base: base, method: "GET", path: "/usage", key: key}); r.Status != 200 {
				t.Fatalf("warm-up on %s: %d %s", base, r.Status, r.Body)
			}
		}
	}
	warm(victim)
	warm(owner)

	// until polls every replica as fast as it answers and returns, per
	// replica, the time from start to its first answer with want.
	until := func(key string, want int, start time.Time) []time.Duration {
		out := make([]time.Duration, len(replicas))
		for i, base := range replicas {
			deadline := start.Add(5 * time.Second)
			for {
				r := e.do(req{base: base, method: "GET", path: "/usage", key: key})
				if r.Status == want {
					out[i] = time.Since(start)
					break
				}
				if r.Status != 200 || time.Now().After(deadline) {
					t.Fatalf("replica %s: %d %s after %v, want %d", base, r.Status, r.Body, time.Since(start), want)
				}
			}
		}
		return out
	}
	del := e.do(req{method: "DELETE", path: fmt.Sprintf("/keys/%d", victimID), key: owner})
	done := time.Now()
	if del.Status != 204 {
		t.Fatalf("DELETE: %d %s", del.Status, del.Body)
	}
	revoked := until(victim, 401, done)
	t.Logf("revocation: first 401 on each usage replica %v after the DELETE's response", revoked)
	for i, d := range revoked {
		if d > time.Second {
			t.Errorf("replica %d accepted the revoked key for %v, bound 1 s", i, d)
		}
	}

	uid := int64(e.do(req{method: "GET", path: "/me", key: owner}).JSON(t)["id"].(float64))
	suspend(t, e, uid, true)
	done = time.Now()
	suspended := until(owner, 403, done)
	t.Logf("suspension: first 403 on each usage replica %v after the published change", suspended)
	for i, d := range suspended {
		if d > time.Second {
			t.Errorf("replica %d served the suspended user for %v, bound 1 s", i, d)
		}
	}
}

// TestKeyLastUsed: last_used_at appears after use, written in a batch
// (KEYS_LAST_USED_FLUSH 1 s here), never before the key is used.
func TestKeyLastUsed(t *testing.T) {
	t.Parallel()
	e := setup(t, options{replicas: 1, env: map[string]string{"KEYS_LAST_USED_FLUSH": "1"}})
	key := e.signup("lastused")
	r := e.do(req{method: "POST", path: "/keys", key: key, body: map[string]any{"name": "idle"}})
	idle := int64(r.JSON(t)["id"].(float64))
	id := keyIDOf(t, e, key)
	start := time.Now()
	var used any
	eventually(t, 10*time.Second, "last_used_at written", func() bool {
		e.do(req{method: "GET", path: "/usage", key: key})
		for _, it := range e.do(req{method: "GET", path: "/keys", key: key}).JSON(t)["items"].([]any) {
			k := it.(map[string]any)
			switch int64(k["id"].(float64)) {
			case id:
				used = k["last_used_at"]
			case idle:
				if k["last_used_at"] != nil {
					t.Fatalf("an unused key has last_used_at %v", k["last_used_at"])
				}
			}
		}
		return used != nil
	})
	t.Logf("last_used_at %v appeared %v after the first use", used, time.Since(start))
}
