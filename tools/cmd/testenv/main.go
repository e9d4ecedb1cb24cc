// Command testenv runs a command with private PostgreSQL and Redis servers
// started for it, the way `make test` runs the test suites:
//
//	testenv [-keep] -- go test ./...
//
// It makes sure the server binaries are installed (devserver.EnsureBinaries),
// starts Postgres (durability off for speed, it is thrown away) and Redis
// on free loopback ports in a new temporary folder, runs the command with
// TEST_DATABASE_URL and TEST_REDIS_URL set and TMPDIR pointing inside that
// folder, then stops the servers, removes the folder (unless -keep) and
// exits with the command's status. SIGINT, SIGTERM, SIGHUP and SIGQUIT are
// forwarded to the command's process group; the servers stop after it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ratebill/platform/tools/devserver"
)

func main() {
	log := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "testenv: "+format+"\n", args...) }
	keep := flag.Bool("keep", false, "keep the temporary folder (server data and logs) and print its path")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: testenv [-keep] -- CMD [ARGS...]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	code, err := run(*keep, flag.Args(), log)
	if err != nil {
		log("%v", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func run(keep bool, args []string, log func(string, ...any)) (code int, err error) {
	// A signal before the command runs cancels the start-up (and stops any
	// server started so far); afterwards it is forwarded to the command.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	var firstSig os.Signal
	setupDone, watcherDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watcherDone)
		select {
		case firstSig = <-sigs:
			cancel()
		case <-setupDone:
		}
	}()

	if err := devserver.EnsureBinaries(ctx, os.Stderr); err != nil {
		return 1, err
	}
	dir, err := os.MkdirTemp("", "testenv-")
	if err != nil {
		return 1, err
	}
	defer func() {
		if keep {
			log("kept %s (server data and logs)", dir)
			return
		}
		if err := os.RemoveAll(dir); err != nil {
			log("removing %s: %v", dir, err)
		}
	}()
	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return 1, err
	}
	pgLog, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		return 1, err
	}
	defer pgLog.Close()
	redisLog, err := os.Create(filepath.Join(dir, "redis.log"))
	if err != nil {
		return 1, err
	}
	defer redisLog.Close()

	start := time.Now()
	pg, err := devserver.StartPostgres(ctx, filepath.Join(dir, "postgres"), 0, pgLog,
		devserver.Fast(),
		// Every test database and every function process's pool: many
		// connections, most idle.
		devserver.Setting("max_connections", "1000"),
		devserver.Setting("shared_buffers", "256MB"),
	)
	if err != nil {
		return 1, startError(ctx, "Postgres", err, pgLog.Name())
	}
	pgStarted := time.Since(start)
	defer stopServer("Postgres", pg.Stop, log)

	start = time.Now()
	rdb, err := devserver.StartRedis(ctx, filepath.Join(dir, "redis"), 0, redisLog, devserver.Fast())
	if err != nil {
		return 1, startError(ctx, "Redis", err, redisLog.Name())
	}
	defer stopServer("Redis", rdb.Stop, log)
	log("Postgres %s (started in %v), Redis %s (started in %v)", pg.URL, pgStarted.Round(time.Millisecond), rdb.URL, time.Since(start).Round(time.Millisecond))

	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(),
		"TEST_DATABASE_URL="+pg.URL,
		"TEST_REDIS_URL="+rdb.URL,
		"TMPDIR="+tmp,
	)
	// Its own process group, so a forwarded signal reaches every process
	// of the command (go test and its test binaries) exactly once.
	cmd.SysProcAttr = devserver.ChildProcAttr()

	close(setupDone)
	<-watcherDone
	if ctx.Err() != nil {
		return 1, fmt.Errorf("interrupted by %v before the command started", firstSig)
	}
	if err := cmd.Start(); err != nil {
		return 127, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	var werr error
wait:
	for {
		select {
		case werr = <-done:
			break wait
		case sig := <-sigs:
			log("forwarding %v to %s", sig, args[0])
			_ = syscall.Kill(-cmd.Process.Pid, sig.(syscall.Signal))
		case <-pg.Done():
			log("Postgres died during the run; its log ends:\n%s", lastLines(pgLog.Name(), 30))
			return 1, errors.Join(errors.New("the Postgres server exited during the run"), stopCmd(cmd, done))
		}
	}
	if werr == nil {
		return 0, nil
	}
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	return 1, werr
}

// startError explains a server that did not start: interrupted, or failed
// with the end of its log (the folder holding the log is removed).
func startError(ctx context.Context, name string, err error, logPath string) error {
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted while starting %s", name)
	}
	return fmt.Errorf("starting %s: %w\nits log ends:\n%s", name, err, lastLines(logPath, 30))
}

// stopCmd ends the command's process group after a server died under it.
func stopCmd(cmd *exec.Cmd, done <-chan error) error {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	return nil
}

func stopServer(name string, stop func() error, log func(string, ...any)) {
	if err := stop(); err != nil {
		log("stopping %s: %v", name, err)
	}
}

// lastLines returns the last n lines of the file at path.
func lastLines(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
