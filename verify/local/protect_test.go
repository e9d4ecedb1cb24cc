package local

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	ratebill "github.com/ratebill/platform/client"
	"github.com/ratebill/platform/examples/forecast"
	"github.com/ratebill/platform/shared/apikey"
	"github.com/ratebill/platform/shared/routes"
	"github.com/ratebill/platform/tools/stack"
)

// protected is a real platform (the function processes, usage twice) and
// the example forecast API, counting what it serves.
type protected struct {
	stack    *stack.Stack
	dbURL    string
	api      *forecast.API
	upstream *httptest.Server
}

func startProtected(t *testing.T) *protected {
	t.Helper()
	if os.Getenv(stack.DatabaseURLVariable) == "" {
		missing(t, "%s is unset: run through `make test`, which starts Postgres", stack.DatabaseURLVariable)
	}
	p := &protected{dbURL: stack.Postgres(t), api: forecast.New()}
	p.stack = stack.Start(t, stack.Options{
		DatabaseURL: p.dbURL,
		RedisURL:    stack.Redis(t).URL,
		Env: map[string]string{
			"API_RATE_LIMIT": "50", "API_RATE_WINDOW": "86400",
			"AUTH_CACHE_TTL":     "0", // a revoked key is refused at once
			"TRUSTED_PROXY_HOPS": "1",
		},
		Replicas: map[string]int{routes.Usage: 2},
	})
	p.upstream = httptest.NewServer(p.api)
	t.Cleanup(p.upstream.Close)
	return p
}

// signup creates a user on the platform and returns its key.
func (p *protected) signup(t *testing.T, name string) string {
	t.Helper()
	resp, b := doRequest(t, "POST", p.stack.Instances[routes.Users][0]+"/users/",
		strings.NewReader(fmt.Sprintf(`{"username":%q,"email":"%s@example.com"}`, name, name)), map[string]string{"Content-Type": "application/json"})
	var u struct {
		APIKey string `json:"api_key"`
	}
	if resp.StatusCode != 201 || json.Unmarshal(b, &u) != nil || u.APIKey == "" {
		t.Fatalf("sign-up: %d %s", resp.StatusCode, b)
	}
	return u.APIKey
}

// bill returns the key's bill for the last 24 hours: calls and units.
func (p *protected) bill(t *testing.T, key string) (requests, units int64) {
	t.Helper()
	resp, b := doRequest(t, "GET", p.stack.Instances[routes.Billing][0]+"/billing", nil, map[string]string{"X-API-Key": key})
	var bill struct {
		Requests int64 `json:"requests"`
		Units    int64 `json:"units"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(b, &bill) != nil {
		t.Fatalf("billing: %d %s", resp.StatusCode, b)
	}
	return bill.Requests, bill.Units
}

func (p *protected) revokeAll(t *testing.T) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), p.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), `UPDATE api_keys SET revoked_at = now()`); err != nil {
		t.Fatal(err)
	}
}

// call is one client call of the protected API and what it got.
type call struct {
	method, path string
	cost         int64
	status       int
	header       http.Header
	body         []byte
}

// storm sends n concurrent calls of mixed costs (1, 5 and 10 units)
// through base with key.
func storm(t *testing.T, base, key string, n int) []call {
	t.Helper()
	kinds := []struct{ method, path, body string }{
		{"GET", "/v1/forecast?city=Oslo", ""},
		{"GET", "/v1/forecast/daily?days=3", ""},
		{"POST", "/v1/forecast/batch", `{"cities":["Oslo","Rome"]}`},
	}
	// Its own connections, closed at the end: nginx's graceful stop waits
	// for open ones.
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	calls := make([]call, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		k := kinds[i%len(kinds)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(k.method, base+k.path, strings.NewReader(k.body))
			req.Header.Set("X-API-Key", key)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			path, _, _ := strings.Cut(k.path, "?")
			calls[i] = call{k.method, path, forecast.Costs[k.method+" "+path], resp.StatusCode, resp.Header, b}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return calls
}

// checkExact asserts the exactness the platform promises for calls made
// with a fresh key under a limit of 50 units: admitted units never above
// the limit, a call refused only when its cost did not fit, the API
// reached exactly for the admitted calls, and the bill equal to what it
// served.
func checkExact(t *testing.T, p *protected, key string, calls []call, servedBefore map[string]int64) {
	t.Helper()
	var admittedUnits, admitted int64
	admittedBy := map[string]int64{}
	var refusedCosts []int64
	for _, c := range calls {
		switch c.status {
		case 200:
			admitted++
			admittedUnits += c.cost
			admittedBy[c.method+" "+c.path]++
			if c.header.Get("X-RateLimit-Limit") != "50" {
				t.Errorf("admitted call without the rate-limit headers: %v", c.header)
			}
		case 429:
			refusedCosts = append(refusedCosts, c.cost)
			if ra, err := strconv.Atoi(c.header.Get("Retry-After")); err != nil || ra < 1 {
				t.Errorf("429 with Retry-After %q", c.header.Get("Retry-After"))
			}
			if c.header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("429 as %q: %s", c.header.Get("Content-Type"), c.body)
			}
		default:
			t.Errorf("%s %s: %d %s", c.method, c.path, c.status, c.body)
		}
	}
	if admittedUnits > 50 || admitted == 0 {
		t.Fatalf("admitted %d calls for %d units under a limit of 50", admitted, admittedUnits)
	}
	remaining := 50 - admittedUnits
	for _, c := range refusedCosts {
		if c <= remaining {
			t.Fatalf("a call of cost %d was refused although %d units were left at the end", c, remaining)
		}
	}
	served := p.api.Served()
	for k, n := range admittedBy {
		if served[k]-servedBefore[k] != n {
			t.Errorf("%s: the API served %d, the platform admitted %d", k, served[k]-servedBefore[k], n)
		}
	}
	requests, units := p.bill(t, key)
	if requests != admitted || units != admittedUnits {
		t.Fatalf("billed %d calls and %d units; the API served %d calls for %d units", requests, units, admitted, admittedUnits)
	}
	t.Logf("%d calls: %d admitted for %d units, %d refused (429); billed %d units", len(calls), admitted, admittedUnits, len(refusedCosts), units)
}

// TestProtectWithNginx runs the example API behind a real nginx with the
// shipped nginx/protect-api.conf, whose auth_request asks the real
// platform (two usage processes) about every call.
func TestProtectWithNginx(t *testing.T) {
	p := startProtected(t)
	platform := make([]string, 0, 2)
	for _, u := range p.stack.Instances[routes.Usage] {
		platform = append(platform, "server "+strings.TrimPrefix(u, "http://")+";")
	}
	conf := string(readRepoFile(t, "nginx/protect-api.conf"))
	ngx := runNginx(t, nil, func(dir string, port int) string {
		c := strings.Replace(conf, "listen 8081;", fmt.Sprintf("listen 127.0.0.1:%d;", port), 1)
		return fmt.Sprintf("    upstream ratebill { %s }\n    upstream protected_api { server %s; }\n%s",
			strings.Join(platform, " "), strings.TrimPrefix(p.upstream.URL, "http://"), c)
	})

	key := p.signup(t, "nginxcustomer")
	checkExact(t, p, key, storm(t, ngx.URL, key, 400), nil)

	t.Run("bad keys are 401 and never reach the API", func(t *testing.T) {
		before := p.api.Served()["GET /v1/forecast"]
		unknown, _ := apikey.Generate(nil) // well formed, never issued
		for name, k := range map[string]string{"missing": "", "malformed": "sk_nope", "unknown": unknown} {
			h := map[string]string{}
			if k != "" {
				h["X-API-Key"] = k
			}
			resp, b := doRequest(t, "GET", ngx.URL+"/v1/forecast", nil, h)
			if resp.StatusCode != 401 || resp.Header.Get("Content-Type") != "application/problem+json" || resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s key: %d %s", name, resp.StatusCode, b)
			}
		}
		revoked := p.signup(t, "revoked")
		if resp, b := doRequest(t, "GET", ngx.URL+"/v1/forecast", nil, map[string]string{"X-API-Key": revoked}); resp.StatusCode != 200 {
			t.Fatalf("before revocation: %d %s", resp.StatusCode, b)
		}
		p.revokeAll(t)
		if resp, b := doRequest(t, "GET", ngx.URL+"/v1/forecast", nil, map[string]string{"X-API-Key": revoked}); resp.StatusCode != 401 {
			t.Errorf("revoked key: %d %s", resp.StatusCode, b)
		}
		if got := p.api.Served()["GET /v1/forecast"] - before; got != 1 {
			t.Errorf("the API served %d calls, want only the one before revocation", got)
		}
	})

	t.Run("platform down is 503 and the API is not called", func(t *testing.T) {
		before := p.api.Served()
		for i := range p.stack.Instances[routes.Usage] {
			if err := p.stack.StopInstance(routes.Usage, i); err != nil {
				t.Fatal(err)
			}
		}
		resp, b := doRequest(t, "GET", ngx.URL+"/v1/forecast", nil, map[string]string{"X-API-Key": key})
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("platform down: %d %v %s", resp.StatusCode, resp.Header, b)
		}
		if after := p.api.Served(); after["GET /v1/forecast"] != before["GET /v1/forecast"] {
			t.Error("the API was called while the platform was down")
		}
	})
}

// TestProtectWithGoMiddleware runs the example API wrapped in the Go
// client's middleware (package ratebill, module client), which calls the
// real platform's POST /verify for every request, and releases a call
// whose handler failed.
func TestProtectWithGoMiddleware(t *testing.T) {
	p := startProtected(t)
	c, err := ratebill.New(p.stack.Instances[routes.Usage][0])
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ratebill.Middleware(c, ratebill.MiddlewareOptions{Cost: forecast.Cost})(p.api))
	t.Cleanup(srv.Close)

	key := p.signup(t, "gocustomer")
	checkExact(t, p, key, storm(t, srv.URL, key, 400), nil)

	t.Run("an upstream failure is released, not billed", func(t *testing.T) {
		k := p.signup(t, "flakycustomer")
		if resp, b := doRequest(t, "GET", srv.URL+"/v1/forecast", nil, map[string]string{"X-API-Key": k}); resp.StatusCode != 200 {
			t.Fatalf("forecast: %d %s", resp.StatusCode, b)
		}
		resp, b := doRequest(t, "GET", srv.URL+"/v1/flaky", nil, map[string]string{"X-API-Key": k})
		if resp.StatusCode != 502 {
			t.Fatalf("flaky: %d %s, want the API's 502", resp.StatusCode, b)
		}
		if requests, units := p.bill(t, k); requests != 1 || units != 1 {
			t.Fatalf("billed %d calls, %d units; want only the forecast (the failed call released)", requests, units)
		}
		if p.api.Served()["GET /v1/flaky"] != 1 {
			t.Fatalf("served %v", p.api.Served())
		}
	})

	t.Run("bad keys are 401 and never reach the API", func(t *testing.T) {
		before := p.api.Served()["GET /v1/forecast"]
		unknown, _ := apikey.Generate(nil)
		for name, k := range map[string]string{"missing": "", "malformed": "sk_nope", "unknown": unknown} {
			h := map[string]string{}
			if k != "" {
				h["X-API-Key"] = k
			}
			resp, b := doRequest(t, "GET", srv.URL+"/v1/forecast", nil, h)
			if resp.StatusCode != 401 || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s key: %d %s", name, resp.StatusCode, b)
			}
		}
		revoked := p.signup(t, "revokedgo")
		p.revokeAll(t)
		if resp, b := doRequest(t, "GET", srv.URL+"/v1/forecast", nil, map[string]string{"X-API-Key": revoked}); resp.StatusCode != 401 {
			t.Errorf("revoked key: %d %s", resp.StatusCode, b)
		}
		if got := p.api.Served()["GET /v1/forecast"] - before; got != 0 {
			t.Errorf("the API served %d calls with bad keys", got)
		}
	})

	t.Run("platform down is 503 and the API is not called", func(t *testing.T) {
		before := p.api.Served()["GET /v1/forecast"]
		for i := range p.stack.Instances[routes.Usage] {
			if err := p.stack.StopInstance(routes.Usage, i); err != nil {
				t.Fatal(err)
			}
		}
		resp, b := doRequest(t, "GET", srv.URL+"/v1/forecast", nil, map[string]string{"X-API-Key": key})
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
			t.Errorf("platform down: %d %v %s", resp.StatusCode, resp.Header, b)
		}
		if p.api.Served()["GET /v1/forecast"] != before {
			t.Error("the API was called while the platform was down")
		}
	})
}
