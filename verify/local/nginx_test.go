package local

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratebill/platform/shared/routes"
	"github.com/ratebill/platform/shared/routes/routers"
)

// TestGeneratedNginxFilesAreCurrent fails when a committed generated file
// differs from what `go run ./shared/cmd/genrouters` writes.
func TestGeneratedNginxFilesAreCurrent(t *testing.T) {
	files, err := routers.Files()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range routers.SortedPaths(files) {
		if got := readRepoFile(t, p); !bytes.Equal(got, files[p]) {
			t.Errorf("%s is out of date: run `go run ./shared/cmd/genrouters` from the repository root", p)
		}
	}
}

var (
	locationRE = regexp.MustCompile(`(?m)^location (?:= |~ )(\S+) \{\s*proxy_pass http://(\w+);\s*\}`)
	upstreamRE = regexp.MustCompile(`(?s)upstream (\w+) \{(.*?)\n\}`)
	serverRE   = regexp.MustCompile(`(?m)^\s*server (\S+?)(?:\s|;)`)
)

// parseRoutes reads the exact-match locations of a routes.conf as path ->
// upstream name, and its regular-expression locations as regexp ->
// upstream name, failing on a duplicate path.
func parseRoutes(t testing.TB, conf []byte) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, sm := range locationRE.FindAllSubmatch(conf, -1) {
		path, up := string(sm[1]), string(sm[2])
		if _, dup := m[path]; dup {
			t.Errorf("routes.conf routes %s twice", path)
		}
		m[path] = up
	}
	return m
}

// parseUpstreams reads upstream name -> server addresses.
func parseUpstreams(conf []byte) map[string][]string {
	m := map[string][]string{}
	for _, um := range upstreamRE.FindAllSubmatch(conf, -1) {
		for _, sm := range serverRE.FindAllSubmatch(um[2], -1) {
			m[string(um[1])] = append(m[string(um[1])], string(sm[1]))
		}
	}
	return m
}

// wantRoutes is the routing table as path -> upstream name.
func wantRoutes() map[string]string {
	m := map[string]string{}
	for _, r := range routes.Table {
		p := r.Path
		if routes.IsPattern(p) {
			p = routes.Regexp(p)
		}
		m[p] = routers.UpstreamName(r.Function)
	}
	return m
}

// TestNginxRoutesEqualRoutingTable reads the committed routes.conf and
// upstream files as nginx would see them and compares them with
// shared/routes: every path, and no other, goes to its function's upstream,
// and each environment's upstream names the function's own host.
func TestNginxRoutesEqualRoutingTable(t *testing.T) {
	got := parseRoutes(t, readRepoFile(t, "nginx/routes.conf"))
	if want := wantRoutes(); !mapsEqual(got, want) {
		t.Errorf("nginx/routes.conf routes\n%v\nwant (shared/routes)\n%v", got, want)
	}
	for file, hosts := range map[string]map[string][]string{
		"nginx/upstreams.compose.conf":    routers.ComposeServers(),
		"nginx/upstreams.kubernetes.conf": routers.KubernetesServers(),
	} {
		ups := parseUpstreams(readRepoFile(t, file))
		if len(ups) != len(routes.Functions) {
			t.Errorf("%s: %d upstreams, want one per function (%d)", file, len(ups), len(routes.Functions))
		}
		for _, fn := range routes.Functions {
			if g := ups[routers.UpstreamName(fn)]; !slices.Equal(g, hosts[fn]) {
				t.Errorf("%s: upstream %s has servers %v, want %v", file, routers.UpstreamName(fn), g, hosts[fn])
			}
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestNginxConfigTest runs `nginx -t` on the configuration each environment
// really loads: nginx/nginx.conf with gateway.conf, routes.conf and that
// environment's upstream file as upstreams.conf, bind-mounted at /etc/nginx
// in a private mount namespace, with a hosts file that resolves the
// environment's upstream host names (nginx resolves them while loading) and
// an empty /tmp for the temporary-file paths.
func TestNginxConfigTest(t *testing.T) {
	nginx := requireTool(t, "nginx", "/usr/sbin/nginx")
	for _, env := range []string{"compose", "kubernetes"} {
		t.Run(env, func(t *testing.T) {
			upstreams := readRepoFile(t, "nginx/upstreams."+env+".conf")
			// Debian 12's nginx (1.22) predates the upstream servers'
			// resolve parameter (1.27.3) that the compose file uses; it then
			// checks everything else, with resolve removed, and says so.
			stripped := false
			if env == "compose" {
				if v := nginxVersion(t, nginx); !versionAtLeast(v, 1, 27, 3) {
					upstreams = bytes.ReplaceAll(upstreams, []byte(" resolve "), []byte(" "))
					stripped = true
					t.Logf("nginx %s is older than 1.27.3: nginx -t ran without the servers' resolve parameter (TestComposeNginxReresolves checks it)", v)
				}
			}
			etc := t.TempDir()
			for name, content := range map[string][]byte{
				"nginx.conf":     readRepoFile(t, "nginx/nginx.conf"),
				"gateway.conf":   readRepoFile(t, "nginx/gateway.conf"),
				"routes.conf":    readRepoFile(t, "nginx/routes.conf"),
				"upstreams.conf": upstreams,
			} {
				if err := os.WriteFile(filepath.Join(etc, name), content, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var hosts strings.Builder
			hosts.WriteString("127.0.0.1 localhost\n")
			for _, servers := range parseUpstreams(upstreams) {
				for _, s := range servers {
					host, _, err := net.SplitHostPort(s)
					if err != nil {
						t.Fatalf("upstream server %q: %v", s, err)
					}
					fmt.Fprintf(&hosts, "127.0.0.1 %s\n", host)
				}
			}
			hostsFile := filepath.Join(t.TempDir(), "hosts")
			if err := os.WriteFile(hostsFile, []byte(hosts.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			tmp := t.TempDir()
			out, err := runInNamespace(t, [][2]string{{etc, "/etc/nginx"}, {hostsFile, "/etc/hosts"}, {tmp, "/tmp"}},
				nginx, "-t", "-c", "/etc/nginx/nginx.conf")
			if err != nil || !strings.Contains(out, "test is successful") {
				t.Fatalf("nginx -t: %v\n%s", err, out)
			}
			// Without the names the same configuration must fail: the
			// check above really resolved the upstream hosts. (With resolve,
			// nginx starts without them and resolves later.)
			if env == "compose" && !stripped {
				return
			}
			out, err = runInNamespace(t, [][2]string{{etc, "/etc/nginx"}, {tmp, "/tmp"}}, nginx, "-t", "-c", "/etc/nginx/nginx.conf")
			if err == nil || !strings.Contains(out, "host not found in upstream") {
				t.Errorf("nginx -t without the upstream host names: err=%v, want a \"host not found in upstream\" failure\n%s", err, out)
			}
		})
	}
}

// fakeFunction is an upstream standing in for one function process: it
// answers every request with what it saw.
type fakeFunction struct {
	fn, addr string
	requests atomic.Int64
	conns    atomic.Int64
	srv      *httptest.Server
}

// seen is a fake function's answer.
type seen struct {
	Function      string `json:"function"`
	Addr          string `json:"addr"`
	Method        string `json:"method"`
	Path          string `json:"path"`
	Query         string `json:"query"`
	RequestID     string `json:"request_id"`
	XForwardedFor string `json:"x_forwarded_for"`
	Host          string `json:"host"`
}

func startFake(t *testing.T, fn string) *fakeFunction {
	f := &fakeFunction{fn: fn}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(seen{
			Function: fn, Addr: f.addr, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
			RequestID: r.Header.Get("X-Request-Id"), XForwardedFor: r.Header.Get("X-Forwarded-For"), Host: r.Host,
		})
	}))
	f.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.conns.Add(1)
		}
	}
	f.srv.Start()
	f.addr = strings.TrimPrefix(f.srv.URL, "http://")
	t.Cleanup(f.srv.Close)
	return f
}

// TestGatewayBehaviour puts a real nginx, with the repository's
// gateway.conf and routes.conf, in front of fake function processes (two
// for usage) and checks what the gateway promises: every route of the
// table reaches its function, nothing else does (404 problem+json), the
// request id, client address forwarding, the body limit, load spread,
// upstream keepalive, the JSON access log, and a problem+json 503 when a
// function is down.
func TestGatewayBehaviour(t *testing.T) {
	fakes := map[string][]*fakeFunction{}
	servers := map[string][]string{}
	for _, fn := range routes.Functions {
		n := 1
		if fn == routes.Usage {
			n = 2
		}
		for range n {
			f := startFake(t, fn)
			fakes[fn] = append(fakes[fn], f)
			servers[fn] = append(servers[fn], f.addr)
		}
	}
	ups, err := routers.Upstreams("# test: fake functions on loopback ports\n", servers)
	if err != nil {
		t.Fatal(err)
	}
	ngx := startNginx(t, ups)
	total := func() int64 {
		var n int64
		for _, fs := range fakes {
			for _, f := range fs {
				n += f.requests.Load()
			}
		}
		return n
	}

	do := func(t *testing.T, method, path string, body io.Reader, hdr map[string]string) (*http.Response, []byte) {
		t.Helper()
		return doRequest(t, method, ngx.URL+path, body, hdr)
	}
	requestIDRE := regexp.MustCompile(`^[0-9a-f]{32}$`)

	t.Run("every route reaches its function", func(t *testing.T) {
		for _, r := range routes.Table {
			if r.Method == routes.AnyMethod {
				r.Method = http.MethodPatch // any method is forwarded
			}
			var body io.Reader
			if r.Method == http.MethodPost {
				body = strings.NewReader(`{"username":"a","email":"a@example.com"}`)
			}
			path := routes.Example(r.Path) // "/admin/keys/{id}" -> "/admin/keys/1"
			resp, b := do(t, r.Method, path+"?q=1", body, map[string]string{
				"X-API-Key":       "sk_secret_never_logged",
				"X-Request-Id":    "client-chosen-id",
				"X-Forwarded-For": "203.0.113.7",
			})
			var s seen
			if err := json.Unmarshal(b, &s); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("%s %s: %d %s", r.Method, r.Path, resp.StatusCode, b)
			}
			if s.Function != r.Function || s.Path != path || s.Method != r.Method || s.Query != "q=1" {
				t.Errorf("%s %s reached %s %s %s?%s, want function %s", r.Method, r.Path, s.Function, s.Method, s.Path, s.Query, r.Function)
			}
			if id := resp.Header.Values("X-Request-Id"); len(id) != 1 || id[0] != "client-chosen-id" || s.RequestID != "client-chosen-id" {
				t.Errorf("%s: X-Request-Id to function %q, to client %q; want the client's well-formed id kept, once", r.Path, s.RequestID, id)
			}
			if s.XForwardedFor != "203.0.113.7, 127.0.0.1" {
				t.Errorf("%s: function saw X-Forwarded-For %q, want the client's value with the peer address appended", r.Path, s.XForwardedFor)
			}
			if s.Host != strings.TrimPrefix(ngx.URL, "http://") {
				t.Errorf("%s: function saw Host %q, want the client's %q", r.Path, s.Host, strings.TrimPrefix(ngx.URL, "http://"))
			}
		}
		// A path below a Prefix route is forwarded too (Envoy's ext_authz
		// appends the original path to /auth).
		if _, b := do(t, http.MethodGet, "/auth/v1/forecast", nil, nil); !strings.Contains(string(b), `"function":"usage"`) {
			t.Errorf("GET /auth/v1/forecast not forwarded to usage: %s", b)
		}
		// A method outside the table is still forwarded: the function
		// answers 405 itself.
		if _, b := do(t, http.MethodDelete, "/usage", nil, nil); !strings.Contains(string(b), `"function":"usage"`) {
			t.Errorf("DELETE /usage not forwarded to usage: %s", b)
		}
	})

	t.Run("malformed client request ids reach the function unchanged", func(t *testing.T) {
		// The id is the client's idempotency key: the function refuses a
		// malformed one (400 invalid-request-id) rather than bill a retry
		// twice under a replacement; the client's answer carries nginx's
		// own well-formed id.
		for _, bad := range []string{"short", "has spaces in it", strings.Repeat("x", 129), "semi;colon-id"} {
			resp, b := do(t, http.MethodGet, "/usage", nil, map[string]string{"X-Request-Id": bad})
			var s seen
			if err := json.Unmarshal(b, &s); err != nil {
				t.Fatalf("%q: %v %s", bad, err, b)
			}
			if id := resp.Header.Values("X-Request-Id"); len(id) != 1 || !requestIDRE.MatchString(id[0]) || s.RequestID != bad {
				t.Errorf("client id %q: function saw %q, client got %q; want the client's id forwarded and nginx's own id answered, once", bad, s.RequestID, id)
			}
		}
	})

	t.Run("unrouted paths are 404 problem+json", func(t *testing.T) {
		before := total()
		for _, p := range []string{"/", "/usage/", "/usage/x", "/USAGE", "/me/", "/users/1", "/livez", "/readyz", "/Usage", "/billing.json"} {
			resp, b := do(t, http.MethodGet, p, nil, nil)
			var prob struct {
				Status int    `json:"status"`
				Title  string `json:"title"`
			}
			if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/problem+json" ||
				json.Unmarshal(b, &prob) != nil || prob.Status != 404 {
				t.Errorf("GET %s: %d %q %s; want 404 application/problem+json", p, resp.StatusCode, resp.Header.Get("Content-Type"), b)
			}
			if resp.Header.Get("X-Request-Id") == "" {
				t.Errorf("GET %s: no X-Request-Id on the 404", p)
			}
		}
		if n := total() - before; n != 0 {
			t.Errorf("%d unrouted requests reached a function", n)
		}
	})

	t.Run("large bodies stop at the gateway", func(t *testing.T) {
		before := total()
		resp, b := do(t, http.MethodPost, "/users/", bytes.NewReader(make([]byte, 100<<10)), map[string]string{"Content-Type": "application/json"})
		if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Header.Get("Content-Type") != "application/problem+json" || !json.Valid(b) {
			t.Errorf("POST /users/ with 100 KiB: %d %q %s; want 413 problem+json", resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
		if total() != before {
			t.Error("the oversized body reached a function")
		}
		// 32 KiB is under the gateway's limit: the function decides.
		if resp, _ := do(t, http.MethodPost, "/users/", bytes.NewReader(make([]byte, 32<<10)), nil); resp.StatusCode != http.StatusOK {
			t.Errorf("POST /users/ with 32 KiB: %d, want it forwarded", resp.StatusCode)
		}
	})

	t.Run("usage load spreads over both replicas and reuses connections", func(t *testing.T) {
		const n = 40
		for _, f := range fakes[routes.Usage] {
			f.requests.Store(0)
			f.conns.Store(0)
		}
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range n / 4 {
					if resp, _ := do(t, http.MethodGet, "/usage", nil, nil); resp.StatusCode != http.StatusOK {
						t.Errorf("GET /usage: %d", resp.StatusCode)
					}
				}
			})
		}
		wg.Wait()
		var reqs, conns int64
		for i, f := range fakes[routes.Usage] {
			r := f.requests.Load()
			t.Logf("usage replica %d (%s): %d requests over %d connections", i, f.addr, r, f.conns.Load())
			if r < n/4 {
				t.Errorf("usage replica %d got %d of %d requests; want the load spread over both", i, r, n)
			}
			reqs += r
			conns += f.conns.Load()
		}
		if reqs != n {
			t.Errorf("usage replicas got %d requests, want %d", reqs, n)
		}
		if conns > n/2 {
			t.Errorf("%d upstream connections for %d requests; want keepalive reuse", conns, n)
		}
	})

	t.Run("JSON access log", func(t *testing.T) {
		resp, _ := do(t, http.MethodGet, "/billing", nil, map[string]string{"X-API-Key": "sk_secret_never_logged", "User-Agent": `quote" and \ backslash`})
		id := resp.Header.Get("X-Request-Id")
		var found map[string]any
		deadline := time.Now().Add(5 * time.Second)
		for found == nil && time.Now().Before(deadline) {
			b, err := os.ReadFile(ngx.AccessLog)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte("sk_secret_never_logged")) {
				t.Error("the access log contains an API key")
			}
			sc := bufio.NewScanner(bytes.NewReader(b))
			for sc.Scan() {
				var line map[string]any
				if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
					t.Fatalf("access log line is not JSON: %v\n%s", err, sc.Text())
				}
				if line["request_id"] == id {
					found = line
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		if found == nil {
			t.Fatalf("no access log line with request_id %s", id)
		}
		if found["path"] != "/billing" || found["status"] != float64(200) || found["upstream_addr"] != fakes[routes.Billing][0].addr ||
			found["user_agent"] != `quote" and \ backslash` {
			t.Errorf("access log line %v; want path /billing, status 200, upstream_addr %s and the user agent intact", found, fakes[routes.Billing][0].addr)
		}
	})

	t.Run("a function that is down is 503 problem+json", func(t *testing.T) {
		fakes[routes.Health][0].srv.Close()
		resp, b := do(t, http.MethodGet, "/health", nil, nil)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Content-Type") != "application/problem+json" ||
			!json.Valid(b) || resp.Header.Get("X-Request-Id") == "" {
			t.Errorf("GET /health with health down: %d %q %s; want 503 problem+json with X-Request-Id", resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
	})
}

// nginxVersion returns the version nginx -v prints, e.g. "1.22.1".
func nginxVersion(t *testing.T, bin string) string {
	t.Helper()
	out, err := exec.Command(bin, "-v").CombinedOutput()
	if err != nil {
		t.Fatalf("nginx -v: %v\n%s", err, out)
	}
	_, v, ok := strings.Cut(strings.TrimSpace(string(out)), "nginx/")
	if !ok {
		t.Fatalf("nginx -v: unexpected output %q", out)
	}
	v, _, _ = strings.Cut(v, " ")
	return v
}

// versionAtLeast compares a dotted version with major.minor.patch.
func versionAtLeast(v string, want ...int) bool {
	parts := strings.Split(v, ".")
	for i, w := range want {
		n := 0
		if i < len(parts) {
			n, _ = strconv.Atoi(parts[i])
		}
		if n != w {
			return n > w
		}
	}
	return true
}

// TestComposeNginxReresolves: in Compose, nginx re-resolves the function
// containers' names through Docker's DNS (127.0.0.11) while it runs, so a
// recreated container's new address is used (nginx resolving once at start
// kept the old one until a restart), and the compose image's nginx is new
// enough for the servers' resolve parameter (1.27.3).
func TestComposeNginxReresolves(t *testing.T) {
	conf := string(readRepoFile(t, "nginx/upstreams.compose.conf"))
	if !regexp.MustCompile(`(?m)^resolver 127\.0\.0\.11 valid=\d+s`).MatchString(conf) {
		t.Error("upstreams.compose.conf needs `resolver 127.0.0.11 valid=...` (Docker's embedded DNS)")
	}
	for fn, servers := range parseUpstreams([]byte(conf)) {
		for _, srv := range servers {
			if !strings.Contains(conf, "server "+srv+" resolve ") {
				t.Errorf("upstream %s: server %s lacks the resolve parameter", fn, srv)
			}
		}
	}
	if !strings.Contains(conf, "zone ") {
		t.Error("resolve needs a shared memory zone in each upstream")
	}
	p, err := loadCompose(t, filepath.Join(repoRoot(t), "docker-compose.yml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	img := service(t, p, "nginx").Image
	m := regexp.MustCompile(`:(\d+)\.(\d+)(?:\.(\d+))?`).FindStringSubmatch(img)
	if m == nil {
		t.Fatalf("compose nginx image %q has no version tag", img)
	}
	if !versionAtLeast(strings.Trim(m[1]+"."+m[2]+"."+m[3], "."), 1, 27, 3) {
		t.Errorf("compose nginx image %s: the upstream resolve parameter needs nginx 1.27.3 or newer", img)
	}
}
