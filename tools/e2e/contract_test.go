package e2e

// The contract: shared/openapi/openapi.json is the one description of the
// public API, and every exchange of these tests is checked against it.
//
//   - newClient's transport (contractTransport) validates each request and
//     response with kin-openapi's openapi3filter: status, headers, media
//     type (application/problem+json included) and body schema. A request
//     the document rejects must be answered 4xx (or 503); a request it
//     accepts must never get 400, 415 or 422, so the documented schemas
//     are neither looser nor stricter than the code. Paths and methods the
//     document does not list must answer a 404 or 405 problem.
//   - TestMain then fails the run if a documented operation and status was
//     never seen, and checkContractDrift compares the document with
//     routes.Table (paths, methods, authentication) both ways.
//
// The tests below reach the statuses the other tests do not.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/ratebill/platform/shared/openapi"
	"github.com/ratebill/platform/shared/routes"
)

// contract is the parsed document, its router and what the tests saw.
type contract struct {
	doc     *openapi3.T
	router  routers.Router
	problem *openapi3.Schema

	mu   sync.Mutex
	seen map[string]int // "GET /usage 200" -> exchanges validated
}

var (
	contractOnce sync.Once
	theContract  *contract
	contractErr  error
)

// getContract loads shared/openapi's document once per test binary.
func getContract() (*contract, error) {
	contractOnce.Do(func() { theContract, contractErr = loadContract(openapi.Spec()) })
	return theContract, contractErr
}

func loadContract(spec []byte) (*contract, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("loading the OpenAPI document: %w", err)
	}
	if !doc.IsOpenAPI31OrLater() || !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		return nil, fmt.Errorf("openapi is %q, want 3.1.x", doc.OpenAPI)
	}
	// Validate also checks every example against its schema.
	if err := doc.Validate(loader.Context, openapi3.EnableExamplesValidation()); err != nil {
		return nil, fmt.Errorf("the OpenAPI document is invalid: %w", err)
	}
	// "Try it out" must call the origin that served the page.
	if len(doc.Servers) != 1 || doc.Servers[0].URL != "/" {
		return nil, fmt.Errorf("servers must be exactly [{url: \"/\"}] (same origin), got %d servers", len(doc.Servers))
	}
	// The tests' base URLs are random loopback ports: route by path alone
	// (gorillamux matches paths exactly; the legacy router would take
	// POST /users/ for POST /users).
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("routing the document: %w", err)
	}
	p := doc.Components.Schemas["Problem"]
	if p == nil || p.Value == nil {
		return nil, errors.New("components.schemas.Problem is missing")
	}
	for _, ct := range []string{"text/html", "text/css", "text/javascript", "text/csv"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.PlainBodyDecoder)
	}
	return &contract{doc: doc, router: router, problem: p.Value, seen: map[string]int{}}, nil
}

// operations lists every documented "METHOD PATH STATUS".
func (c *contract) operations() []string {
	var out []string
	for path, item := range c.doc.Paths.Map() {
		for method, op := range item.Operations() {
			for status := range op.Responses.Map() {
				out = append(out, method+" "+path+" "+status)
			}
		}
	}
	sort.Strings(out)
	return out
}

func (c *contract) record(key string) {
	c.mu.Lock()
	c.seen[key]++
	c.mu.Unlock()
}

var validationOptions = &openapi3filter.Options{
	IncludeResponseStatus: true, // an undocumented status is a violation
	MultiError:            true,
	AuthenticationFunc: func(_ context.Context, in *openapi3filter.AuthenticationInput) error {
		s := in.SecurityScheme
		h := in.RequestValidationInput.Request.Header
		switch {
		case s != nil && s.Type == "apiKey" && s.In == "header":
			if h.Get(s.Name) == "" {
				return fmt.Errorf("no %s header", s.Name)
			}
		case s != nil && s.Type == "http" && s.Scheme == "bearer":
			if !strings.HasPrefix(h.Get("Authorization"), "Bearer ") {
				return errors.New("no Authorization: Bearer header")
			}
		default:
			return fmt.Errorf("unsupported security scheme %q", in.SecuritySchemeName)
		}
		return nil
	},
	SchemaValidationOptions: []openapi3.SchemaValidationOption{openapi3.EnableFormatValidation()},
}

// check validates one exchange and returns its violations.
// asDocumented maps a request to a route of the table that serves any
// method, or every path below it (/auth), onto the operation the document
// describes for it: the path itself with GET.
func asDocumented(req *http.Request) *http.Request {
	for _, r := range routes.Table {
		if r.Method == routes.AnyMethod && (req.URL.Path == r.Path || r.Prefix && strings.HasPrefix(req.URL.Path, r.Path+"/")) {
			out := req.Clone(context.Background())
			out.Method, out.URL.Path = http.MethodGet, r.Path
			return out
		}
	}
	return req
}

func (c *contract) check(req *http.Request, reqBody []byte, resp *http.Response, body []byte) []string {
	ctx := context.Background()
	status := resp.StatusCode
	var bad []string
	if resp.Header.Get("X-Request-Id") == "" {
		bad = append(bad, "no X-Request-Id header")
	}

	route, params, err := c.router.FindRoute(asDocumented(req))
	if err != nil {
		// Not an operation of the document: only the documented generic
		// answers are allowed (info.description): 404 for an unknown path,
		// 405 with Allow for another method on a known one.
		want := http.StatusNotFound
		if err.Error() == routers.ErrMethodNotAllowed.Error() {
			want = http.StatusMethodNotAllowed
		}
		switch {
		case status != want:
			bad = append(bad, fmt.Sprintf("undocumented operation (%v) answered %d, want a %d problem", err, status, want))
		case want == http.StatusMethodNotAllowed && resp.Header.Get("Allow") == "":
			bad = append(bad, "405 without Allow")
		}
		bad = append(bad, c.checkProblem(resp, body, status)...)
		c.record(fmt.Sprintf("(undocumented) %d", status))
		return bad
	}

	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: validationOptions}
	req.Body = io.NopCloser(bytes.NewReader(reqBody))
	reqErr := openapi3filter.ValidateRequest(ctx, in)

	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: resp.Header, Options: validationOptions}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		bad = append(bad, fmt.Sprintf("response violates the document: %v", err))
	} else {
		c.record(fmt.Sprintf("%s %s %d", route.Method, route.Path, status))
	}
	switch {
	case reqErr != nil && !(status >= 400 && status < 500 || status == http.StatusServiceUnavailable):
		bad = append(bad, fmt.Sprintf("the document rejects this request (%v) but the API answered %d", reqErr, status))
	case reqErr == nil && status == http.StatusUnprocessableEntity && crossField[route.Method+" "+route.Path]:
		// A rule between parameters, which the document states in words.
	case reqErr == nil && (status == http.StatusBadRequest || status == http.StatusUnsupportedMediaType || status == http.StatusUnprocessableEntity):
		bad = append(bad, fmt.Sprintf("the document accepts this request but the API answered %d: %s", status, body))
	}
	return bad
}

// crossField lists the operations whose 422 may answer a request each
// parameter of which the document accepts on its own: the history's
// rules between parameters (from before to, at most 1,500 buckets) and
// its bounds on dates (1970 to 3000, real calendar days), and a plan's
// rules between fields (tier order, the deployment's currency), which JSON
// Schema cannot state for query parameters; the parameters' descriptions
// state them.
var crossField = map[string]bool{"GET /usage/history": true, "GET /admin/usage/history": true, "GET /admin/usage/top": true,
	"PUT /admin/plans/{name}": true}

// checkProblem validates a problem+json answer against the Problem schema.
func (c *contract) checkProblem(resp *http.Response, body []byte, status int) []string {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "application/problem+json" {
		return []string{fmt.Sprintf("Content-Type %q, want application/problem+json", resp.Header.Get("Content-Type"))}
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return []string{fmt.Sprintf("problem body is not JSON: %v", err)}
	}
	if err := c.problem.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors()); err != nil {
		return []string{fmt.Sprintf("problem body violates components.schemas.Problem: %v", err)}
	}
	if m, _ := v.(map[string]any); m["status"] != float64(status) {
		return []string{fmt.Sprintf("problem status %v, HTTP status %d", m["status"], status)}
	}
	return nil
}

// validating bounds concurrent validations to the number of CPUs.
var validating = make(chan struct{}, runtime.GOMAXPROCS(0))

// contractTransport validates every exchange against the document and
// reports violations on t.
type contractTransport struct {
	t    testing.TB
	base http.RoundTripper
}

func (ct *contractTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c, err := getContract()
	if err != nil {
		return nil, err
	}
	var reqBody []byte
	if req.Body != nil {
		reqBody, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	send := req.Clone(req.Context())
	send.Body = io.NopCloser(bytes.NewReader(reqBody))
	if req.Body == nil {
		send.Body = nil
	}
	resp, err := ct.base.RoundTrip(send)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	vreq := req.Clone(context.Background())
	// Validation compiles schemas on every call (kin-openapi does not
	// cache them); hundreds of concurrent requests validating at once
	// only thrash memory, so validate a few at a time.
	validating <- struct{}{}
	violations := c.check(vreq, reqBody, resp, body)
	<-validating
	for _, v := range violations {
		ct.t.Errorf("contract: %s %s -> %d (X-Request-Id %s): %s", req.Method, req.URL.RequestURI(), resp.StatusCode, resp.Header.Get("X-Request-Id"), v)
	}
	return resp, nil
}

// checkContractDrift compares the document with routes.Table: the same
// (method, path) pairs, X-API-Key security exactly on the routes that
// authenticate by key, and the operator bearer token exactly on the
// operator routes.
func checkContractDrift() error {
	c, err := getContract()
	if err != nil {
		return err
	}
	var errs []error
	documented := map[string]*openapi3.Operation{}
	for path, item := range c.doc.Paths.Map() {
		for method, op := range item.Operations() {
			documented[method+" "+path] = op
		}
	}
	for _, r := range routes.Table {
		if r.Method == routes.AnyMethod {
			// Any method: the document describes the ones clients use.
			found := false
			for k := range documented {
				if strings.HasSuffix(k, " "+r.Path) {
					delete(documented, k)
					found = true
				}
			}
			if !found {
				errs = append(errs, fmt.Errorf("routes.Table serves any method of %s (function %s) but the OpenAPI document describes none", r.Path, r.Function))
			}
			continue
		}
		op, ok := documented[r.Method+" "+r.Path]
		if !ok {
			errs = append(errs, fmt.Errorf("routes.Table serves %s %s (function %s) but the OpenAPI document does not describe it", r.Method, r.Path, r.Function))
			continue
		}
		delete(documented, r.Method+" "+r.Path)
		security := c.doc.Security
		if op.Security != nil {
			security = *op.Security
		}
		var schemes []string
		for _, req := range security {
			for name := range req {
				schemes = append(schemes, name)
			}
		}
		want := []string(nil)
		switch r.Auth {
		case routes.AuthKey:
			want = []string{"ApiKeyAuth"}
		case routes.AuthOperator:
			want = []string{"OperatorToken"}
		}
		if !slices.Equal(schemes, want) {
			errs = append(errs, fmt.Errorf("%s %s: routes.Table says auth %q, the document's security schemes are %v (want %v)", r.Method, r.Path, r.Auth, schemes, want))
		}
		if _, limited := op.Responses.Map()["429"]; r.Metered && !limited {
			errs = append(errs, fmt.Errorf("%s %s is metered but documents no 429", r.Method, r.Path))
		}
	}
	for k := range documented {
		errs = append(errs, fmt.Errorf("the OpenAPI document describes %s, which routes.Table does not route", k))
	}
	return errors.Join(errs...)
}

// checkContractCoverage fails unless every documented operation and
// status was validated at least once.
func checkContractCoverage() error {
	c, err := getContract()
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var missing []string
	for _, k := range c.operations() {
		if c.seen[k] == 0 {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("documented but never exercised by a test (document a status only if it can happen, and test it):\n\t%s", strings.Join(missing, "\n\t"))
	}
	return nil
}

// partialRun reports whether -run or -skip selects only some tests.
func partialRun() bool {
	for _, name := range []string{"test.run", "test.skip"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return true
		}
	}
	return false
}

// TestContractDocument: the document loads, is valid OpenAPI 3.1 with
// valid examples, and agrees with routes.Table.
func TestContractDocument(t *testing.T) {
	t.Parallel()
	c, err := getContract()
	if err != nil {
		t.Fatal(err)
	}
	if err := checkContractDrift(); err != nil {
		t.Fatal(err)
	}
	ops := c.operations()
	if len(ops) < len(routes.Table) {
		t.Fatalf("%d documented statuses for %d routes", len(ops), len(routes.Table))
	}
	// Every problem response is application/problem+json and says which
	// problem type it is.
	for path, item := range c.doc.Paths.Map() {
		for method, op := range item.Operations() {
			for status, r := range op.Responses.Map() {
				code, _ := strconv.Atoi(status)
				if r.Value.Headers["X-Request-Id"] == nil || !r.Value.Headers["X-Request-Id"].Value.Required {
					t.Errorf("%s %s %s: X-Request-Id is not a required header", method, path, status)
				}
				if code < 400 || path == "/health" {
					continue
				}
				if len(r.Value.Content) != 1 || r.Value.Content.Get("application/problem+json") == nil {
					t.Errorf("%s %s %s: error content is not only application/problem+json", method, path, status)
				}
			}
		}
	}
}

// TestContractSignUp exercises every status of both sign-up paths: the
// seed's POST /users/ and POST /users, which the routing table also
// routes. The sign-up limit is set to the number of requests before the
// last two, which must be refused with 429.
func TestContractSignUp(t *testing.T) {
	t.Parallel()
	type tc struct {
		name        string
		body        string
		contentType string
		status      int
		code        string
	}
	cases := func(p string) []tc {
		u := "slash"
		if !strings.HasSuffix(p, "/") {
			u = "noslash"
		}
		return []tc{
			{"created", `{"username":"` + u + `","email":"` + u + `@example.com"}`, "", 201, ""},
			{"duplicate", `{"username":"` + strings.ToUpper(u) + `","email":"other-` + u + `@example.com"}`, "", 409, "conflict"},
			{"malformed", `{"username":`, "", 400, "malformed-request"},
			{"too large", `{"username":"` + strings.Repeat("a", 2048) + `","email":"a@example.com"}`, "", 413, "payload-too-large"},
			{"not JSON", `username=a`, "text/plain", 415, "unsupported-media-type"},
			{"invalid", `{"username":"a","email":"nope"}`, "", 422, "validation-failed"},
		}
	}
	paths := []string{"/users/", "/users"}
	limit := 0
	for _, p := range paths {
		limit += len(cases(p))
	}
	e := setup(t, options{replicas: 1, env: map[string]string{"SIGNUP_RATE_LIMIT": strconv.Itoa(limit), "MAX_BODY_BYTES": "1024"}})
	for _, p := range paths {
		for _, c := range cases(p) {
			r := e.do(req{method: "POST", path: p, body: c.body, contentType: c.contentType})
			if c.status == 201 {
				if r.Status != 201 || r.Header.Get("Location") != "/me" || r.Header.Get("RateLimit-Policy") != `"signup";q=`+strconv.Itoa(limit)+`;w=3600` {
					t.Fatalf("%s %s: %d %v %s", p, c.name, r.Status, r.Header, r.Body)
				}
				continue
			}
			prob := expectProblem(t, r, c.status, c.code)
			if (c.status == 409 || c.status == 422) && prob["errors"] == nil {
				t.Errorf("%s %s: no errors array: %s", p, c.name, r.Body)
			}
		}
	}
	for _, p := range paths {
		r := e.do(req{method: "POST", path: p, body: `{"username":"late","email":"late@example.com"}`})
		expectProblem(t, r, 429, "rate-limited")
		if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 3600 || r.Header.Get("X-RateLimit-Remaining") != "0" {
			t.Errorf("%s 429 headers %v", p, r.Header)
		}
	}
	if n := e.queryInt(`SELECT count(*) FROM users`); n != 2 {
		t.Fatalf("%d users, want 2", n)
	}
}

// TestContractVerify exercises every status of POST /verify and each
// code it answers today, then checks that GET /billing bills exactly the
// admitted units.
func TestContractVerify(t *testing.T) {
	t.Parallel()
	e := setup(t, options{replicas: 1, env: map[string]string{"API_RATE_LIMIT": "10", "MAX_BODY_BYTES": "1024"}})
	key := e.signup("verifier")
	verify := func(body any, header map[string]string) (*response, map[string]any) {
		t.Helper()
		r := e.do(req{method: "POST", path: "/verify", body: body, header: header})
		if r.Status != 200 {
			t.Fatalf("POST /verify %v: %d %s", body, r.Status, r.Body)
		}
		return r, r.JSON(t)
	}
	r, v := verify(map[string]any{"key": key, "cost": 4, "endpoint": "GET /forecast", "request_id": "contract-verify-1"}, nil)
	if v["valid"] != true || v["code"] != "VALID" || v["cost"] != float64(4) || v["total_units"] != float64(4) || r.Header.Get("X-RateLimit-Remaining") != "6" {
		t.Fatalf("valid: %s %v", r.Body, r.Header)
	}
	r, v = verify(map[string]any{"key": key, "cost": 4, "endpoint": "GET /forecast", "request_id": "contract-verify-1"}, nil)
	if v["replayed"] != true || v["cost"] != float64(0) || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %s %v", r.Body, r.Header)
	}
	if _, v = verify(map[string]any{"key": key}, map[string]string{"X-Request-Id": "contract-verify-2"}); v["request_id"] != "contract-verify-2" || v["cost"] != float64(1) {
		t.Fatalf("header id: %v", v)
	}
	r, v = verify(map[string]any{"key": key, "cost": 6}, nil)
	if v["code"] != "RATE_LIMITED" || v["valid"] != false || r.Header.Get("Retry-After") == "" {
		t.Fatalf("rate limited: %s %v", r.Body, r.Header)
	}
	if _, v = verify(map[string]any{"key": key, "cost": 5}, nil); v["code"] != "VALID" {
		t.Fatalf("exact fit: %v", v)
	}
	if _, v = verify(map[string]any{"key": "sk_short"}, nil); v["code"] != "MALFORMED_KEY" || v["user"] != nil {
		t.Fatalf("malformed key: %v", v)
	}
	if _, v = verify(map[string]any{"key": unknownKey()}, nil); v["code"] != "NOT_FOUND" {
		t.Fatalf("unknown key: %v", v)
	}
	for _, c := range []struct {
		name        string
		body        string
		contentType string
		header      map[string]string
		status      int
		code        string
	}{
		{"malformed", `{"key":`, "", nil, 400, "malformed-request"},
		{"bad request id", `{"key":"` + key + `","request_id":"no spaces"}`, "", nil, 400, "invalid-request-id"},
		{"too large", `{"key":"` + key + `","endpoint":"` + strings.Repeat("a", 2048) + `"}`, "", nil, 413, "payload-too-large"},
		{"not JSON", `key=` + key, "application/x-www-form-urlencoded", nil, 415, "unsupported-media-type"},
		{"no key", `{"cost":1}`, "", nil, 422, "validation-failed"},
		{"cost 0", `{"key":"` + key + `","cost":0}`, "", nil, 422, "validation-failed"},
		{"cost fraction", `{"key":"` + key + `","cost":1.5}`, "", nil, 422, "validation-failed"},
		{"endpoint control", `{"key":"` + key + `","endpoint":"a\u0007"}`, "", nil, 422, "validation-failed"},
		{"unknown field", `{"key":"` + key + `","plan":"free"}`, "", nil, 422, "validation-failed"},
	} {
		r := e.do(req{method: "POST", path: "/verify", body: c.body, contentType: c.contentType, header: c.header})
		expectProblem(t, r, c.status, c.code)
	}
	// Billed: 4 + 1 + 5 units in three calls; the replay, the denial and
	// the refused bodies cost nothing.
	b := e.do(req{method: "GET", path: "/billing", key: key}).JSON(t)
	if b["requests"] != float64(3) || b["units"] != float64(10) || b["amount"] != "0.10" {
		t.Fatalf("billing %v", b)
	}
	if u := e.do(req{method: "GET", path: "/usage", key: key}); u.Status != 429 {
		t.Fatalf("/usage with the window full: %d %s", u.Status, u.Body)
	}
}

// TestContractAuth: /auth, as nginx's auth_request and Envoy's ext_authz
// call it: 200 with the caller and the headers when admitted, 401 for a
// bad key, 403 with the client's status for every other denial; any
// method and any path below /auth/; billed exactly as /verify.
func TestContractAuth(t *testing.T) {
	t.Parallel()
	e := setup(t, options{replicas: 1, env: map[string]string{"API_RATE_LIMIT": "10"}})
	key := e.signup("proxied")
	auth := func(method, path string, h map[string]string) *response {
		t.Helper()
		return e.do(req{method: method, path: path, header: h})
	}
	r := auth("GET", "/auth", map[string]string{"X-API-Key": key, "X-Ratebill-Cost": "4", "X-Original-Method": "GET", "X-Original-URI": "/v1/forecast?city=Oslo", "X-Request-Id": "proxied-0001"})
	if r.Status != 200 || r.Header.Get("X-Ratebill-User-Id") == "" || r.Header.Get("X-Ratebill-Cost") != "4" || r.Header.Get("X-RateLimit-Remaining") != "6" {
		t.Fatalf("admitted: %d %v %s", r.Status, r.Header, r.Body)
	}
	if r := auth("GET", "/auth", map[string]string{"X-API-Key": key, "X-Ratebill-Cost": "4", "X-Request-Id": "proxied-0001"}); r.Status != 200 || r.Header.Get("Idempotent-Replayed") != "true" || r.Header.Get("X-Ratebill-Cost") != "0" {
		t.Fatalf("replay: %d %v", r.Status, r.Header)
	}
	if r := auth("POST", "/auth/v1/forecast/batch", map[string]string{"X-API-Key": key, "X-Ratebill-Cost": "5"}); r.Status != 200 {
		t.Fatalf("Envoy-style path and method: %d %s", r.Status, r.Body)
	}
	for _, c := range []struct {
		name   string
		header map[string]string
		status int
		client string
		code   string
	}{
		{"missing key", map[string]string{}, 401, "", "unauthorized"},
		{"malformed key", map[string]string{"X-API-Key": "sk_nope"}, 401, "", "unauthorized"},
		{"unknown key", map[string]string{"X-API-Key": unknownKey()}, 401, "", "unauthorized"},
		{"cost does not fit", map[string]string{"X-API-Key": key, "X-Ratebill-Cost": "2"}, 403, "429", "rate-limited"},
		{"bad cost", map[string]string{"X-API-Key": key, "X-Ratebill-Cost": "ten"}, 403, "400", "validation-failed"},
		{"bad request id", map[string]string{"X-API-Key": key, "X-Request-Id": "has spaces in it"}, 403, "400", "invalid-request-id"},
		{"another cost under an id", map[string]string{"X-API-Key": key, "X-Ratebill-Cost": "1", "X-Request-Id": "proxied-0001"}, 403, "409", "request-id-conflict"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := auth("GET", "/auth", c.header)
			if r.Status != c.status || r.Header.Get("X-Ratebill-Status") != c.client {
				t.Fatalf("%d X-Ratebill-Status=%q %s, want %d %q", r.Status, r.Header.Get("X-Ratebill-Status"), r.Body, c.status, c.client)
			}
			var p map[string]any
			if err := json.Unmarshal(r.Body, &p); err != nil || p["type"] != "urn:problem-type:ratebill:"+c.code {
				t.Fatalf("problem %s (%v), want type %s", r.Body, err, c.code)
			}
			if c.client == "429" && r.Header.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
		})
	}
	b := e.do(req{method: "GET", path: "/billing", key: key}).JSON(t)
	if b["requests"] != float64(2) || b["units"] != float64(9) {
		t.Fatalf("billing %v: want 2 calls, 9 units (the replay and the denials free)", b)
	}
}

// TestContractReplaysAndRelease: a recorded request id is answered again
// at most 3 times (then DUPLICATE on /verify, 409 on /usage), another
// cost under it is 409, and a release token releases its call once:
// the units come back to the quota and off the bill.
func TestContractReplaysAndRelease(t *testing.T) {
	t.Parallel()
	e := setup(t, options{replicas: 1, env: map[string]string{"API_RATE_LIMIT": "10", "MAX_BODY_BYTES": "1024"}})
	key := e.signup("releaser")
	verify := func(body any) map[string]any {
		t.Helper()
		r := e.do(req{method: "POST", path: "/verify", body: body})
		if r.Status != 200 {
			t.Fatalf("POST /verify %v: %d %s", body, r.Status, r.Body)
		}
		return r.JSON(t)
	}
	first := verify(map[string]any{"key": key, "cost": 3, "request_id": "contract-release-1"})
	token, _ := first["release_token"].(string)
	if first["code"] != "VALID" || !strings.HasPrefix(token, "rt_") {
		t.Fatalf("first answer: %v", first)
	}
	for i := 1; i <= 3; i++ {
		if v := verify(map[string]any{"key": key, "cost": 3, "request_id": "contract-release-1"}); v["replayed"] != true || v["cost"] != float64(0) || v["release_token"] != nil {
			t.Fatalf("replay %d: %v", i, v)
		}
	}
	if v := verify(map[string]any{"key": key, "cost": 3, "request_id": "contract-release-1"}); v["code"] != "DUPLICATE" || v["valid"] != false {
		t.Fatalf("fourth replay: %v", v)
	}
	expectProblem(t, e.do(req{method: "POST", path: "/verify", body: map[string]any{"key": key, "cost": 2, "request_id": "contract-release-1"}}), 409, "request-id-conflict")

	// /usage: the same bound on the same ledger.
	for i := 0; i < 4; i++ {
		r := e.do(req{method: "GET", path: "/usage", key: key, header: map[string]string{"X-Request-Id": "contract-usage-replay"}})
		if r.Status != 200 || (i > 0) != (r.Header.Get("Idempotent-Replayed") == "true") {
			t.Fatalf("/usage #%d: %d %v", i, r.Status, r.Header)
		}
	}
	expectProblem(t, e.do(req{method: "GET", path: "/usage", key: key, header: map[string]string{"X-Request-Id": "contract-usage-replay"}}), 409, "request-id-reused")
	// A malformed id is refused, never replaced (a replacement would bill
	// the client's retry twice).
	expectProblem(t, e.do(req{method: "GET", path: "/usage", key: key, header: map[string]string{"X-Request-Id": "no spaces allowed"}}), 400, "invalid-request-id")

	// Release: 3 units back, once.
	before := e.do(req{method: "GET", path: "/billing", key: key}).JSON(t)
	rel := e.do(req{method: "POST", path: "/verify/release", body: map[string]string{"release_token": token}})
	if rel.Status != 200 {
		t.Fatalf("release: %d %s", rel.Status, rel.Body)
	}
	if v := rel.JSON(t); v["released"] != true || v["cost"] != float64(3) || v["request_id"] != "contract-release-1" {
		t.Fatalf("release body %v", v)
	}
	after := e.do(req{method: "GET", path: "/billing", key: key}).JSON(t)
	if before["units"].(float64)-after["units"].(float64) != 3 || before["requests"].(float64)-after["requests"].(float64) != 1 {
		t.Fatalf("billing before %v, after %v: want 1 call and 3 units off", before, after)
	}
	if v := verify(map[string]any{"key": key, "cost": 9}); v["code"] != "VALID" {
		t.Fatalf("the released units are back in the quota (1 used by /usage, 9 fit): %v", v)
	}
	for _, c := range []struct {
		name, body, contentType string
		status                  int
		code                    string
	}{
		{"again", `{"release_token":"` + token + `"}`, "", 409, "conflict"},
		{"unknown", `{"release_token":"rt_` + strings.Repeat("A", 43) + `"}`, "", 404, "not-found"},
		{"wrong shape", `{"release_token":"forecast-0001"}`, "", 404, "not-found"},
		{"malformed", `{"release_token":`, "", 400, "malformed-request"},
		{"too large", `{"release_token":"` + strings.Repeat("a", 2048) + `"}`, "", 413, "payload-too-large"},
		{"not JSON", `release_token=x`, "text/plain", 415, "unsupported-media-type"},
		{"missing", `{}`, "", 422, "validation-failed"},
		{"unknown field", `{"release_token":"x","request_id":"contract-release-1"}`, "", 422, "validation-failed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			expectProblem(t, e.do(req{method: "POST", path: "/verify/release", body: c.body, contentType: c.contentType}), c.status, c.code)
		})
	}
}

// TestContractPostgresDown points every function at a Postgres that does
// not answer: every operation that needs it answers 503 with Retry-After,
// and /health names Postgres.
func TestContractPostgresDown(t *testing.T) {
	t.Parallel()
	e := setup(t, options{replicas: 1, databaseURL: "postgres://ratebill@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"})
	key := unknownKey() // well formed: only Postgres can say it is unknown
	token, _ := operatorToken.Generate(nil)
	op := map[string]string{"Authorization": "Bearer " + token}
	for _, r := range []req{
		{method: "POST", path: "/users/", body: map[string]string{"username": "nobody", "email": "nobody@example.com"}},
		{method: "POST", path: "/users", body: map[string]string{"username": "nobody", "email": "nobody@example.com"}},
		{method: "GET", path: "/me", key: key},
		{method: "GET", path: "/keys", key: key},
		{method: "POST", path: "/keys", key: key, body: map[string]any{"name": "x"}},
		{method: "POST", path: "/keys/1/rotate", key: key, body: map[string]any{"grace_seconds": 0}},
		{method: "DELETE", path: "/keys/1", key: key},
		{method: "GET", path: "/usage", key: key},
		{method: "GET", path: "/usage/history", key: key},
		{method: "GET", path: "/billing", key: key},
		{method: "GET", path: "/billing/invoices", key: key},
		{method: "GET", path: "/billing/cap", key: key},
		{method: "PUT", path: "/billing/cap", key: key, body: map[string]string{"amount": "1.00"}},
		{method: "DELETE", path: "/billing/cap", key: key},
		{method: "POST", path: "/verify", body: map[string]any{"key": key, "cost": 2}},
		{method: "POST", path: "/verify/release", body: map[string]string{"release_token": "rt_" + strings.Repeat("B", 43)}},
		{method: "GET", path: "/auth", header: map[string]string{"X-API-Key": key}},
		{method: "GET", path: "/admin/users", header: op},
		{method: "GET", path: "/admin/users/1", header: op},
		{method: "POST", path: "/admin/users/1/suspend", header: op, body: map[string]string{"reason": "x"}},
		{method: "POST", path: "/admin/users/1/reactivate", header: op},
		{method: "PUT", path: "/admin/users/1/limit", header: op, body: map[string]int{"limit": 1, "window": 1}},
		{method: "DELETE", path: "/admin/users/1/limit", header: op},
		{method: "PUT", path: "/admin/users/1/cap", header: op, body: map[string]string{"amount": "1.00"}},
		{method: "DELETE", path: "/admin/users/1/cap", header: op},
		{method: "POST", path: "/admin/users/1/keys", header: op, body: map[string]string{"name": "x"}},
		{method: "DELETE", path: "/admin/keys/1", header: op},
		{method: "GET", path: "/admin/tokens", header: op},
		{method: "POST", path: "/admin/tokens", header: op, body: map[string]string{"name": "x", "scope": "admin"}},
		{method: "DELETE", path: "/admin/tokens/1", header: op},
		{method: "GET", path: "/admin/audit", header: op},
		{method: "GET", path: "/admin/plans", header: op},
		{method: "GET", path: "/admin/plans/growth", header: op},
		{method: "PUT", path: "/admin/plans/growth", header: op, body: growthPlan(1)},
		{method: "PUT", path: "/admin/users/1/plan", header: op, body: map[string]string{"plan": "growth"}},
		{method: "GET", path: "/admin/invoices?period=2026-10&format=csv", header: op},
		{method: "GET", path: "/admin/usage/history", header: op},
		{method: "GET", path: "/admin/usage/top", header: op},
	} {
		resp := e.do(r)
		p := expectProblem(t, resp, 503, "service-unavailable")
		if !strings.Contains(fmt.Sprint(p["detail"]), "postgres") || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s: %v %s", r.method, r.path, resp.Header, resp.Body)
		}
	}
	h := e.do(req{method: "GET", path: "/health"})
	if h.Status != 503 || h.Header.Get("Retry-After") == "" {
		t.Fatalf("health %d %v", h.Status, h.Header)
	}
	checks := h.JSON(t)["checks"].(map[string]any)
	if checks["postgres"].(map[string]any)["status"] != "down" || checks["redis"].(map[string]any)["status"] != "ok" {
		t.Fatalf("health %s", h.Body)
	}
}

// TestContractDocs: /openapi.json is the embedded document, byte for byte;
// /docs and its assets are served from the binary with ETags that
// revalidate to 304; an unknown asset is a 404 problem.
func TestContractDocs(t *testing.T) {
	t.Parallel()
	e := setup(t, options{replicas: 1})

	s := e.do(req{method: "GET", path: "/openapi.json"})
	if s.Status != 200 || !bytes.Equal(s.Body, openapi.Spec()) || s.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("/openapi.json: %d %q, %d bytes", s.Status, s.Header.Get("Content-Type"), len(s.Body))
	}
	revalidate(t, e, "/openapi.json", s)

	page := e.do(req{method: "GET", path: "/docs"})
	if page.Status != 200 || !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("/docs: %d %q", page.Status, page.Header.Get("Content-Type"))
	}
	if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("/docs Content-Security-Policy %q", csp)
	}
	revalidate(t, e, "/docs", page)
	for _, a := range openapi.Assets {
		if !strings.Contains(string(page.Body), `"docs?asset=`+a+`"`) {
			t.Errorf("the page does not load asset %s", a)
		}
		r := e.do(req{method: "GET", path: "/docs?asset=" + a})
		want := "text/css"
		if strings.HasSuffix(a, ".js") {
			want = "text/javascript"
		}
		if r.Status != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), want) || len(r.Body) == 0 {
			t.Fatalf("asset %s: %d %q", a, r.Status, r.Header.Get("Content-Type"))
		}
		revalidate(t, e, "/docs?asset="+a, r)
	}
	bundle := e.do(req{method: "GET", path: "/docs?asset=swagger-ui-bundle.js"})
	if !strings.Contains(string(bundle.Body), "SwaggerUIBundle") {
		t.Fatal("the bundle is not Swagger UI")
	}
	expectProblem(t, e.do(req{method: "GET", path: "/docs?asset=../openapi.go"}), 404, "not-found")
}

// readRepoFile reads a file by its path from the repository root.
func readRepoFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", filepath.FromSlash(path)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// revalidate asks for path again with the ETag of first: 304, no body.
func revalidate(t *testing.T, e *env, path string, first *response) {
	t.Helper()
	tag := first.Header.Get("ETag")
	if tag == "" || first.Header.Get("Cache-Control") == "" {
		t.Fatalf("%s: ETag %q Cache-Control %q", path, tag, first.Header.Get("Cache-Control"))
	}
	r := e.do(req{method: "GET", path: path, header: map[string]string{"If-None-Match": tag}})
	if r.Status != http.StatusNotModified || len(r.Body) != 0 || r.Header.Get("ETag") != tag {
		t.Fatalf("%s with If-None-Match %s: %d, %d bytes", path, tag, r.Status, len(r.Body))
	}
}

// TestContractSwaggerUIPinned: the embedded assets are the pinned
// swagger-ui-dist files, as scripts/update-swagger-ui.sh wrote them.
func TestContractSwaggerUIPinned(t *testing.T) {
	t.Parallel()
	sums := readRepoFile(t, "shared/openapi/swagger-ui/SHA256SUMS")
	for _, line := range strings.Split(strings.TrimSpace(sums), "\n") {
		want, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q", line)
		}
		sum := sha256.Sum256([]byte(readRepoFile(t, "shared/openapi/swagger-ui/"+name)))
		if fmt.Sprintf("%x", sum) != want {
			t.Errorf("%s does not match SHA256SUMS: run scripts/update-swagger-ui.sh", name)
		}
	}
	v := openapi.SwaggerUIVersion()
	script := readRepoFile(t, "scripts/update-swagger-ui.sh")
	if v == "" || !strings.Contains(script, "SWAGGER_UI_VERSION:-"+v+"}") {
		t.Fatalf("embedded swagger-ui-dist %q is not the version pinned in scripts/update-swagger-ui.sh", v)
	}
	if !slices.Contains(openapi.Assets, "swagger-ui-bundle.js") {
		t.Fatal("bundle not served")
	}
}
