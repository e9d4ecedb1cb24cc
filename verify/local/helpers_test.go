package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ratebill/platform/tools/devserver"
)

// repoRoot is the repository root, two levels above this module.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.work")); err != nil {
		t.Fatalf("repository root %s has no go.work: %v", root, err)
	}
	return root
}

// readRepoFile returns the content of a file by its path relative to the
// repository root.
func readRepoFile(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// requireTool returns the path of an external program. Without it the test
// fails when CI is set (make test on CI must run everything) and is
// otherwise skipped loudly (see missing).
func requireTool(t testing.TB, name string, extra ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range extra {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	missing(t, "%s is not installed (scripts/test.d/20-nginx.sh installs nginx; unshare is in util-linux)", name)
	return ""
}

// DidNotRun starts the message of a test skipped because something it
// needs (a tool, root) is missing. scripts/test.sh counts these lines and
// reports them as "did not run", apart from ordinary skips; under CI the
// test fails instead.
const DidNotRun = "DID NOT RUN: "

// missing fails the test under CI and skips it elsewhere with a
// DidNotRun message.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format+" (CI is set: every check must run)", args...)
	}
	t.Skipf(DidNotRun+format+" (CI unset: skipped)", args...)
}

// requireRoot is for tests that need a private mount namespace.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "needs root for a private mount namespace (unshare --mount)")
	}
}

// nginxServer is a real nginx running as a child process of the test.
type nginxServer struct {
	URL       string // http://127.0.0.1:PORT
	AccessLog string // path of the file nginx's stdout (the JSON access log) goes to
	ErrorLog  string
}

// startNginx runs nginx in the foreground with the repository's
// gateway.conf and routes.conf, the given upstreams.conf, listening on a
// free loopback port, with its pid, logs and temporary files in a fresh
// temporary folder. It is stopped (SIGQUIT: graceful) when the test ends.
func startNginx(t testing.TB, upstreams []byte) *nginxServer {
	t.Helper()
	files := map[string][]byte{"upstreams.conf": upstreams}
	for _, f := range []string{"gateway.conf", "routes.conf"} {
		files[f] = readRepoFile(t, "nginx/"+f)
	}
	return runNginx(t, files, func(dir string, port int) string {
		return fmt.Sprintf(`    include %[1]s/gateway.conf;
    include %[1]s/upstreams.conf;
    server {
        listen 127.0.0.1:%[2]d default_server;
        server_name _;
        include %[1]s/routes.conf;
    }
`, dir, port)
	})
}

// runNginx writes files into a fresh temporary folder and runs nginx with
// an http block that httpBody returns for that folder and a free loopback
// port, with its pid, logs and temporary files in the folder. It is
// stopped (SIGQUIT: graceful) when the test ends.
func runNginx(t testing.TB, files map[string][]byte, httpBody func(dir string, port int) string) *nginxServer {
	t.Helper()
	bin := requireTool(t, "nginx", "/usr/sbin/nginx")
	dir := t.TempDir()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	port, err := devserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	user := ""
	if os.Geteuid() == 0 {
		// Workers would otherwise drop to nobody, who cannot enter the
		// test's 0700 temporary folder.
		user = "user root;"
	}
	conf := fmt.Sprintf(`# Written by the test: everything in %[1]s.
daemon off;
master_process on;
worker_processes 2;
%[3]s
pid %[1]s/nginx.pid;
error_log %[1]s/error.log notice;
events { worker_connections 1024; }
http {
    client_body_temp_path %[1]s/client_temp;
    proxy_temp_path %[1]s/proxy_temp;
    fastcgi_temp_path %[1]s/fastcgi_temp;
    uwsgi_temp_path %[1]s/uwsgi_temp;
    scgi_temp_path %[1]s/scgi_temp;
%[4]s}
`, dir, port, user, httpBody(dir, port))
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &nginxServer{
		URL:       fmt.Sprintf("http://127.0.0.1:%d", port),
		AccessLog: filepath.Join(dir, "access.log"),
		ErrorLog:  filepath.Join(dir, "error.log"),
	}
	out, err := os.Create(s.AccessLog)
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-p", dir, "-c", confPath, "-e", s.ErrorLog)
	cmd.Stdout = out
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting nginx: %v", err)
	}
	// exited is closed when nginx has exited; waitErr is then its status.
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		out.Close()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("nginx did not stop within 10s of SIGQUIT")
		}
		if t.Failed() {
			b, _ := os.ReadFile(s.ErrorLog)
			t.Logf("nginx error log:\n%s%s", b, stderr.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			b, _ := os.ReadFile(s.ErrorLog)
			t.Fatalf("nginx exited at start: %v\n%s%s", waitErr, b, stderr.String())
		default:
		}
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(s.URL, "http://"), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx not listening on %s after 10s", s.URL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runInNamespace runs argv in a private mount namespace after bind-mounting
// each source over its target (e.g. a hosts file over /etc/hosts), so a
// check sees the files a container would see without touching the host.
func runInNamespace(t testing.TB, binds [][2]string, argv ...string) (string, error) {
	t.Helper()
	requireRoot(t)
	unshare := requireTool(t, "unshare", "/usr/bin/unshare")
	var script strings.Builder
	script.WriteString("set -e\n")
	for _, b := range binds {
		fmt.Fprintf(&script, "mount --bind %q %q\n", b[0], b[1])
	}
	script.WriteString(`exec "$@"` + "\n")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := append([]string{"--mount", "--propagation", "private", "sh", "-c", script.String(), "sh"}, argv...)
	out, err := exec.CommandContext(ctx, unshare, args...).CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("running %v in a mount namespace: %v\n%s", argv, err, out)
	}
	return string(out), err
}

// httpClient bounds every test request.
var httpClient = &http.Client{Timeout: 15 * time.Second}

// doRequest sends one request and returns the response with its whole
// body, failing the test on a transport error.
func doRequest(t testing.TB, method, url string, body io.Reader, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}
