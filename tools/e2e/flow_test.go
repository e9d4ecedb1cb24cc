package e2e

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ratebill/platform/shared/apikey"
)

// TestSeedFlow is the seed README's "Test the Application" section, made
// exact, plus the errors around it.
func TestSeedFlow(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})

	h := e.do(req{method: "GET", path: "/health"})
	if h.Status != 200 {
		t.Fatalf("health %d %s", h.Status, h.Body)
	}
	hb := h.JSON(t)
	checks, _ := hb["checks"].(map[string]any)
	if hb["status"] != "ok" || checks["postgres"] == nil || checks["redis"] == nil {
		t.Fatalf("health body %s", h.Body)
	}

	r := e.do(req{method: "POST", path: "/users/", body: `{"username":"testuser","email":"test@example.com"}`})
	if r.Status != http.StatusCreated {
		t.Fatalf("sign-up: %d %s", r.Status, r.Body)
	}
	u := r.JSON(t)
	key, _ := u["api_key"].(string)
	if !strings.HasPrefix(key, "sk_") || len(key) != 52 || u["username"] != "testuser" || u["email"] != "test@example.com" ||
		u["id"] == nil || u["created_at"] == nil || !strings.HasPrefix(key, u["api_key_prefix"].(string)) {
		t.Fatalf("sign-up body %s", r.Body)
	}
	if r.Header.Get("Location") != "/me" {
		t.Fatalf("Location %q", r.Header.Get("Location"))
	}
	// Only the hash is stored.
	if n := e.queryInt(`SELECT count(*) FROM api_keys WHERE key_hash = sha256(convert_to($1, 'UTF8'))`, key); n != 1 {
		t.Fatalf("stored hash not found (%d)", n)
	}
	if n := e.queryInt(`SELECT count(*) FROM api_keys WHERE position(convert_to($1, 'UTF8') in key_hash) > 0 OR display_prefix = $1`, key); n != 0 {
		t.Fatal("the key itself is stored")
	}

	me := e.do(req{method: "GET", path: "/me", key: key})
	if me.Status != 200 {
		t.Fatalf("/me %d %s", me.Status, me.Body)
	}
	mb := me.JSON(t)
	if mb["username"] != "testuser" || mb["api_key"] != nil || mb["rate_limit"] == nil || strings.Contains(string(me.Body), key) {
		t.Fatalf("/me body %s", me.Body)
	}

	for i := 1; i <= 3; i++ {
		us := e.do(req{method: "GET", path: "/usage", key: key})
		if us.Status != 200 {
			t.Fatalf("/usage %d %s", us.Status, us.Body)
		}
		ub := us.JSON(t)
		if ub["total_requests"] != float64(i) {
			t.Fatalf("request %d: total_requests %v", i, ub["total_requests"])
		}
		w := ub["window"].(map[string]any)
		if w["used"] != float64(i) || w["remaining"] != float64(1000-i) || w["limit"] != float64(1000) {
			t.Fatalf("window %v", w)
		}
		for _, name := range []string{"RateLimit-Policy", "RateLimit", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
			if us.Header.Get(name) == "" {
				t.Fatalf("missing header %s", name)
			}
		}
		if got := us.Header.Get("X-RateLimit-Remaining"); got != strconv.Itoa(1000-i) {
			t.Fatalf("X-RateLimit-Remaining %s", got)
		}
		if got := us.Header.Get("RateLimit-Policy"); got != `"default";q=1000;w=86400` {
			t.Fatalf("RateLimit-Policy %s", got)
		}
	}

	b := e.do(req{method: "GET", path: "/billing", key: key})
	if b.Status != 200 {
		t.Fatalf("/billing %d %s", b.Status, b.Body)
	}
	bb := b.JSON(t)
	if bb["requests"] != float64(3) || bb["amount"] != "0.03" || bb["unit_price"] != "0.01" || bb["currency"] != "USD" {
		t.Fatalf("/billing body %s", b.Body)
	}
	start, _ := time.Parse(time.RFC3339Nano, bb["period_start"].(string))
	end, _ := time.Parse(time.RFC3339Nano, bb["period_end"].(string))
	if end.Sub(start) != 24*time.Hour || time.Since(end) > time.Minute {
		t.Fatalf("period %v .. %v", start, end)
	}
	// Billing is not metered.
	if again := e.do(req{method: "GET", path: "/billing", key: key}).JSON(t); again["requests"] != float64(3) {
		t.Fatalf("billing counted itself: %v", again["requests"])
	}
	if n := e.queryInt(`SELECT count(*) FROM usage_events`); n != 3 {
		t.Fatalf("%d usage rows, want 3", n)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	e := setup(t, options{replicas: 1, env: map[string]string{"MAX_BODY_BYTES": "1024"}})
	key := e.signup("taken")
	typo := "a"
	if key[10] == 'a' {
		typo = "b"
	}
	badKey := key[:10] + typo + key[11:] // one mistyped character

	tests := []struct {
		name   string
		req    req
		status int
		code   string
		field  string
	}{
		{"no key", req{method: "GET", path: "/me"}, 401, "unauthorized", ""},
		{"malformed key", req{method: "GET", path: "/usage", key: "sk_short"}, 401, "unauthorized", ""},
		{"checksum typo", req{method: "GET", path: "/billing", key: badKey}, 401, "unauthorized", ""},
		{"unknown key", req{method: "GET", path: "/me", key: unknownKey()}, 401, "unauthorized", ""},
		{"duplicate username", req{method: "POST", path: "/users/", body: map[string]string{"username": "TAKEN", "email": "new@example.com"}}, 409, "conflict", "username"},
		{"duplicate email", req{method: "POST", path: "/users/", body: map[string]string{"username": "fresh", "email": "Taken@Example.com"}}, 409, "conflict", "email"},
		{"missing fields", req{method: "POST", path: "/users/", body: `{}`}, 422, "validation-failed", "username"},
		{"bad username", req{method: "POST", path: "/users/", body: map[string]string{"username": "a b", "email": "ab@example.com"}}, 422, "validation-failed", "username"},
		{"bad email", req{method: "POST", path: "/users/", body: map[string]string{"username": "abc", "email": "not-an-email"}}, 422, "validation-failed", "email"},
		{"display-name email", req{method: "POST", path: "/users/", body: map[string]string{"username": "abc", "email": "Bob <bob@example.com>"}}, 422, "validation-failed", "email"},
		{"wrong type", req{method: "POST", path: "/users/", body: `{"username":5,"email":"x@example.com"}`}, 422, "validation-failed", "username"},
		{"unknown field", req{method: "POST", path: "/users/", body: `{"username":"abc","email":"x@example.com","admin":true}`}, 422, "validation-failed", "admin"},
		{"malformed JSON", req{method: "POST", path: "/users/", body: `{"username":`}, 400, "malformed-request", ""},
		{"two objects", req{method: "POST", path: "/users/", body: `{} {}`}, 400, "malformed-request", ""},
		{"empty body", req{method: "POST", path: "/users/", body: ``}, 400, "malformed-request", ""},
		{"form body", req{method: "POST", path: "/users/", body: `username=a`, contentType: "application/x-www-form-urlencoded"}, 415, "unsupported-media-type", ""},
		{"too large", req{method: "POST", path: "/users/", body: `{"username":"` + strings.Repeat("a", 2000) + `"}`}, 413, "payload-too-large", ""},
		{"wrong method", req{method: "DELETE", path: "/usage", key: key}, 405, "method-not-allowed", ""},
		{"unrouted", req{method: "GET", path: "/admin"}, 404, "not-found", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(tt.req)
			p := expectProblem(t, r, tt.status, tt.code)
			if tt.field != "" && !strings.Contains(fmt.Sprint(p["errors"]), tt.field) {
				t.Fatalf("errors %v do not name %s", p["errors"], tt.field)
			}
			if tt.status == 401 && r.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
			if tt.status == 405 && r.Header.Get("Allow") != "GET" {
				t.Fatalf("Allow %q", r.Header.Get("Allow"))
			}
			if r.Header.Get("X-Request-Id") == "" {
				t.Fatal("no X-Request-Id")
			}
		})
	}
	// None of the bad requests changed anything.
	if n := e.queryInt(`SELECT count(*) FROM users`); n != 1 {
		t.Fatalf("%d users after bad sign-ups, want 1", n)
	}
	if n := e.queryInt(`SELECT count(*) FROM usage_events`); n != 0 {
		t.Fatalf("%d usage rows after rejected requests, want 0", n)
	}
}

// TestExactLimitAcrossReplicas: two usage processes share one Redis and
// one Postgres; 400 concurrent requests against a limit of 50 admit
// exactly 50, and exactly 50 are billed.
func TestExactLimitAcrossReplicas(t *testing.T) {
	t.Parallel()
	e := setup(t, options{env: map[string]string{"API_RATE_LIMIT": "50", "API_RATE_WINDOW": "3600"}})
	key := e.signup("racer")
	var mu sync.Mutex
	statuses := map[int]int{}
	totals := map[float64]bool{}
	errs := make(chan error, 400)
	var wg sync.WaitGroup
	for i := 0; i < 400; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := e.try(req{method: "GET", path: "/usage", key: key})
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			defer mu.Unlock()
			statuses[r.Status]++
			switch r.Status {
			case 200:
				body, err := r.Object()
				if err != nil {
					errs <- err
					return
				}
				total, _ := body["total_requests"].(float64)
				totals[total] = true
			case 429:
				if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 3600 {
					t.Errorf("429 Retry-After %q", r.Header.Get("Retry-After"))
				}
				if r.Header.Get("X-RateLimit-Remaining") != "0" {
					t.Errorf("429 X-RateLimit-Remaining %q", r.Header.Get("X-RateLimit-Remaining"))
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if statuses[200] != 50 || statuses[429] != 350 || len(statuses) != 2 {
		t.Fatalf("statuses %v, want 50×200 and 350×429", statuses)
	}
	if len(totals) != 50 {
		t.Fatalf("%d distinct running totals among 50 admitted requests", len(totals))
	}
	b := e.do(req{method: "GET", path: "/billing", key: key}).JSON(t)
	if b["requests"] != float64(50) || b["amount"] != "0.50" {
		t.Fatalf("billing %v", b)
	}
	if n := e.queryInt(`SELECT count(*) FROM usage_events`); n != 50 {
		t.Fatalf("%d usage rows, want 50", n)
	}
	if len(e.stack.Instances["usage"]) != 2 {
		t.Fatalf("usage replicas %v", e.stack.Instances["usage"])
	}
}

// unknownKey is well formed (valid checksum) but was never issued.
func unknownKey() string {
	k, _ := apikey.Generate(nil)
	return k
}
