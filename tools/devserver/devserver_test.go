package devserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// syncBuffer is a log writer tests can read while a server writes to it.
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

func TestMain(m *testing.M) {
	// Child mode for TestServersDieWithParent: start a Redis and a
	// Postgres, report their ports, and wait to be killed.
	if dir := os.Getenv("DEVSERVER_TEST_CHILD_DIR"); dir != "" {
		r, err := StartRedis(context.Background(), filepath.Join(dir, "redis"), 0, nil)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		pg, err := StartPostgres(context.Background(), filepath.Join(dir, "pg"), 0, nil, Fast())
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("ports", r.Port, pg.Port)
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	if err := EnsureBinaries(context.Background(), os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func refused(t *testing.T, port int) {
	t.Helper()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("port %d still accepts connections", port)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dialing a stopped server: want connection refused, got %v", err)
	}
}

func pgQuery(t *testing.T, url, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func pgExec(t *testing.T, url, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func TestPostgresKeepsDataAcrossRestarts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "deep", "pg")
	var log syncBuffer

	start := time.Now()
	pg, err := StartPostgres(ctx, dir, 0, &log)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cold start (initdb, durable): %v", time.Since(start))
	t.Cleanup(func() { _ = pg.Stop() })

	if !strings.HasPrefix(pg.URL, "postgres://postgres@127.0.0.1:") || !strings.HasSuffix(pg.URL, "/apidb?sslmode=disable") {
		t.Errorf("URL = %q", pg.URL)
	}
	if got := pgQuery(t, pg.URL, "SELECT current_database()"); got != "apidb" {
		t.Errorf("current_database() = %q, want apidb", got)
	}
	if got := pgQuery(t, pg.URL, "SHOW fsync"); got != "on" {
		t.Errorf("default fsync = %q, want on", got)
	}
	if got := pgQuery(t, pg.URL, "SHOW listen_addresses"); got != "127.0.0.1" {
		t.Errorf("listen_addresses = %q", got)
	}
	if os.Geteuid() == 0 {
		// Running as root, the server must run as the postgres user.
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatal(err)
		}
		if got := procUID(t, pg.proc.cmd.Process.Pid); got != u.Uid {
			t.Errorf("postgres runs as uid %s, want %s (postgres)", got, u.Uid)
		}
	}
	pgExec(t, pg.URL, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('survives')")

	if err := pg.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := pg.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	refused(t, pg.Port)

	start = time.Now()
	pg2, err := StartPostgres(ctx, dir, pg.Port, &log)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("warm start (existing data): %v", time.Since(start))
	t.Cleanup(func() { _ = pg2.Stop() })
	if pg2.URL != pg.URL {
		t.Errorf("restart on the same port: URL %q, want %q", pg2.URL, pg.URL)
	}
	if got := pgQuery(t, pg2.URL, "SELECT v FROM kept"); got != "survives" {
		t.Errorf("after restart: %q", got)
	}
}

func procUID(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
			return f[1]
		}
	}
	t.Fatal("no Uid line in /proc status")
	return ""
}

func TestPostgresFastAndSettings(t *testing.T) {
	t.Parallel()
	start := time.Now()
	pg, err := StartPostgres(context.Background(), t.TempDir(), 0, nil, Fast(), Setting("max_connections", "300"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cold start (initdb, Fast): %v", time.Since(start))
	defer pg.Stop()
	for setting, want := range map[string]string{"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", "max_connections": "300"} {
		if got := pgQuery(t, pg.URL, "SHOW "+setting); got != want {
			t.Errorf("%s = %q, want %q", setting, got, want)
		}
	}
}

func TestPostgresRejectsForeignFolder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := StartPostgres(context.Background(), dir, 0, nil)
	if err == nil || !strings.Contains(err.Error(), "neither empty nor a Postgres data directory") {
		t.Fatalf("StartPostgres on a folder with other files: err = %v", err)
	}
}

func TestPostgresPortTaken(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	_, err = StartPostgres(context.Background(), t.TempDir(), port, nil, Fast())
	if err == nil || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("StartPostgres on a taken port: err = %v", err)
	}
}

func TestRedisStopStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	start := time.Now()
	r, err := StartRedis(ctx, dir, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("redis start: %v", time.Since(start))
	t.Cleanup(func() { _ = r.Stop() })
	if want := fmt.Sprintf("redis://127.0.0.1:%d/0", r.Port); r.URL != want {
		t.Errorf("URL = %q, want %q", r.URL, want)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", r.Port)
	if got := redisDo(t, addr, "SET", "k", "kept"); got != "+OK" {
		t.Fatalf("SET: %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "appendonlydir")); err != nil {
		t.Errorf("no append-only folder in the data dir: %v", err)
	}

	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	refused(t, r.Port)
	if err := r.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}

	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got := redisDo(t, addr, "GET", "k"); got != "$4 kept" {
		t.Errorf("after Start, GET k = %q: the append-only file did not keep the data", got)
	}
	if err := r.Start(ctx); err == nil {
		t.Error("Start on a running server: no error")
	}
	if err := r.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if got := redisDo(t, addr, "GET", "k"); got != "$4 kept" {
		t.Errorf("after Restart, GET k = %q", got)
	}
}

// redisDo sends one command and returns the reply's first line, with a
// bulk string's content appended after a space.
func redisDo(t *testing.T, addr string, args ...string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(c)
	line, err := rd.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	line = strings.TrimSpace(line)
	if strings.HasPrefix(line, "$") && line != "$-1" {
		v, _ := rd.ReadString('\n')
		line += " " + strings.TrimSpace(v)
	}
	return line
}

// TestContextBoundsOnlyTheStart: cancelling the context after the start
// leaves the servers running (the caller stops them in its own order);
// cancelling it during the start aborts and leaves nothing behind.
func TestContextBoundsOnlyTheStart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	r, err := StartRedis(ctx, t.TempDir(), 0, nil, Fast())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	pg, err := StartPostgres(ctx, t.TempDir(), 0, nil, Fast())
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Stop()
	cancel()
	time.Sleep(200 * time.Millisecond)
	if err := PingRedis(context.Background(), fmt.Sprintf("127.0.0.1:%d", r.Port)); err != nil {
		t.Errorf("redis after its start context was cancelled: %v", err)
	}
	if got := pgQuery(t, pg.URL, "SELECT 'up'"); got != "up" {
		t.Errorf("postgres after its start context was cancelled: %q", got)
	}

	// Cancelled while initdb runs.
	dir := t.TempDir()
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := StartPostgres(ctx, dir, 0, nil); err == nil {
		t.Fatal("StartPostgres with a context cancelled during the start: no error")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("a cancelled start took %v to return", d)
	}
	// Nothing holds the folder and nothing half-made is left in it: a new
	// start succeeds.
	pg2, err := StartPostgres(context.Background(), dir, 0, nil, Fast())
	if err != nil {
		t.Fatalf("starting again after a cancelled start: %v", err)
	}
	pg2.Stop()
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if _, err := StartRedis(ctx, t.TempDir(), 0, nil); err == nil || !strings.Contains(err.Error(), "cancel") {
		t.Errorf("StartRedis with a cancelled context: %v", err)
	}
}

// TestServersDieWithParent kills (SIGKILL, no chance to clean up) a child
// process that started a Redis and a Postgres, and expects both servers to
// die with it.
func TestServersDieWithParent(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "DEVSERVER_TEST_CHILD_DIR="+t.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the child's report: %v", err)
	}
	var redisPort, pgPort int
	if _, err := fmt.Sscanf(line, "ports %d %d", &redisPort, &pgPort); err != nil {
		t.Fatalf("child said %q", line)
	}
	if err := PingRedis(context.Background(), fmt.Sprintf("127.0.0.1:%d", redisPort)); err != nil {
		t.Fatalf("child's redis not answering: %v", err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	for name, port := range map[string]int{"redis": redisPort, "postgres": pgPort} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
			if err != nil && errors.Is(err, syscall.ECONNREFUSED) {
				break
			}
			if err == nil {
				c.Close()
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s on port %d outlived its parent (dial: %v)", name, port, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func TestFindPostgresPrefersVersionThenHighest(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"9.6", "13", "16"} {
		bin := filepath.Join(root, v, "bin")
		if err := os.MkdirAll(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, b := range []string{"initdb", "postgres"} {
			if err := os.WriteFile(filepath.Join(bin, b), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	// 14 lacks postgres: not a candidate.
	if err := os.MkdirAll(filepath.Join(root, "14", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	old := postgresLibGlob
	postgresLibGlob = filepath.Join(root, "*", "bin")
	t.Cleanup(func() { postgresLibGlob = old })
	t.Setenv("PATH", "")

	tests := []struct {
		version, want string
	}{
		{"", "16"},
		{"13", "13"},
		{"9.6", "9.6"},
		{"14", "16"},
	}
	for _, tc := range tests {
		got, err := findPostgres(tc.version)
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(root, tc.want, "bin"); got != want {
			t.Errorf("findPostgres(%q) = %s, want %s", tc.version, got, want)
		}
	}
}

func TestEnsureBinariesFindsInstalledServers(t *testing.T) {
	t.Parallel()
	// TestMain already ran EnsureBinaries; now nothing may be missing.
	if m := missingPackages(); len(m) != 0 {
		t.Fatalf("still missing after EnsureBinaries: %v", m)
	}
	var log bytes.Buffer
	if err := EnsureBinaries(context.Background(), &log); err != nil {
		t.Fatal(err)
	}
	if log.Len() != 0 {
		t.Errorf("EnsureBinaries with everything installed printed %q", log.String())
	}
}

// TestSupervisedRedisComesBack: `make run`'s private Redis killed with
// SIGKILL is started again on the same port by the supervisor, and stays
// down after Stop.
func TestSupervisedRedisComesBack(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	port := 0
	var logs []string
	var mu sync.Mutex
	s, err := Supervise(context.Background(), "redis", func(ctx context.Context) (Server, error) {
		r, err := StartRedis(ctx, dir, port, nil, Fast())
		if err == nil {
			port = r.Port
		}
		return r, err
	}, func(f string, a ...any) { mu.Lock(); logs = append(logs, fmt.Sprintf(f, a...)); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	first := s.Current().(*Redis)
	if err := syscall.Kill(first.proc.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.Done()
	deadline := time.Now().Add(30 * time.Second)
	for s.Restarts() < 1 || PingRedis(context.Background(), addr) != nil {
		if time.Now().After(deadline) {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("redis not back on %s within 30 s; supervisor said %q", addr, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if PingRedis(context.Background(), addr) == nil {
		t.Fatal("redis still answers after Stop")
	}
	if s.Restarts() != 1 {
		t.Fatalf("%d restarts, want 1 (none after Stop)", s.Restarts())
	}
}
