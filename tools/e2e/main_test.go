// Package e2e walks the seed's flow over HTTP against the real function
// processes behind the local gateway, with real Postgres and Redis.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ratebill/platform/shared/routes"
	"github.com/ratebill/platform/tools/gateway"
	"github.com/ratebill/platform/tools/stack"
)

// newClient returns the HTTP client every test uses. Its transport checks
// every request and response against the OpenAPI document (see
// contract_test.go): a response the document does not allow, or a request
// the document rejects that the API accepts (and the reverse), fails t;
// every operation and status seen is recorded for TestMain's coverage
// check.
func newClient(t testing.TB) *http.Client {
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &contractTransport{t: t, base: http.DefaultTransport},
		// Redirects are part of the contract: the tests see them as they are.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// TestMain runs the tests, then fails the run when the API and its OpenAPI
// document have drifted apart in either direction: a documented
// operation and status that no test exercised, or a path of the routing
// table missing from the document (or the reverse). The coverage half is
// skipped when -run or -skip selects only some tests.
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if err := checkContractDrift(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: contract: %v\n", err)
		code = 1
	}
	if partialRun() {
		fmt.Fprintln(os.Stderr, "contract: coverage of the OpenAPI document not checked (-run or -skip selects part of the tests)")
	} else if err := checkContractCoverage(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: contract: %v\n", err)
		code = 1
	} else {
		fmt.Fprintln(os.Stderr, "contract: every documented operation and status was exercised and validated")
	}
	os.Exit(code)
}

// env is one test's whole platform: its own database, its own Redis, the
// four functions as processes (usage twice) and a gateway in front.
type env struct {
	t      testing.TB
	base   string
	dbURL  string
	redis  *stack.RedisServer
	stack  *stack.Stack
	client *http.Client
}

type options struct {
	env         map[string]string
	databaseURL string
	replicas    int  // usage function processes (default 2)
	users       int  // users function processes (default 1)
	metrics     bool // Prometheus metrics per process (stack.Options.Metrics)
}

func setup(t testing.TB, o options) *env {
	t.Helper()
	e := &env{t: t, client: newClient(t)}
	e.dbURL = o.databaseURL
	if e.dbURL == "" {
		e.dbURL = stack.Postgres(t)
	}
	e.redis = stack.Redis(t)
	replicas := o.replicas
	if replicas == 0 {
		replicas = 2
	}
	envs := map[string]string{"TRUSTED_PROXY_HOPS": "1"}
	for k, v := range o.env {
		envs[k] = v
	}
	e.stack = stack.Start(t, stack.Options{
		DatabaseURL: e.dbURL,
		RedisURL:    e.redis.URL,
		Env:         envs,
		Replicas:    map[string]int{routes.Usage: replicas, routes.Users: max(o.users, 1)},
		Metrics:     o.metrics,
	})
	backends := map[string]http.Handler{}
	for fn, urls := range e.stack.Instances {
		p, err := gateway.Proxy(urls)
		if err != nil {
			t.Fatal(err)
		}
		backends[fn] = p
	}
	gw, err := gateway.New(backends)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	e.base = srv.URL
	return e
}

// response is a decoded HTTP response.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a generic map, failing the test if it is
// not one (test goroutine only; others use Object).
func (r *response) JSON(t testing.TB) map[string]any {
	t.Helper()
	m, err := r.Object()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Object decodes the body into a generic map.
func (r *response) Object() (map[string]any, error) {
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		return nil, fmt.Errorf("body is not a JSON object: %v: %s", err, r.Body)
	}
	return m, nil
}

type req struct {
	base              string // default: the gateway; else one function process's base URL
	method, path, key string
	body              any // string: sent as is; otherwise JSON-encoded
	contentType       string
	header            map[string]string
}

// do sends r and fails the test on a transport error. Only the test's
// own goroutine may call it; spawned goroutines use try and report back.
func (e *env) do(r req) *response {
	e.t.Helper()
	resp, err := e.try(r)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

// try sends r and returns a transport error instead of failing the test,
// so goroutines can report it to the test's goroutine.
func (e *env) try(r req) (*response, error) {
	var body io.Reader
	switch b := r.body.(type) {
	case nil:
	case string:
		body = bytes.NewBufferString(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		buf, _ := json.Marshal(b)
		body = bytes.NewReader(buf)
	}
	base := e.base
	if r.base != "" {
		base = r.base
	}
	hr, err := http.NewRequest(r.method, base+r.path, body)
	if err != nil {
		return nil, err
	}
	if r.body != nil {
		ct := r.contentType
		if ct == "" {
			ct = "application/json"
		}
		hr.Header.Set("Content-Type", ct)
	}
	if r.key != "" {
		hr.Header.Set("X-API-Key", r.key)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	resp, err := e.client.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the body: %w", r.method, r.path, err)
	}
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// signup creates a user and returns its API key.
func (e *env) signup(username string) string {
	e.t.Helper()
	r := e.do(req{method: "POST", path: "/users/", body: map[string]string{"username": username, "email": username + "@example.com"}})
	if r.Status != http.StatusCreated {
		e.t.Fatalf("sign-up %s: %d %s", username, r.Status, r.Body)
	}
	key, _ := r.JSON(e.t)["api_key"].(string)
	if key == "" {
		e.t.Fatalf("sign-up returned no api_key: %s", r.Body)
	}
	return key
}

// queryInt runs a counting query on the test's database.
func (e *env) queryInt(sql string, args ...any) int64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int64
	if err := c.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// expectProblem checks a problem+json response's status and type.
func expectProblem(t testing.TB, r *response, status int, code string) map[string]any {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json", ct)
	}
	p := r.JSON(t)
	if p["status"] != float64(status) || p["title"] == "" || p["type"] != "urn:problem-type:ratebill:"+code {
		t.Fatalf("problem %v, want status %d type %s", p, status, code)
	}
	return p
}
