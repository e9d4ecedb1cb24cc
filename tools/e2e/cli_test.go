package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ratebill/platform/cli"
	"github.com/ratebill/platform/shared/apikey"
)

// cliRun is one run of the ratebill command line.
type cliRun struct {
	out, err string
	code     int
}

// syncBuffer is a bytes.Buffer a running command writes while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestCLI runs every ratebill command in-process (cli.Run, the binary's
// whole program) against the real platform: two processes of the users
// function and two of usage behind the gateway, real Postgres and Redis.
// Each --json output is compared with the API's own answer to the same
// request; the tables are checked for what they must show; changes are
// checked where they act (a suspended user's key is refused, an issued
// key works, a revoked one does not); refusals (viewer writes, bad and
// revoked tokens, unknown ids, invalid values) exit 1 with one line on
// stderr, usage mistakes exit 2 before any request, an unreachable API
// exits 3; and no output ever holds the operator token.
func TestCLI(t *testing.T) {
	t.Parallel()
	boot, _ := operatorToken.Generate(nil)
	e := setup(t, options{users: 2, env: map[string]string{"OPERATOR_BOOTSTRAP_TOKEN": boot}})
	key := e.signup("clicustomer1")
	e.signup("clicustomer2")
	e.signup("cliother3")
	tokenFile := filepath.Join(t.TempDir(), "operator-token")
	if err := os.WriteFile(tokenFile, []byte(boot+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	var outputs []string // everything any run printed
	runEnv := func(ctx context.Context, env map[string]string, stdout, stderr interface{ Write([]byte) (int, error) }, args ...string) int {
		return cli.Run(ctx, args, cli.Options{Stdout: stdout, Stderr: stderr, HTTPClient: e.client,
			Getenv: func(k string) string { return env[k] }})
	}
	baseEnv := map[string]string{"RATEBILL_URL": e.base}
	runWith := func(t *testing.T, env map[string]string, args ...string) cliRun {
		t.Helper()
		var out, errb bytes.Buffer
		code := runEnv(context.Background(), env, &out, &errb, args...)
		r := cliRun{out: out.String(), err: errb.String(), code: code}
		outputs = append(outputs, r.out, r.err)
		return r
	}
	// run runs ratebill as the admin (the token file).
	run := func(t *testing.T, args ...string) cliRun {
		t.Helper()
		return runWith(t, baseEnv, append([]string{"--token-file", tokenFile}, args...)...)
	}
	ok := func(t *testing.T, args ...string) string {
		t.Helper()
		r := run(t, args...)
		if r.code != 0 || r.err != "" {
			t.Fatalf("ratebill %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.err)
		}
		return r.out
	}
	// refused checks a run that the API refused: exit 1, one line on
	// stderr holding every part of want, nothing on stdout.
	refused := func(t *testing.T, r cliRun, want ...string) {
		t.Helper()
		if r.code != cli.ExitAPI || r.out != "" || strings.Count(r.err, "\n") != 1 {
			t.Fatalf("exit %d, stdout %q, stderr %q; want exit 1 and one line on stderr", r.code, r.out, r.err)
		}
		for _, w := range want {
			if !strings.Contains(r.err, w) {
				t.Fatalf("stderr %q lacks %q", r.err, w)
			}
		}
	}
	usage := func(t *testing.T, r cliRun, want string) {
		t.Helper()
		if r.code != cli.ExitUsage || r.out != "" || !strings.Contains(r.err, want) {
			t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2 and %q", r.code, r.out, r.err, want)
		}
	}
	// apiGet is the API's own answer, decoded.
	apiGet := func(t *testing.T, path, token string) any {
		t.Helper()
		r := e.do(req{method: "GET", path: path, header: map[string]string{"Authorization": "Bearer " + token}})
		if r.Status != 200 {
			t.Fatalf("GET %s: %d %s", path, r.Status, r.Body)
		}
		var v any
		if err := json.Unmarshal(r.Body, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	parse := func(t *testing.T, s string) any {
		t.Helper()
		var v any
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			t.Fatalf("--json output is not JSON: %v: %q", err, s)
		}
		return v
	}
	same := func(t *testing.T, what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\n got %v\nwant %v", what, got, want)
		}
	}
	obj := func(v any) map[string]any { return v.(map[string]any) }
	items := func(v any) []any { return obj(v)["items"].([]any) }
	usageStatus := func(k string) int { return e.do(req{method: "GET", path: "/usage", key: k}).Status }

	// users list: the API's page, and a table of it.
	list := parse(t, ok(t, "users", "list", "--json"))
	same(t, "users list --json", list, apiGet(t, "/admin/users?limit=50", boot))
	if len(items(list)) != 3 {
		t.Fatalf("users list: %v", list)
	}
	var uid int64
	for _, it := range items(list) {
		if u := obj(it); u["username"] == "clicustomer1" {
			uid = int64(u["id"].(float64))
		}
	}
	table := ok(t, "users", "list")
	for _, w := range []string{"USERNAME", "EMAIL", "clicustomer1", "clicustomer2@example.com", "cliother3", "active", "default"} {
		if !strings.Contains(table, w) {
			t.Fatalf("users list table lacks %q:\n%s", w, table)
		}
	}
	// Paging: one page and the hint to the next, the next, and --all.
	first := run(t, "users", "list", "--search", "CLICUSTOMER", "--limit", "1")
	if first.code != 0 || !strings.Contains(first.out, "clicustomer1") || strings.Contains(first.out, "clicustomer2") || !strings.Contains(first.err, "--cursor ") {
		t.Fatalf("first page: %+v", first)
	}
	page := parse(t, ok(t, "users", "list", "--search", "CLICUSTOMER", "--limit", "1", "--json"))
	cursor, _ := obj(page)["next_cursor"].(string)
	if len(items(page)) != 1 || cursor == "" {
		t.Fatalf("first page --json: %v", page)
	}
	same(t, "users list --cursor --json",
		parse(t, ok(t, "users", "list", "--search", "CLICUSTOMER", "--limit", "1", "--cursor", cursor, "--json")),
		apiGet(t, "/admin/users?q=CLICUSTOMER&limit=1&cursor="+cursor, boot))
	all := parse(t, ok(t, "users", "list", "--search", "CLICUSTOMER", "--limit", "1", "--all", "--json"))
	whole := apiGet(t, "/admin/users?q=CLICUSTOMER", boot)
	if len(items(whole)) != 2 || obj(whole)["next_cursor"] != nil {
		t.Fatalf("API page of every customer: %v", whole)
	}
	same(t, "users list --all --limit 1 --json (pages joined)", all, whole)
	if out := ok(t, "users", "list", "--search", "CLICUSTOMER", "--limit", "1", "--all"); !strings.Contains(out, "clicustomer1") || !strings.Contains(out, "clicustomer2") {
		t.Fatalf("users list --all:\n%s", out)
	}

	// users show.
	up := fmt.Sprintf("/admin/users/%d", uid)
	sid := fmt.Sprint(uid)
	if usageStatus(key) != 200 {
		t.Fatal("the customer's key does not work to begin with")
	}
	// A key's last_used_at is flushed in the background: not compared.
	noKeyUse := func(v any) any {
		for _, k := range obj(v)["keys"].([]any) {
			delete(obj(k), "last_used_at")
		}
		return v
	}
	same(t, "users show --json", noKeyUse(parse(t, ok(t, "users", "show", sid, "--json"))), noKeyUse(apiGet(t, up, boot)))
	shown := ok(t, "users", "show", sid)
	for _, w := range []string{"clicustomer1@example.com", apikey.Display(key), "1 requests, 1 units", "active", "KEY ID"} {
		if !strings.Contains(shown, w) {
			t.Fatalf("users show lacks %q:\n%s", w, shown)
		}
	}

	// users suspend / reactivate, seen where they act: every usage
	// process refuses the key, then admits it again.
	if out := ok(t, "users", "suspend", sid, "--reason", "abuse report 7"); !strings.Contains(out, "suspended since") || !strings.Contains(out, "abuse report 7") {
		t.Fatalf("users suspend:\n%s", out)
	}
	for i := range 4 {
		if s := usageStatus(key); s != 403 {
			t.Fatalf("call %d of a suspended user's key: %d, want 403", i, s)
		}
	}
	again := obj(parse(t, ok(t, "users", "suspend", sid, "--reason", "chargeback", "--json")))
	detail := obj(apiGet(t, up, boot))
	if again["suspended_reason"] != "chargeback" {
		t.Fatalf("suspend --json: %v", again)
	}
	for k, v := range again {
		same(t, "suspend --json field "+k, v, detail[k])
	}
	usage(t, run(t, "users", "suspend", sid), "--reason is required")
	reactivated := obj(parse(t, ok(t, "users", "reactivate", sid, "--json")))
	if reactivated["suspended_at"] != nil || reactivated["suspended_reason"] != nil {
		t.Fatalf("reactivate --json: %v", reactivated)
	}
	for i := range 4 {
		if s := usageStatus(key); s != 200 {
			t.Fatalf("call %d after reactivation: %d, want 200", i, s)
		}
	}
	if out := ok(t, "users", "reactivate", sid); !strings.Contains(out, "active") {
		t.Fatalf("users reactivate:\n%s", out)
	}

	// users limit.
	set := obj(parse(t, ok(t, "users", "limit", sid, "--limit", "1000", "--window", "60", "--json")))
	same(t, "limit --json", set["limit"], map[string]any{"limit": float64(1000), "window": float64(60)})
	same(t, "the API's user after limit", obj(apiGet(t, up, boot))["limit"], set["limit"])
	if out := ok(t, "users", "limit", sid, "--limit", "500", "--window", "3600"); !strings.Contains(out, "500 per 3600 s") {
		t.Fatalf("users limit:\n%s", out)
	}
	if out := ok(t, "users", "limit", sid, "--clear"); !strings.Contains(out, "default") {
		t.Fatalf("users limit --clear:\n%s", out)
	}
	if l := obj(apiGet(t, up, boot))["limit"]; l != nil {
		t.Fatalf("limit after --clear: %v", l)
	}
	usage(t, run(t, "users", "limit", sid), "--limit UNITS and --window SECONDS together")
	usage(t, run(t, "users", "limit", sid, "--limit", "5"), "together")
	usage(t, run(t, "users", "limit", sid, "--clear", "--limit", "5"), "--clear goes alone")
	refused(t, run(t, "users", "limit", sid, "--limit", "0", "--window", "60"), "422", "validation-failed", "limit is required")

	// plans set / list / show, users plan: the API's answers, tables of
	// them, and the plan acting on the customer's key.
	planFile := filepath.Join(t.TempDir(), "growth.json")
	writePlan := func(units int64) {
		t.Helper()
		b, err := json.Marshal(growthPlan(units))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(planFile, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writePlan(400)
	if out := ok(t, "plans", "set", "clitier", "--file", planFile); !strings.Contains(out, "clitier") || !strings.Contains(out, "hourly") ||
		!strings.Contains(out, "graduated") || !strings.Contains(out, "400") {
		t.Fatalf("plans set:\n%s", out)
	}
	writePlan(450)
	setJSON := parse(t, ok(t, "plans", "set", "clitier", "--file", planFile, "--json"))
	same(t, "plans set --json", setJSON, apiGet(t, "/admin/plans/clitier", boot))
	same(t, "plans show --json", parse(t, ok(t, "plans", "show", "clitier", "--json")), apiGet(t, "/admin/plans/clitier", boot))
	same(t, "plans list --json", parse(t, ok(t, "plans", "list", "--json")), apiGet(t, "/admin/plans", boot))
	if out := ok(t, "plans", "list"); !strings.Contains(out, "default (config)") || !strings.Contains(out, "clitier") || !strings.Contains(out, "hourly 450/3600s fixed") {
		t.Fatalf("plans list:\n%s", out)
	}
	if out := ok(t, "plans", "show", "clitier"); !strings.Contains(out, "included units") || !strings.Contains(out, "450") || !strings.Contains(out, "sliding") && !strings.Contains(out, "fixed") {
		t.Fatalf("plans show:\n%s", out)
	}
	if out := ok(t, "users", "plan", sid, "clitier"); !strings.Contains(out, "clitier") || !strings.Contains(out, sid) {
		t.Fatalf("users plan:\n%s", out)
	}
	// The assignment is published: each usage process revalidates the
	// cached key on its next call (the call that notices may still answer
	// with the old principal), so poll with a deadline.
	for deadline := time.Now().Add(2 * time.Second); ; {
		w := obj(e.do(req{method: "GET", path: "/usage", key: key}).JSON(t)["window"])
		if w["limit"] == float64(450) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the key's window 2 s after users plan clitier: %v", w)
		}
	}
	if p := obj(obj(apiGet(t, up, boot))["plan"]); p["plan"] != "clitier" {
		t.Fatalf("the API's user after users plan: %v", p)
	}
	if out := ok(t, "users", "show", sid); !strings.Contains(out, "clitier since") {
		t.Fatalf("users show lacks the plan:\n%s", out)
	}
	back := obj(parse(t, ok(t, "users", "plan", sid, "default", "--json")))
	if back["plan"] != "default" || back["user_id"] != float64(uid) {
		t.Fatalf("users plan --json: %v", back)
	}
	refused(t, run(t, "plans", "show", "nope"), "404", "no such plan")
	refused(t, run(t, "users", "plan", sid, "nope"), "404", "no plan named")
	refused(t, run(t, "plans", "set", "default", "--file", planFile), "409", "conflict")
	bad := growthPlan(1)
	bad["limits"] = []any{}
	b, _ := json.Marshal(bad)
	badFile := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(badFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	refused(t, run(t, "plans", "set", "clitier", "--file", badFile), "422", "validation-failed", "limits")
	usage(t, run(t, "plans", "set", "clitier"), "--file is required")
	usage(t, run(t, "users", "plan", sid), "takes 2 argument")
	usage(t, run(t, "users", "plan", sid, "clitier", "--effective", "soon"), "RFC 3339")

	// keys issue / revoke, seen where they act.
	issued := run(t, "keys", "issue", sid, "--name", "from-cli", "--expires-in", "24h")
	m := regexp.MustCompile(`key (\d+) "from-cli" issued for user \d+, expires \S+ \S+\napi key \(shown once, store it now\): (\S+)\n$`).FindStringSubmatch(issued.out)
	if issued.code != 0 || m == nil || apikey.Validate(m[2]) != nil {
		t.Fatalf("keys issue: %+v", issued)
	}
	if s := usageStatus(m[2]); s != 200 {
		t.Fatalf("the issued key: %d", s)
	}
	issuedJSON := obj(parse(t, ok(t, "keys", "issue", sid, "--json")))
	newKey, _ := issuedJSON["api_key"].(string)
	if apikey.Validate(newKey) != nil || issuedJSON["expires_at"] != nil || issuedJSON["name"] != "" {
		t.Fatalf("keys issue --json: %v", issuedJSON)
	}
	var found bool
	for _, k := range obj(apiGet(t, up, boot))["keys"].([]any) {
		if k := obj(k); k["id"] == issuedJSON["id"] {
			found = true
			for f, v := range k {
				same(t, "issued key field "+f, issuedJSON[f], v)
			}
		}
	}
	if !found {
		t.Fatalf("the API does not list the issued key %v", issuedJSON["id"])
	}
	if out := ok(t, "keys", "revoke", m[1]); out != "key "+m[1]+" revoked\n" {
		t.Fatalf("keys revoke: %q", out)
	}
	if s := usageStatus(m[2]); s != 401 {
		t.Fatalf("a revoked key: %d, want 401", s)
	}
	if out := ok(t, "keys", "revoke", fmt.Sprint(issuedJSON["id"]), "--json"); out != "" {
		t.Fatalf("keys revoke --json printed %q (a 204 has no body)", out)
	}
	refused(t, run(t, "keys", "revoke", m[1]), "404", "no such active key")
	usage(t, run(t, "keys", "issue", sid, "--expires-in", "1500ms"), "whole number of seconds")
	refused(t, run(t, "keys", "issue", sid, "--expires-in", "10s"), "422", "expires_in")

	// tokens, and what a viewer may do.
	created := run(t, "tokens", "create", "--name", "dashboard", "--scope", "viewer")
	tm := regexp.MustCompile(`token (\d+) "dashboard" \(viewer\) created\noperator token \(shown once, store it now\): (rbo_\S+)\n$`).FindStringSubmatch(created.out)
	if created.code != 0 || tm == nil || operatorToken.Validate(tm[2]) != nil {
		t.Fatalf("tokens create: %+v", created)
	}
	viewer := tm[2]
	noLastUse := func(v any) any {
		for _, it := range items(v) {
			delete(obj(it), "last_used_at") // moves as tokens are used
		}
		return v
	}
	tokens := parse(t, ok(t, "tokens", "list", "--json"))
	same(t, "tokens list --json", noLastUse(tokens), noLastUse(apiGet(t, "/admin/tokens", boot)))
	if out := ok(t, "tokens", "list"); !strings.Contains(out, "dashboard") || !strings.Contains(out, "viewer") || !strings.Contains(out, "bootstrap") || strings.Contains(out, viewer) {
		t.Fatalf("tokens list:\n%s", out)
	}
	asViewer := func(args ...string) cliRun {
		return runWith(t, map[string]string{"RATEBILL_URL": e.base, "RATEBILL_TOKEN": viewer}, args...)
	}
	if r := asViewer("users", "show", sid, "--json"); r.code != 0 {
		t.Fatalf("a viewer reading: %+v", r)
	}
	refused(t, asViewer("users", "suspend", sid, "--reason", "not allowed"), "403", "forbidden", "may only read")
	refused(t, asViewer("keys", "issue", sid), "403", "forbidden")
	refused(t, asViewer("plans", "set", "clitier", "--file", planFile), "403", "forbidden")
	refused(t, asViewer("users", "plan", sid, "clitier"), "403", "forbidden")
	if r := asViewer("plans", "list"); r.code != 0 || !strings.Contains(r.out, "clitier") {
		t.Fatalf("a viewer listing plans: %+v", r)
	}
	refused(t, asViewer("tokens", "create", "--name", "x", "--scope", "admin"), "403", "forbidden")
	if v := obj(apiGet(t, up, boot)); v["suspended_at"] != nil {
		t.Fatalf("a viewer's refused suspension suspended the user: %v", v)
	}
	second := obj(parse(t, ok(t, "tokens", "create", "--name", "second", "--scope", "admin", "--json")))
	if operatorToken.Validate(fmt.Sprint(second["token"])) != nil || second["scope"] != "admin" {
		t.Fatalf("tokens create --json: %v", second)
	}
	if out := ok(t, "tokens", "revoke", tm[1]); out != "token "+tm[1]+" revoked\n" {
		t.Fatalf("tokens revoke: %q", out)
	}
	refused(t, asViewer("users", "list"), "401", "revoked operator token")
	refused(t, run(t, "tokens", "revoke", tm[1]), "404")
	usage(t, run(t, "tokens", "create", "--name", "x", "--scope", "root"), `--scope must be "admin" or "viewer"`)

	// audit tail: the API's page, and a table oldest first.
	same(t, "audit tail --json", parse(t, ok(t, "audit", "tail", "--user", sid, "--action", "user.suspend", "--json")),
		apiGet(t, fmt.Sprintf("/admin/audit?user=%d&action=user.suspend&limit=20", uid), boot))
	log := ok(t, "audit", "tail", "--user", sid, "--limit", "100")
	iSuspend, iReactivate, iRevoke := strings.Index(log, "user.suspend"), strings.Index(log, "user.reactivate"), strings.Index(log, "key.revoke")
	if iSuspend < 0 || iReactivate < iSuspend || iRevoke < iReactivate || !strings.Contains(log, "operator:bootstrap") {
		t.Fatalf("audit tail, oldest first:\n%s", log)
	}
	refused(t, run(t, "audit", "tail", "--action", "user.delete"), "422", "action")

	// audit tail --follow prints what is written after it started.
	ctx, cancel := context.WithCancel(context.Background())
	var fout, ferr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runEnv(ctx, baseEnv, &fout, &ferr, "--token-file", tokenFile, "audit", "tail", "--user", sid, "--follow", "--interval", "200ms", "--json")
	}()
	initial := len(items(apiGet(t, fmt.Sprintf("/admin/audit?user=%d&limit=20", uid), boot)))
	lines := func() []string { return strings.Split(strings.TrimSuffix(fout.String(), "\n"), "\n") }
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				cancel()
				t.Fatalf("audit tail --follow: no %s after 20 s: stdout %q stderr %q", what, fout.String(), ferr.String())
			}
		}
	}
	waitFor("first page", func() bool { return len(lines()) >= initial })
	ok(t, "users", "limit", sid, "--limit", "7", "--window", "7")
	waitFor("new entry", func() bool { return strings.Count(fout.String(), `"action":"user.limit.set"`) == 3 })
	cancel()
	if code := <-done; code != 0 || ferr.String() != "" {
		t.Fatalf("audit tail --follow ended with %d, stderr %q", code, ferr.String())
	}
	var prev float64
	for _, l := range lines() {
		id := obj(parse(t, l))["id"].(float64)
		if id <= prev {
			t.Fatalf("audit tail --follow: ids not increasing:\n%s", fout.String())
		}
		prev = id
	}
	outputs = append(outputs, fout.String(), ferr.String())

	// Credentials and addresses.
	unknown, _ := operatorToken.Generate(nil)
	refused(t, runWith(t, baseEnv, "--token", unknown, "users", "list"), "401", "unknown operator token")
	refused(t, runWith(t, baseEnv, "--token", "rbo_nope", "users", "list"), "401", "malformed operator token")
	if r := runWith(t, map[string]string{"RATEBILL_URL": e.base, "RATEBILL_TOKEN": boot}, "users", "show", sid); r.code != 0 {
		t.Fatalf("RATEBILL_TOKEN: %+v", r)
	}
	if r := runWith(t, map[string]string{"RATEBILL_TOKEN": unknown}, "--url", e.base+"/", "--token", boot, "users", "list", "--limit", "1"); r.code != 0 {
		t.Fatalf("--token over RATEBILL_TOKEN, --url with a slash: %+v", r)
	}
	refused(t, run(t, "users", "show", "999999999"), "404", "no such user")
	refused(t, run(t, "users", "suspend", "999999999", "--reason", "x"), "404", "no such user")
	if r := run(t, "--url", "http://127.0.0.1:1", "users", "list"); r.code != cli.ExitUnreachable || !strings.Contains(r.err, "cannot reach the API at http://127.0.0.1:1") || strings.Count(r.err, "\n") != 1 {
		t.Fatalf("unreachable API: %+v", r)
	}
	usage(t, runWith(t, baseEnv, "users", "list"), "no operator token")
	usage(t, runWith(t, baseEnv, "--token-file", filepath.Join(t.TempDir(), "missing"), "users", "list"), "reading --token-file")
	usage(t, run(t, "users", "show", "abc"), "USER_ID must be a positive whole number")
	usage(t, run(t, "users", "show"), "takes 1 argument")
	usage(t, run(t, "users", "frobnicate"), "frobnicate")
	usage(t, run(t, "users", "list", "--limit", "1000"), "--limit must be from 1 to 100")
	usage(t, run(t, "--url", "ftp://x", "users", "list"), "--url")
	usage(t, run(t, "--bogus"), "unknown flag")

	// No output held the operator token (it is printed nowhere) or the
	// customer's key.
	for _, o := range outputs {
		if strings.Contains(o, boot) || strings.Contains(o, key) {
			t.Fatalf("an output holds a secret: %q", o)
		}
	}
}
