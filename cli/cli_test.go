package cli

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// The commands against the real platform are tested in tools/e2e
// (TestCLI); these cover what needs no API: rendering, error lines,
// usage errors and an unreachable address.

func TestWriteUsers(t *testing.T) {
	created := time.Date(2026, 11, 28, 17, 51, 7, 0, time.FixedZone("CET", 3600))
	reason := "chargeback"
	users := []User{
		{ID: 7, Username: "alice", Email: "alice@example.com", CreatedAt: created},
		{ID: 12, Username: "bob\tsmith", Email: "b@example.com", CreatedAt: created, SuspendedAt: &created, SuspendedReason: &reason, Limit: &Limit{Limit: 100, Window: 60}},
	}
	var b bytes.Buffer
	if err := writeUsers(&b, users); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"ID  USERNAME   EMAIL              STATUS     LIMIT         CREATED\n" +
		"7   alice      alice@example.com  active     default       2026-11-28 16:51:07Z\n" +
		"12  bob smith  b@example.com      suspended  100 per 60 s  2026-11-28 16:51:07Z\n"
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestWriteUserDetail(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	past, future := now.Add(-time.Hour), now.Add(time.Hour)
	d := UserDetail{User: User{ID: 3, Username: "carol", Email: "c@example.com", CreatedAt: past},
		Keys: []Key{
			{ID: 9, Name: "ci", APIKeyPrefix: "sk_abcdefgh", CreatedAt: past, ExpiresAt: &future},
			{ID: 8, APIKeyPrefix: "sk_12345678", CreatedAt: past, ExpiresAt: &past},
			{ID: 7, APIKeyPrefix: "sk_zzzzzzzz", CreatedAt: past, RevokedAt: &past, LastUsedAt: &past},
		}}
	d.Usage.TotalRequests, d.Usage.TotalUnits = 4, 10
	var b bytes.Buffer
	if err := writeUserDetail(&b, d, now); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		"usage     4 requests, 10 units\n",
		"limit     default\n",
		"9       ci    sk_abcdefgh  active   2026-11-30 23:00:00Z  2026-12-01 01:00:00Z  -\n",
		"8       -     sk_12345678  expired",
		"7       -     sk_zzzzzzzz  revoked  2026-11-30 23:00:00Z  -                     2026-11-30 23:00:00Z\n",
	} {
		if !strings.Contains(b.String(), w) {
			t.Fatalf("lacks %q:\n%s", w, b.String())
		}
	}
}

func TestWriteAudit(t *testing.T) {
	at := time.Date(2026, 11, 28, 17, 51, 7, 0, time.UTC)
	var e AuditEntry
	e.ID, e.At, e.Action, e.Target, e.RemoteAddr = 5, at, "user.suspend", "user:42", "203.0.113.7"
	op, user := int64(1), int64(42)
	e.Actor.Type, e.Actor.ID, e.Actor.Name, e.UserID = "operator", &op, "bootstrap", &user
	var b bytes.Buffer
	if err := writeAudit(&b, []AuditEntry{e}, true); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"ID  AT                    ACTOR                  ACTION        USER  TARGET   REMOTE ADDR\n" +
		"5   2026-11-28 17:51:07Z  operator:bootstrap(1)  user.suspend  42    user:42  203.0.113.7\n"
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestAPIErrorLine(t *testing.T) {
	for _, c := range []struct {
		name string
		err  *APIError
		want string
	}{
		{"problem", &APIError{Method: "POST", Path: "/admin/users/1/suspend", Status: 403,
			Problem: &Problem{Type: problemPrefix + "forbidden", Title: "Forbidden", Status: 403, Detail: "viewer\nonly", RequestID: "r1"}},
			"POST /admin/users/1/suspend: 403 forbidden: viewer only [request r1]"},
		{"fields", &APIError{Method: "PUT", Path: "/admin/users/1/limit", Status: 422,
			Problem: &Problem{Type: problemPrefix + "validation-failed", Detail: "invalid limit: see errors",
				Errors: []FieldError{{"limit", "is required"}, {"window", "is required"}}}},
			"PUT /admin/users/1/limit: 422 validation-failed: invalid limit: see errors (limit is required; window is required)"},
		{"foreign problem", &APIError{Method: "GET", Path: "/admin/users", Status: 400, Problem: &Problem{Type: "about:blank", Title: "Bad Request"}},
			"GET /admin/users: 400 Bad Request"},
		{"not a problem", &APIError{Method: "GET", Path: "/admin/users", Status: 502, Body: "<html>\nbad gateway</html>"},
			"GET /admin/users: 502 Bad Gateway: <html> bad gateway</html>"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.err.Error(); got != c.want {
				t.Fatalf("got  %q\nwant %q", got, c.want)
			}
		})
	}
}

// run runs the command line with env and no HTTP client of the test's.
func run(t *testing.T, env map[string]string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, Options{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }})
	return out.String(), errb.String(), code
}

func TestUsageErrorsSendNothing(t *testing.T) {
	// Every case fails before a request: the URL is a port nothing
	// listens on, so a request would exit 3, not 2.
	env := map[string]string{"RATEBILL_URL": closedURL(t), "RATEBILL_TOKEN": "rbo_x"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"users", "show"}, "takes 1 argument(s): USER_ID (got 0)"},
		{[]string{"users", "show", "0"}, "USER_ID must be a positive whole number"},
		{[]string{"users", "show", "007"}, "USER_ID must be a positive whole number"},
		{[]string{"keys", "revoke", "-3"}, "unknown shorthand flag"},
		{[]string{"users", "limit", "1", "--window", "5"}, "together"},
		{[]string{"users", "suspend", "1"}, "--reason is required"},
		{[]string{"keys", "issue", "1", "--expires-in", "-1s"}, "positive whole number of seconds"},
		{[]string{"audit", "tail", "--limit", "0"}, "--limit must be from 1 to 100"},
		{[]string{"audit", "tail", "--follow", "--interval", "1ms"}, "--interval"},
		{[]string{"tokens", "create", "--scope", "admin"}, "--name is required"},
		{[]string{"nope"}, `unknown command "nope"`},
		{[]string{"--timeout", "-1s", "users", "list"}, "--timeout must not be negative"},
		{[]string{"--url", "127.0.0.1:8080", "users", "list"}, "not an http(s) base URL"},
		{[]string{"--token", "rbo_a b", "users", "list"}, "characters a token cannot have"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			out, errs, code := run(t, env, c.args...)
			if code != ExitUsage || out != "" || !strings.Contains(errs, c.want) || !strings.HasPrefix(errs, "ratebill: ") {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2 and %q", code, out, errs, c.want)
			}
		})
	}
	if _, errs, code := run(t, map[string]string{"RATEBILL_URL": closedURL(t)}, "users", "list"); code != ExitUsage || !strings.Contains(errs, "no operator token") {
		t.Fatalf("no token: exit %d, %q", code, errs)
	}
}

func TestUnreachable(t *testing.T) {
	u := closedURL(t)
	secret := "rbo_" + strings.Repeat("s", 49)
	_, errs, code := run(t, map[string]string{"RATEBILL_TOKEN": secret}, "--url", u, "users", "list")
	if code != ExitUnreachable || !strings.Contains(errs, "cannot reach the API at "+u) || strings.Count(errs, "\n") != 1 {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	if strings.Contains(errs, secret) {
		t.Fatal("the error shows the token")
	}
}

// closedURL is an http URL on which nothing listens (a port that was
// just free).
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}
