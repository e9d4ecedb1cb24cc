package local

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ratebill/platform/shared/routes"
	"github.com/ratebill/platform/shared/routes/routers"
	"github.com/ratebill/platform/tools/stack"
)

// TestSeedFlowThroughNginx runs the four functions as separate processes
// (usage twice) on a fresh database and a private Redis, puts a real nginx
// with the repository's gateway configuration in front of them, and walks
// the original README's curl flow through it.
func TestSeedFlowThroughNginx(t *testing.T) {
	if os.Getenv(stack.DatabaseURLVariable) == "" {
		missing(t, "%s is unset: run through `make test`, which starts Postgres", stack.DatabaseURLVariable)
	}
	requireTool(t, "nginx", "/usr/sbin/nginx")
	rdb := stack.Redis(t)
	s := stack.Start(t, stack.Options{
		DatabaseURL: stack.Postgres(t),
		RedisURL:    rdb.URL,
		Env: map[string]string{
			// nginx appends the client address to X-Forwarded-For.
			"TRUSTED_PROXY_HOPS": "1",
			"SIGNUP_RATE_LIMIT":  "3",
		},
		Replicas: map[string]int{routes.Usage: 2},
	})
	servers := map[string][]string{}
	for fn, urls := range s.Instances {
		for _, u := range urls {
			servers[fn] = append(servers[fn], strings.TrimPrefix(u, "http://"))
		}
	}
	ups, err := routers.Upstreams("# test: the stack's function processes\n", servers)
	if err != nil {
		t.Fatal(err)
	}
	ngx := startNginx(t, ups)

	// call sends a request through the gateway, with a JSON body and an
	// API key when given, and hdr as name, value pairs.
	call := func(method, path, key string, body string, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		h := map[string]string{}
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
			h["Content-Type"] = "application/json"
		}
		if key != "" {
			h["X-API-Key"] = key
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			h[hdr[i]] = hdr[i+1]
		}
		resp, b := doRequest(t, method, ngx.URL+path, rd, h)
		if resp.Header.Get("X-Request-Id") == "" {
			t.Errorf("%s %s: no X-Request-Id in the response", method, path)
		}
		return resp, b
	}
	expect := func(resp *http.Response, b []byte, status int, what string) {
		t.Helper()
		if resp.StatusCode != status {
			t.Fatalf("%s: %d %s, want %d", what, resp.StatusCode, b, status)
		}
	}

	// curl http://localhost:8080/health
	resp, b := call("GET", "/health", "", "")
	expect(resp, b, http.StatusOK, "GET /health")

	// curl -X POST http://localhost:8080/users/ -H "Content-Type: application/json" \
	//   -d '{"username":"testuser","email":"test@example.com"}'
	resp, b = call("POST", "/users/", "", `{"username":"testuser","email":"test@example.com"}`, "X-Forwarded-For", "198.51.100.1")
	expect(resp, b, http.StatusCreated, "POST /users/")
	var created struct {
		APIKey string `json:"api_key"`
	}
	if err := json.Unmarshal(b, &created); err != nil || created.APIKey == "" {
		t.Fatalf("POST /users/: no api_key in %s", b)
	}
	key := created.APIKey

	// curl http://localhost:8080/me -H "X-API-Key: $API_KEY"
	resp, b = call("GET", "/me", key, "")
	expect(resp, b, http.StatusOK, "GET /me")
	if !bytes.Contains(b, []byte("testuser")) {
		t.Errorf("GET /me: %s does not name testuser", b)
	}

	// curl http://localhost:8080/usage -H "X-API-Key: $API_KEY", a few times.
	const usageCalls = 12
	for range usageCalls {
		resp, b = call("GET", "/usage", key, "")
		expect(resp, b, http.StatusOK, "GET /usage")
	}
	resp, b = call("GET", "/usage", "", "")
	expect(resp, b, http.StatusUnauthorized, "GET /usage without a key")

	// curl http://localhost:8080/billing -H "X-API-Key: $API_KEY"
	resp, b = call("GET", "/billing", key, "")
	expect(resp, b, http.StatusOK, "GET /billing")
	if !json.Valid(b) {
		t.Errorf("GET /billing: not JSON: %s", b)
	}

	// Not part of the API: the gateway answers.
	resp, b = call("GET", "/admin", "", "")
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("GET /admin: %d %q %s, want 404 problem+json", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}

	// The functions see the client address nginx appended, not what the
	// client claims: SIGNUP_RATE_LIMIT=3 per client address holds whatever
	// X-Forwarded-For the client sends.
	for i, spoof := range []string{"198.51.100.2", "198.51.100.3", "198.51.100.4"} {
		resp, b = call("POST", "/users/", "", `{"username":"spoof`+string(rune('a'+i))+`","email":"spoof`+string(rune('a'+i))+`@example.com"}`, "X-Forwarded-For", spoof)
		want := http.StatusCreated
		if i == 2 {
			want = http.StatusTooManyRequests
		}
		if resp.StatusCode != want {
			t.Errorf("sign-up %d with X-Forwarded-For %s: %d %s, want %d (the limit is per address nginx saw)", i+2, spoof, resp.StatusCode, b, want)
		}
	}

	// The usage requests were spread over both usage processes: nginx's
	// JSON access log names the upstream of each.
	perAddr := map[string]int{}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		perAddr = usageUpstreams(t, ngx.AccessLog)
		total := 0
		for _, n := range perAddr {
			total += n
		}
		if total >= usageCalls+1 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("GET /usage per usage process: %v", perAddr)
	for _, addr := range servers[routes.Usage] {
		if perAddr[addr] == 0 {
			t.Errorf("usage process %s served none of the /usage requests (%v)", addr, perAddr)
		}
	}
}

// usageUpstreams counts the access log's /usage requests per upstream
// address.
func usageUpstreams(t *testing.T, logPath string) map[string]int {
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var line struct {
			Path         string `json:"path"`
			UpstreamAddr string `json:"upstream_addr"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("access log line is not JSON: %v: %s", err, sc.Text())
		}
		if line.Path == "/usage" {
			m[line.UpstreamAddr]++
		}
	}
	return m
}
