package local

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/ratebill/platform/shared/config"
	"github.com/ratebill/platform/shared/routes"
	"github.com/ratebill/platform/shared/routes/routers"
)

// loadCompose loads a compose file with compose-go's full loader: schema
// validation, interpolation from env only (never the developer's .env),
// normalisation and the consistency checks.
func loadCompose(t testing.TB, file string, env []string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{file},
		cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithEnv(env),
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}

func service(t testing.TB, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return s
}

func envValue(s types.ServiceConfig, key string) string {
	if v := s.Environment[key]; v != nil {
		return *v
	}
	return ""
}

// TestComposeFile loads docker-compose.yml and checks the topology: every
// function a service built from the root Dockerfile (usage twice), the
// one-shot migration the functions wait for, Postgres 15 and Redis 7 with
// health checks and named volumes, nginx on 8080 as the only public port,
// and the seed's variables with their defaults.
func TestComposeFile(t *testing.T) {
	root := repoRoot(t)
	p, err := loadCompose(t, filepath.Join(root, "docker-compose.yml"), nil)
	if err != nil {
		t.Fatalf("loading docker-compose.yml: %v", err)
	}

	healthy := func(s types.ServiceConfig, dep string) bool {
		d, ok := s.DependsOn[dep]
		return ok && d.Condition == types.ServiceConditionHealthy
	}
	for _, fn := range routes.Functions {
		s := service(t, p, fn)
		if s.Build == nil || s.Build.Context != root || s.Build.Args["FUNCTION"] == nil || *s.Build.Args["FUNCTION"] != fn {
			t.Errorf("service %s: want build context . with FUNCTION=%s", fn, fn)
		}
		wantScale := 1
		if fn == routes.Usage {
			wantScale = 2
		}
		if got := s.GetScale(); got != wantScale {
			t.Errorf("service %s: %d replicas, want %d", fn, got, wantScale)
		}
		if d, ok := s.DependsOn["migrate"]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("service %s: must wait for migrate (service_completed_successfully)", fn)
		}
		if !healthy(s, "postgres") || !healthy(s, "redis") {
			t.Errorf("service %s: must wait for healthy postgres and redis", fn)
		}
		if hc := s.HealthCheck; hc == nil || !slices.Equal([]string(hc.Test), []string{"CMD", "/healthcheck", "http://127.0.0.1:8080/readyz"}) {
			t.Errorf("service %s: health check %v, want the image's /healthcheck on /readyz", fn, hc)
		}
		if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") {
			t.Errorf("service %s: want read_only and cap_drop ALL", fn)
		}
		if len(s.Ports) > 0 {
			t.Errorf("service %s publishes ports; only nginx is an entry point", fn)
		}
		for want, v := range map[string]string{
			"INIT_DB": "false", "TRUSTED_PROXY_HOPS": "1", "PORT": "8080",
			"API_RATE_LIMIT": "1000", "API_RATE_WINDOW": "86400", "BILLING_UNIT_PRICE": "0.01",
			"DB_POOL_SIZE": "20", "DB_MAX_OVERFLOW": "40", "DB_POOL_TIMEOUT": "30", "DB_POOL_RECYCLE": "1800",
			"REDIS_URL": "redis://redis:6379/0",
		} {
			if got := envValue(s, want); got != v {
				t.Errorf("service %s: %s=%q, want %q", fn, want, got, v)
			}
		}
		if u, err := url.Parse(envValue(s, "DATABASE_URL")); err != nil || u.Hostname() != "postgres" {
			t.Errorf("service %s: DATABASE_URL %q must name the postgres service", fn, envValue(s, "DATABASE_URL"))
		}
		for k := range s.Environment {
			if k != "PORT" && !slices.Contains(config.Variables, k) {
				t.Errorf("service %s sets %s, which shared/config does not read", fn, k)
			}
		}
		if _, err := config.Load(func(k string) string { return envValue(s, k) }); err != nil {
			t.Errorf("service %s: its environment does not load: %v", fn, err)
		}
	}

	m := service(t, p, "migrate")
	if m.Build == nil || m.Build.Args["FUNCTION"] == nil || *m.Build.Args["FUNCTION"] != "migrate" || m.Restart != "no" {
		t.Error("service migrate: want a one-shot (restart: no) build of FUNCTION=migrate")
	}
	if !healthy(m, "postgres") {
		t.Error("service migrate: must wait for a healthy postgres")
	}
	for name, image := range map[string]string{"postgres": "docker.io/library/postgres:15", "redis": "docker.io/library/redis:7"} {
		s := service(t, p, name)
		if !strings.HasPrefix(s.Image, image) || s.HealthCheck == nil || len(s.HealthCheck.Test) == 0 {
			t.Errorf("service %s: image %s with a health check, want %s*", name, s.Image, image)
		}
		named := false
		for _, v := range s.Volumes {
			_, declared := p.Volumes[v.Source]
			named = named || (v.Type == types.VolumeTypeVolume && declared)
		}
		if !named {
			t.Errorf("service %s: keeps its data in no named volume", name)
		}
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("service %s publishes %s on all interfaces; keep it on loopback", name, port.Published)
			}
		}
	}

	ngx := service(t, p, "nginx")
	if len(ngx.Ports) != 1 || ngx.Ports[0].Target != 8080 || ngx.Ports[0].Published != "8080" || ngx.Ports[0].HostIP != "" {
		t.Errorf("service nginx ports %+v, want 8080:8080", ngx.Ports)
	}
	for _, fn := range routes.Functions {
		if !healthy(ngx, fn) {
			t.Errorf("service nginx: must wait for a healthy %s (nginx resolves upstream names at start)", fn)
		}
	}
	if ngx.HealthCheck == nil || len(ngx.HealthCheck.Test) == 0 {
		t.Error("service nginx has no health check")
	}
	mounts := map[string]string{}
	for _, v := range ngx.Volumes {
		if v.Type == types.VolumeTypeBind {
			rel, _ := filepath.Rel(root, v.Source)
			mounts[v.Target] = filepath.ToSlash(rel)
			if !v.ReadOnly {
				t.Errorf("service nginx: %s is mounted writable", v.Target)
			}
		}
	}
	want := map[string]string{
		"/etc/nginx/nginx.conf":     "nginx/nginx.conf",
		"/etc/nginx/gateway.conf":   "nginx/gateway.conf",
		"/etc/nginx/routes.conf":    "nginx/routes.conf",
		"/etc/nginx/upstreams.conf": "nginx/upstreams.compose.conf",
	}
	if !mapsEqual(mounts, want) {
		t.Errorf("service nginx mounts %v, want %v", mounts, want)
	}
}

// TestComposeRoutesEqualRoutingTable follows each route through compose:
// the gateway's routes.conf sends the path to the function's upstream, and
// that upstream's host is the compose service that builds the function,
// listening on the upstream's port.
func TestComposeRoutesEqualRoutingTable(t *testing.T) {
	root := repoRoot(t)
	p, err := loadCompose(t, filepath.Join(root, "docker-compose.yml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ups := parseUpstreams(readRepoFile(t, "nginx/upstreams.compose.conf"))
	byUpstream := map[string]string{}
	for _, fn := range routes.Functions {
		byUpstream[routers.UpstreamName(fn)] = fn
	}
	for path, up := range parseRoutes(t, readRepoFile(t, "nginx/routes.conf")) {
		fn, _ := routes.FunctionFor(path)
		for _, r := range routes.Table {
			if routes.IsPattern(r.Path) && routes.Regexp(r.Path) == path {
				fn = r.Function // a regular-expression location
			}
		}
		servers := ups[up]
		if len(servers) != 1 {
			t.Errorf("%s -> upstream %s with servers %v", path, up, servers)
			continue
		}
		host, port, _ := strings.Cut(servers[0], ":")
		s, err := p.GetService(host)
		if err != nil {
			t.Errorf("%s -> %s: no compose service %s", path, servers[0], host)
			continue
		}
		if s.Build == nil || s.Build.Args["FUNCTION"] == nil || *s.Build.Args["FUNCTION"] != fn || byUpstream[up] != fn {
			t.Errorf("%s -> service %s, which does not build function %s", path, host, fn)
		}
		if envValue(s, "PORT") != port {
			t.Errorf("%s -> %s, but service %s listens on PORT=%s", path, servers[0], host, envValue(s, "PORT"))
		}
	}
}

// TestComposeInterpolationAndValidation shows the loader is strict and
// the seed's variables reach the functions: values from the environment
// replace the defaults, and a schema violation, a dependency on a missing
// service and a mismatched scale/replicas are refused.
func TestComposeInterpolationAndValidation(t *testing.T) {
	root := repoRoot(t)
	p, err := loadCompose(t, filepath.Join(root, "docker-compose.yml"), []string{"API_RATE_LIMIT=50", "BILLING_UNIT_PRICE=0.02", "GATEWAY_PORT=9090"})
	if err != nil {
		t.Fatal(err)
	}
	if s := service(t, p, routes.Usage); envValue(s, "API_RATE_LIMIT") != "50" || envValue(s, "BILLING_UNIT_PRICE") != "0.02" {
		t.Errorf("usage: API_RATE_LIMIT=%s BILLING_UNIT_PRICE=%s, want the environment's 50 and 0.02", envValue(s, "API_RATE_LIMIT"), envValue(s, "BILLING_UNIT_PRICE"))
	}
	if ngx := service(t, p, "nginx"); len(ngx.Ports) != 1 || ngx.Ports[0].Published != "9090" {
		t.Errorf("GATEWAY_PORT=9090: nginx ports %+v", ngx.Ports)
	}

	orig, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(string) string{
		"unknown key": func(s string) string {
			return strings.Replace(s, "    image: ratebill/billing:local\n", "    image: ratebill/billing:local\n    replicaz: 2\n", 1)
		},
		"missing dependency": func(s string) string {
			return strings.Replace(s, "    migrate:\n      condition: service_completed_successfully", "    migrat:\n      condition: service_completed_successfully", 1)
		},
		"wrong type": func(s string) string {
			return strings.Replace(s, "      replicas: 2", "      replicas: two", 1)
		},
	} {
		broken := edit(string(orig))
		if broken == string(orig) {
			t.Fatalf("%s: the edit did not apply", name)
		}
		file := filepath.Join(t.TempDir(), "docker-compose.yml")
		if err := os.WriteFile(file, []byte(broken), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := loadCompose(t, file, nil); err == nil {
			t.Errorf("%s: the broken compose file loaded", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// TestComposeEngineRequirementDocumented: start_interval in a health check
// needs Docker Engine 25.0 or newer (older engines reject the file); when
// the compose file uses it, the Compose documentation must say so.
func TestComposeEngineRequirementDocumented(t *testing.T) {
	if !strings.Contains(string(readRepoFile(t, "docker-compose.yml")), "start_interval:") {
		return
	}
	if doc := string(readRepoFile(t, "docs/local-emulation.md")); !strings.Contains(doc, "Docker Engine 25.0") {
		t.Error("docker-compose.yml uses start_interval, which needs Docker Engine 25.0+; docs/local-emulation.md must say so")
	}
}
