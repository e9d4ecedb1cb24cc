package devserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Option changes how a server is started. Options apply to both
// StartPostgres and StartRedis.
type Option func(*options)

type options struct {
	fast     bool
	settings [][2]string
}

// Fast trades durability for speed, for throwaway test servers: Postgres
// runs with fsync, synchronous_commit and full_page_writes off (and initdb
// with --no-sync); Redis never fsyncs its append-only file. A crash of the
// machine may then lose or corrupt data. The default is durable.
func Fast() Option { return func(o *options) { o.fast = true } }

// Setting passes one server setting: "-c name=value" to postgres,
// "--name value" to redis-server. Later settings override earlier ones.
func Setting(name, value string) Option {
	return func(o *options) { o.settings = append(o.settings, [2]string{name, value}) }
}

func collect(opts []Option) options {
	var o options
	for _, f := range opts {
		f(&o)
	}
	return o
}

// ChildProcAttr returns the attributes devserver starts servers with, for
// other child processes that must behave the same: a process group of its
// own and, on Linux, SIGKILL when the parent dies.
func ChildProcAttr() *syscall.SysProcAttr { return sysProcAttr(nil) }

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Another process may take it before the caller binds it; the servers here
// retry with a new port when that happens and the caller asked for port 0.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// process is one running server: its command, a channel closed when it has
// exited, and the tail of its output for error messages.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed after Wait returns
	err  error         // Wait's result, read after done is closed
	tail *tailBuffer

	stopOnce sync.Once
	stopErr  error
}

// startProcess starts cmd in a process group of its own, killed by the
// kernel when this process dies, with its output copied to logw and kept
// for error messages.
func startProcess(name string, cmd *exec.Cmd, logw io.Writer, cred *syscall.Credential) (*process, error) {
	p := &process{name: name, cmd: cmd, done: make(chan struct{}), tail: &tailBuffer{max: 8 << 10}}
	var w io.Writer = p.tail
	if logw != nil {
		w = io.MultiWriter(logw, p.tail)
	}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = sysProcAttr(cred)
	// The server's children inherit the output pipe; do not let a stray one
	// hold Wait forever once the server itself has exited.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig, waits up to grace for the exit, then kills the process
// group. It is idempotent: later calls return the first call's result.
func (p *process) stop(sig syscall.Signal, grace time.Duration) error {
	p.stopOnce.Do(func() {
		if p.exited() {
			p.stopErr = p.exitError()
			return
		}
		_ = p.cmd.Process.Signal(sig)
		select {
		case <-p.done:
			return
		case <-time.After(grace):
		}
		// Kill the whole group: a server's children (Postgres backends)
		// must not survive it.
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		p.stopErr = fmt.Errorf("%s did not exit within %s of %s and was killed", p.name, grace, sig)
	})
	return p.stopErr
}

// exitError describes an unexpected exit, with the end of the output.
func (p *process) exitError() error {
	return fmt.Errorf("%s exited (%v); its last output:\n%s", p.name, p.err, p.tail.String())
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > b.max {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-b.max:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(bytes.TrimSpace(b.buf))
}

// addrInUse reports whether a server's output says its port was taken.
func addrInUse(out string) bool {
	return strings.Contains(out, "Address already in use") || strings.Contains(out, "could not create any TCP/IP sockets")
}

// makeTraversable adds o+x to every ancestor of dir that lacks it, so a
// server running as another user can reach dir. It reports each change on
// logw. Folders owned by uid are left alone.
func makeTraversable(dir string, uid int, logw io.Writer) error {
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm()&0o001 == 0 && !(ok && int(st.Uid) == uid) {
			fmt.Fprintf(logw, "devserver: chmod o+x %s (the postgres user must reach %s)\n", p, dir)
			if err := os.Chmod(p, fi.Mode().Perm()|0o001); err != nil {
				return fmt.Errorf("making %s traversable: %w", p, err)
			}
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// chownTree hands dir and everything below it to uid:gid, skipping the walk
// when dir already belongs to them.
func chownTree(dir string, uid, gid int) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == uid && int(st.Gid) == gid {
		return nil
	}
	return filepath.WalkDir(dir, func(path string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
}

// waitReady polls ready every 50ms until it returns nil, the process exits,
// ctx ends or timeout passes. The caller stops the process on error.
func waitReady(parent context.Context, p *process, timeout time.Duration, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	var last error
	for {
		if p.exited() {
			return p.exitError()
		}
		if last = ready(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			if parent.Err() != nil {
				return fmt.Errorf("start of %s cancelled: %w", p.name, parent.Err())
			}
			return fmt.Errorf("%s not ready after %s: %w", p.name, timeout, errors.Join(ctx.Err(), last))
		case <-p.done:
		case <-time.After(50 * time.Millisecond):
		}
	}
}
