package stack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ratebill/platform/shared/config"
	"github.com/ratebill/platform/shared/reporoot"
	"github.com/ratebill/platform/shared/routes"
	"github.com/ratebill/platform/tools/devserver"
)

// Timeouts of a function process.
const (
	// ReadyTimeout bounds the wait for a new process's GET /livez.
	ReadyTimeout = 20 * time.Second
	// StopGrace is how long a process may take to exit after SIGTERM
	// before it is killed.
	StopGrace = 10 * time.Second
)

// Options says what Start runs for a test.
type Options struct {
	DatabaseURL string            // required: DATABASE_URL of every process (already migrated: INIT_DB=false)
	RedisURL    string            // required: REDIS_URL of every process
	Env         map[string]string // extra environment for every function process; overrides the defaults
	Replicas    map[string]int    // function name -> number of processes (default 1; 0 also means 1)
	// Metrics serves each process's metrics as Prometheus text
	// (OTEL_EXPORTER=prometheus) on a loopback port of its own
	// (METRICS_ADDR), listed in Fleet.Metrics.
	Metrics bool
}

// Stack is the Fleet of one test.
type Stack struct {
	*Fleet
	t testing.TB
}

// Fleet is a set of running function processes: what the test stack and
// `make run -separate` both start, so one supervisor serves both.
type Fleet struct {
	// Instances maps function name (routes.Users, ...) to the base URLs of
	// its processes, e.g. "http://127.0.0.1:41234".
	Instances map[string][]string
	// Metrics maps function name to the Prometheus URLs of its processes
	// ("http://127.0.0.1:PORT/metrics", in the order of Instances) when
	// FleetOptions.Metrics is set.
	Metrics map[string][]string

	procs map[string][]*instance
	all   []*instance
}

// FleetOptions says what StartFleet runs.
type FleetOptions struct {
	Env      []string       // the whole environment of every process (PORT is added)
	Replicas map[string]int // function name -> number of processes (default 1)
	LogDir   string         // each process's output goes to LogDir/<fn>-<i>.log
	// Dir is the working folder of the processes (the tests use an empty
	// one, so no .env of the repository is picked up); default LogDir.
	Dir string
	// Metrics: see Options.Metrics.
	Metrics bool
}

// StartFleet builds the four function binaries (once per process) and
// starts them on free loopback ports, in parallel, waiting until each
// answers GET /livez with its own pid. On error, whatever started is
// stopped.
func StartFleet(opt FleetOptions) (*Fleet, error) {
	for fn := range opt.Replicas {
		if !slices.Contains(routes.Functions, fn) {
			return nil, fmt.Errorf("stack: Replicas names unknown function %q (want one of %v)", fn, routes.Functions)
		}
	}
	bins, err := buildFunctions()
	if err != nil {
		return nil, fmt.Errorf("building the functions: %w", err)
	}
	if opt.Dir == "" {
		opt.Dir = opt.LogDir
	}
	f := &Fleet{Instances: map[string][]string{}, procs: map[string][]*instance{}}
	for _, fn := range routes.Functions {
		for i := range max(opt.Replicas[fn], 1) {
			in := &instance{
				name:    fmt.Sprintf("%s[%d]", fn, i),
				bin:     bins[fn],
				env:     opt.Env,
				dir:     opt.Dir,
				logPath: filepath.Join(opt.LogDir, fmt.Sprintf("%s-%d.log", fn, i)),
				metrics: opt.Metrics,
			}
			f.procs[fn] = append(f.procs[fn], in)
			f.all = append(f.all, in)
		}
	}
	errs := make([]error, len(f.all))
	var wg sync.WaitGroup
	for k, in := range f.all {
		wg.Go(func() { errs[k] = in.start(0) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		f.Stop()
		return nil, fmt.Errorf("starting the functions: %w", err)
	}
	for fn, ins := range f.procs {
		for _, in := range ins {
			f.Instances[fn] = append(f.Instances[fn], in.url())
			if in.metrics {
				if f.Metrics == nil {
					f.Metrics = map[string][]string{}
				}
				f.Metrics[fn] = append(f.Metrics[fn], "http://127.0.0.1:"+strconv.Itoa(in.metricsPort)+"/metrics")
			}
		}
	}
	return f, nil
}

// Stop stops every process (SIGTERM, then SIGKILL after StopGrace) in
// parallel and reports those that did not exit cleanly.
func (f *Fleet) Stop() error {
	errs := make([]error, len(f.all))
	var wg sync.WaitGroup
	for k, in := range f.all {
		wg.Go(func() {
			if err := in.stop(); err != nil && !errors.Is(err, errNotRunning) {
				errs[k] = fmt.Errorf("stopping %s: %w", in.name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// crashed lists the processes that exited without being stopped.
func (f *Fleet) crashed() []*instance {
	var out []*instance
	for _, in := range f.all {
		in.mu.Lock()
		if in.done != nil && !in.stopped && isClosed(in.done) {
			out = append(out, in)
		}
		in.mu.Unlock()
	}
	return out
}

// Start starts a Fleet for a test: the parent's environment less the
// platform's variables, plus DATABASE_URL, REDIS_URL, INIT_DB=false,
// LOG_LEVEL=warn and opt.Env, logs in the test's temporary folder
// (printed when the test fails), stopped when the test ends; a process
// that exited during the test without being stopped fails it.
func Start(t testing.TB, opt Options) *Stack {
	t.Helper()
	if opt.DatabaseURL == "" || opt.RedisURL == "" {
		t.Fatal("stack.Start: Options.DatabaseURL and Options.RedisURL are required (stack.Postgres(t), stack.Redis(t).URL)")
	}
	f, err := StartFleet(FleetOptions{Env: processEnv(opt), Replicas: opt.Replicas, LogDir: t.TempDir(), Metrics: opt.Metrics})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, in := range f.crashed() {
			t.Errorf("%s exited during the test without being stopped: %v", in.name, in.err)
		}
		if err := f.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			for _, in := range f.all {
				t.Logf("log of %s (%s):\n%s", in.name, in.url(), tail(in.logPath))
			}
		}
	})
	return &Stack{Fleet: f, t: t}
}

// StopInstance stops process i of function fn (SIGTERM, then SIGKILL after
// StopGrace) and waits for it to exit. It returns nil when the process
// exited with status 0 within StopGrace, the process's failure otherwise.
func (s *Stack) StopInstance(fn string, i int) error {
	s.t.Helper()
	return s.instance(fn, i).stop()
}

// StartInstance starts a stopped process i of function fn again on its old
// port and waits until it answers GET /livez.
func (s *Stack) StartInstance(fn string, i int) {
	s.t.Helper()
	in := s.instance(fn, i)
	if err := in.start(in.port); err != nil {
		s.t.Fatalf("restarting %s: %v", in.name, err)
	}
}

// Logs returns everything process i of function fn has written to stdout
// and stderr so far (every run of it, after StartInstance).
func (s *Stack) Logs(fn string, i int) string {
	s.t.Helper()
	b, err := os.ReadFile(s.instance(fn, i).logPath)
	if err != nil {
		s.t.Fatal(err)
	}
	return string(b)
}

func (s *Stack) instance(fn string, i int) *instance {
	s.t.Helper()
	ins := s.procs[fn]
	if i < 0 || i >= len(ins) {
		s.t.Fatalf("stack: no instance %d of function %q (it has %d)", i, fn, len(ins))
	}
	return ins[i]
}

// instance is one function process.
type instance struct {
	name    string
	bin     string
	env     []string
	dir     string
	logPath string
	metrics bool // serve Prometheus metrics on metricsPort

	mu          sync.Mutex
	port        int
	metricsPort int // chosen at the first start, kept on restarts
	cmd         *exec.Cmd
	done        chan struct{}
	err         error // Wait's result, read after done is closed
	stopped     bool  // stop was called for the current run
}

var errNotRunning = errors.New("not running")

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func (in *instance) url() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return "http://127.0.0.1:" + strconv.Itoa(in.port)
}

// start runs the process on port (0: a free one, retried if another
// process takes it first) and waits until it answers GET /livez.
func (in *instance) start(port int) error {
	for attempt := 0; ; attempt++ {
		p := port
		if p == 0 {
			var err error
			if p, err = devserver.FreePort(); err != nil {
				return err
			}
		}
		err := in.run(p)
		if err != nil && port == 0 && attempt < 3 && strings.Contains(err.Error(), "address already in use") {
			continue
		}
		return err
	}
}

func (in *instance) run(port int) error {
	in.mu.Lock()
	if in.done != nil {
		select {
		case <-in.done:
		default:
			in.mu.Unlock()
			return fmt.Errorf("%s is already running", in.name)
		}
	}
	logf, err := os.OpenFile(in.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		in.mu.Unlock()
		return err
	}
	fmt.Fprintf(logf, "=== stack: starting %s on port %d\n", in.name, port)
	cmd := exec.Command(in.bin)
	cmd.Env = append(slices.Clone(in.env), "PORT="+strconv.Itoa(port))
	if in.metrics {
		if in.metricsPort == 0 {
			if in.metricsPort, err = devserver.FreePort(); err != nil {
				logf.Close()
				in.mu.Unlock()
				return err
			}
		}
		cmd.Env = append(cmd.Env, "OTEL_EXPORTER=prometheus", "METRICS_ADDR=127.0.0.1:"+strconv.Itoa(in.metricsPort))
	}
	// A folder of its own: no .env of the repository is picked up.
	cmd.Dir = in.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = devserver.ChildProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		in.mu.Unlock()
		return fmt.Errorf("starting %s: %w", in.name, err)
	}
	done := make(chan struct{})
	in.port, in.cmd, in.done, in.err, in.stopped = port, cmd, done, nil, false
	in.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logf.Close()
		in.mu.Lock()
		in.err = err
		in.mu.Unlock()
		close(done)
	}()

	url := fmt.Sprintf("http://127.0.0.1:%d/livez", port)
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(ReadyTimeout)
	for {
		select {
		case <-done:
			in.mu.Lock()
			werr := in.err
			in.stopped = true // reported here, not again at cleanup
			in.mu.Unlock()
			return fmt.Errorf("%s exited before answering /livez (%v); its log:\n%s", in.name, werr, tail(in.logPath))
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			var live struct {
				PID int `json:"pid"`
			}
			derr := json.NewDecoder(resp.Body).Decode(&live)
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusOK && derr == nil && live.PID == cmd.Process.Pid:
				return nil
			case resp.StatusCode == http.StatusOK && live.PID != 0:
				// Another process (of a test running beside this one)
				// took the port between FreePort and our bind: this
				// process will fail to listen. Retry on another port.
				_ = in.stop()
				return fmt.Errorf("%s: port %d: address already in use (answered by pid %d)", in.name, port, live.PID)
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if time.Now().After(deadline) {
			_ = in.stop()
			return fmt.Errorf("%s: GET /livez not 200 after %s (last: %v); its log:\n%s", in.name, ReadyTimeout, err, tail(in.logPath))
		}
		select {
		case <-done:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM, waits StopGrace, then kills the process group.
func (in *instance) stop() error {
	in.mu.Lock()
	cmd, done := in.cmd, in.done
	in.stopped = true
	in.mu.Unlock()
	if done == nil {
		return errNotRunning
	}
	select {
	case <-done:
		return errNotRunning
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(StopGrace):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("%s did not exit within %s of SIGTERM and was killed", in.name, StopGrace)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.err != nil {
		return fmt.Errorf("%s exited after SIGTERM: %w", in.name, in.err)
	}
	return nil
}

// processEnv is the environment of every function process, without PORT.
func processEnv(opt Options) []string {
	drop := map[string]bool{"PORT": true, "FUNCTION_TARGET": true, "K_SERVICE": true,
		DatabaseURLVariable: true, RedisURLVariable: true}
	for _, v := range config.Variables {
		drop[v] = true
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			env = append(env, kv)
		}
	}
	env = append(env,
		"DATABASE_URL="+opt.DatabaseURL,
		"REDIS_URL="+opt.RedisURL,
		"INIT_DB=false",
		"LOG_LEVEL=warn",
	)
	keys := make([]string, 0, len(opt.Env))
	for k := range opt.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		env = append(env, k+"="+opt.Env[k])
	}
	return env
}

// RedisURLVariable names the environment variable holding the URL of a
// Redis server shared by the whole test run (set by `make test`), for tests
// that do not stop their Redis and use keys of their own.
const RedisURLVariable = "TEST_REDIS_URL"

var (
	buildOnce sync.Once
	builtBins map[string]string
	buildErr  error
)

// buildFunctions returns the path of each function's binary, building them
// once per test binary. Tests of this package replace it.
var buildFunctions = func() (map[string]string, error) {
	buildOnce.Do(func() { builtBins, buildErr = build() })
	return builtBins, buildErr
}

// build runs `go build -o DIR/NAME ./functions/NAME/cmd` for every function
// from the workspace root, in parallel. DIR is a cache folder per checkout
// (under os.UserCacheDir), so go build skips linking a binary that is
// already up to date: a warm run pays a staleness check, not four links.
// A file lock keeps test binaries of one run from building at once.
func build() (map[string]string, error) {
	root, err := reporoot.Find()
	if err != nil {
		return nil, err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(cache, "ratebill", "stack-bin", hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	defer lock.Close() // releases the lock
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("the go command is not on PATH: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bins := map[string]string{}
	errs := make([]error, len(routes.Functions))
	var wg sync.WaitGroup
	for k, fn := range routes.Functions {
		out := filepath.Join(dir, fn)
		bins[fn] = out
		wg.Go(func() {
			cmd := exec.CommandContext(ctx, gobin, "build", "-o", out, "./functions/"+fn+"/cmd")
			cmd.Dir = root
			if b, err := cmd.CombinedOutput(); err != nil {
				errs[k] = fmt.Errorf("go build ./functions/%s/cmd: %w\n%s", fn, err, b)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return bins, nil
}

// tail returns the last 64 KiB of the file at path.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	const max = 64 << 10
	if len(b) > max {
		b = append([]byte("...\n"), b[len(b)-max:]...)
	}
	return strings.TrimSpace(string(b))
}
