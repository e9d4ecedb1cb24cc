package stack

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ratebill/platform/tools/devserver"
)

// RedisServer is a private redis-server for one test.
type RedisServer struct {
	// URL is redis://127.0.0.1:PORT/0; it stays valid across Stop and
	// Start.
	URL string

	t   testing.TB
	srv *devserver.Redis
}

// Redis starts a private redis-server on a free loopback port, with its
// data in a temporary folder of the test, and stops it when the test ends.
// Its output goes to a log file that is printed if the test fails.
func Redis(t testing.TB) *RedisServer {
	t.Helper()
	dir := t.TempDir()
	logPath := filepath.Join(dir, "redis.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := devserver.StartRedis(context.Background(), filepath.Join(dir, "data"), 0, logf, devserver.Fast())
	if err != nil {
		logf.Close()
		t.Fatalf("starting redis-server: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("stopping redis-server: %v", err)
		}
		logf.Close()
		if t.Failed() {
			t.Logf("redis-server log (%s):\n%s", srv.URL, tail(logPath))
		}
	})
	return &RedisServer{URL: srv.URL, t: t, srv: srv}
}

// Stop stops the server and waits until it has exited: connections to URL
// are refused afterwards. It must be called from the test's goroutine.
func (r *RedisServer) Stop() {
	r.t.Helper()
	if err := r.srv.Stop(); err != nil {
		r.t.Fatalf("stopping redis-server: %v", err)
	}
}

// Start starts the stopped server again on the same port with the same
// data (the append-only file), and waits until it answers PING. It must
// be called from the test's goroutine.
func (r *RedisServer) Start() {
	r.t.Helper()
	if err := r.srv.Start(context.Background()); err != nil {
		r.t.Fatalf("starting redis-server again: %v", err)
	}
}

// StartEmpty starts the stopped server again on the same port without
// its data (the append-only files are deleted first): what a Memorystore
// basic-tier failure, or any restart without persistence, does. It must
// be called from the test's goroutine.
func (r *RedisServer) StartEmpty() {
	r.t.Helper()
	entries, err := os.ReadDir(r.srv.Dir)
	if err != nil {
		r.t.Fatalf("reading the redis data folder: %v", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(r.srv.Dir, e.Name())); err != nil {
			r.t.Fatalf("deleting redis data: %v", err)
		}
	}
	r.Start()
}
