package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ratebill/platform/shared/routes"
	"github.com/ratebill/platform/tools/devserver"
)

func TestPostgresGivesEachTestItsOwnDatabase(t *testing.T) {
	urls := map[string]string{}
	// Sequential: the second test must not see the first one's table.
	for _, name := range []string{"first", "second"} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			u := Postgres(t)
			t.Logf("Postgres(t) took %v", time.Since(start))
			urls[name] = u
			conn := connect(t, u)
			var mine bool
			if err := conn.QueryRow(t.Context(), "SELECT to_regclass('mine') IS NOT NULL").Scan(&mine); err != nil {
				t.Fatal(err)
			}
			if mine {
				t.Fatal("a fresh database already has the other test's table")
			}
			assertMigrated(t, conn)
			if _, err := conn.Exec(t.Context(), "CREATE TABLE mine (v text)"); err != nil {
				t.Fatal(err)
			}
		})
	}
	if urls["first"] == urls["second"] || urls["first"] == "" {
		t.Fatalf("the two tests got the databases %q and %q", urls["first"], urls["second"])
	}
	// Both were dropped when their tests ended.
	admin := must(url.Parse(urls["first"]))
	admin.Path = "/postgres"
	base := connect(t, admin.String())
	for _, u := range urls {
		name := strings.TrimPrefix(must(url.Parse(u)).Path, "/")
		var exists bool
		if err := base.QueryRow(t.Context(), "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if exists {
			t.Errorf("database %s still exists after its test ended", name)
		}
	}
}

func TestPostgresFailsWithoutTestDatabaseURL(t *testing.T) {
	t.Setenv(DatabaseURLVariable, "")
	ft := &fatalRecorder{TB: t}
	ran := make(chan struct{})
	go func() { // Fatalf ends the goroutine, as in a test.
		defer close(ran)
		Postgres(ft)
	}()
	<-ran
	if !strings.Contains(ft.msg, "make test") {
		t.Errorf("Postgres without %s: message %q does not say to run `make test`", DatabaseURLVariable, ft.msg)
	}
}

// fatalRecorder records Fatalf instead of failing the real test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestRedisStopAndStart(t *testing.T) {
	r := Redis(t)
	addr := must(url.Parse(r.URL)).Host
	if err := ping(addr); err != nil {
		t.Fatalf("fresh server: %v", err)
	}
	r.Stop()
	if err := ping(addr); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("after Stop: want connection refused, got %v", err)
	}
	r.Start()
	if err := ping(addr); err != nil {
		t.Fatalf("after Start: %v", err)
	}
}

func TestTwoRedisServersAreSeparate(t *testing.T) {
	a, b := Redis(t), Redis(t)
	if a.URL == b.URL {
		t.Fatalf("both servers at %s", a.URL)
	}
	a.Stop()
	if err := ping(must(url.Parse(b.URL)).Host); err != nil {
		t.Fatalf("stopping one server took down the other: %v", err)
	}
}

func TestStartRunsReplicasWithTheirEnvironment(t *testing.T) {
	useFakeFunctions(t)
	t.Setenv("API_RATE_LIMIT", "7")    // a platform variable: must not leak
	t.Setenv("STACK_TEST_KEEP", "yes") // anything else is passed on
	s := Start(t, Options{
		DatabaseURL: "postgres://db.invalid/x",
		RedisURL:    "redis://redis.invalid:1/0",
		Env:         map[string]string{"LOG_LEVEL": "debug", "EXTRA": "1"},
		Replicas:    map[string]int{routes.Usage: 2},
	})
	want := map[string]int{routes.Users: 1, routes.Usage: 2, routes.Billing: 1, routes.Health: 1}
	seen := map[string]bool{}
	for fn, n := range want {
		if got := len(s.Instances[fn]); got != n {
			t.Errorf("%s: %d instances, want %d", fn, got, n)
		}
		for _, base := range s.Instances[fn] {
			if seen[base] {
				t.Errorf("two instances at %s", base)
			}
			seen[base] = true
		}
	}
	env := getEnv(t, s.Instances[routes.Usage][1])
	for k, v := range map[string]string{
		"DATABASE_URL": "postgres://db.invalid/x", "REDIS_URL": "redis://redis.invalid:1/0",
		"INIT_DB": "false", "LOG_LEVEL": "debug", "EXTRA": "1", "STACK_TEST_KEEP": "yes",
		"PORT": must(url.Parse(s.Instances[routes.Usage][1])).Port(),
	} {
		if env[k] != v {
			t.Errorf("%s=%q, want %q", k, env[k], v)
		}
	}
	if v, ok := env["API_RATE_LIMIT"]; ok {
		t.Errorf("API_RATE_LIMIT=%q leaked from the test's environment", v)
	}
	if strings.Contains(env["fakefn.wd"], "/functions/") || env["fakefn.wd"] == "" {
		t.Errorf("working directory %q: want a temporary folder, away from any .env", env["fakefn.wd"])
	}

	// Stop one replica: the other keeps serving; start it again on its port.
	stopped := s.Instances[routes.Usage][0]
	if err := s.StopInstance(routes.Usage, 0); err != nil {
		t.Fatalf("StopInstance: %v", err)
	}
	if _, err := http.Get(stopped + "/livez"); err == nil {
		t.Fatal("a stopped instance still answers")
	}
	if !strings.Contains(s.Logs(routes.Usage, 0), "fakefn: stopping") {
		t.Errorf("the log of the stopped instance lacks its shutdown line:\n%s", s.Logs(routes.Usage, 0))
	}
	getEnv(t, s.Instances[routes.Usage][1])
	s.StartInstance(routes.Usage, 0)
	getEnv(t, stopped)
}

func TestStartReportsAProcessThatDies(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "dies")
	script := "#!/bin/sh\necho 'dies: bad config' >&2\nexit 3\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	in := &instance{name: "dies[0]", bin: bin, dir: dir, logPath: filepath.Join(dir, "dies.log")}
	err := in.start(0)
	if err == nil || !strings.Contains(err.Error(), "dies: bad config") || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("start of a process that exits at once: %v", err)
	}
}

// TestStartRealFunctions runs the real function binaries against real
// servers and checks that each answers its probes and its public paths.
func TestStartRealFunctions(t *testing.T) {
	s := Start(t, Options{DatabaseURL: Postgres(t), RedisURL: Redis(t).URL})
	for _, fn := range routes.Functions {
		base := s.Instances[fn][0]
		for _, path := range []string{"/livez", "/readyz"} {
			resp, err := http.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s GET %s: %s", fn, path, resp.Status)
			}
		}
	}
	resp, err := http.Get(s.Instances[routes.Health][0] + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /health: %s", resp.Status)
	}
	for _, fn := range routes.Functions {
		if err := s.StopInstance(fn, 0); err != nil {
			t.Errorf("SIGTERM: %v\n%s", err, s.Logs(fn, 0))
		}
	}
}

var (
	fakeOnce sync.Once
	fakeBin  string
	fakeErr  error
)

// useFakeFunctions makes Start run testdata/fakefn for every function
// during the test.
func useFakeFunctions(t *testing.T) {
	fakeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "stack-fake-")
		if err != nil {
			fakeErr = err
			return
		}
		fakeBin = filepath.Join(dir, "fakefn")
		out, err := exec.Command("go", "build", "-o", fakeBin, "./testdata/fakefn").CombinedOutput()
		if err != nil {
			fakeErr = fmt.Errorf("go build ./testdata/fakefn: %w\n%s", err, out)
		}
	})
	if fakeErr != nil {
		t.Fatal(fakeErr)
	}
	old := buildFunctions
	buildFunctions = func() (map[string]string, error) {
		m := map[string]string{}
		for _, fn := range routes.Functions {
			m[fn] = fakeBin
		}
		return m, nil
	}
	t.Cleanup(func() { buildFunctions = old })
}

// assertMigrated checks that the database has the platform's schema.
func assertMigrated(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	for _, table := range []string{"schema_version", "users"} {
		var ok bool
		if err := conn.QueryRow(t.Context(), "SELECT to_regclass($1) IS NOT NULL", table).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Errorf("table %s missing: the database is not migrated", table)
		}
	}
}

func getEnv(t *testing.T, base string) map[string]string {
	t.Helper()
	resp, err := http.Get(base + "/env")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	env := map[string]string{}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatal(err)
	}
	return env
}

func connect(t *testing.T, u string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func ping(addr string) error { return devserver.PingRedis(context.Background(), addr) }

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
