package devserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Redis is a private redis-server run from the machine's binary.
type Redis struct {
	// URL is redis://127.0.0.1:PORT/0.
	URL string
	// Port is the TCP port on 127.0.0.1; it stays the same across Stop and
	// Start.
	Port int
	// Dir holds the append-only file (absolute).
	Dir string

	bin  string
	args []string
	logw io.Writer

	mu   sync.Mutex
	proc *process // nil while stopped
}

// StartRedis starts redis-server on 127.0.0.1:port (0 picks a free port)
// with its data in dir (append-only file on, so data survives restarts
// when dir does), and waits until it answers PING. It runs with explicit
// arguments, never the system's redis.conf. logw receives its output (nil
// discards it).
//
// ctx bounds the start only, as for StartPostgres: the server runs until
// Stop.
func StartRedis(ctx context.Context, dir string, port int, logw io.Writer, opts ...Option) (*Redis, error) {
	o := collect(opts)
	if logw == nil {
		logw = io.Discard
	}
	bin, err := findRedis()
	if err != nil {
		return nil, fmt.Errorf("%w (install: apt-get install -y %s)", err, RedisPackage)
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the Redis data folder: %w", err)
	}
	for attempt := 0; ; attempt++ {
		p := port
		if p == 0 {
			if p, err = FreePort(); err != nil {
				return nil, err
			}
		}
		r := &Redis{URL: fmt.Sprintf("redis://127.0.0.1:%d/0", p), Port: p, Dir: dir, bin: bin, logw: logw}
		r.args = []string{
			"--port", strconv.Itoa(p),
			"--bind", "127.0.0.1",
			"--dir", dir,
			"--daemonize", "no",
			"--protected-mode", "yes",
			"--appendonly", "yes",
			"--save", "",
			"--logfile", "",
			"--unixsocket", "",
		}
		if o.fast {
			r.args = append(r.args, "--appendfsync", "no")
		}
		for _, s := range o.settings {
			r.args = append(r.args, "--"+s[0], s[1])
		}
		err := r.Start(ctx)
		if err != nil && port == 0 && attempt < 3 && addrInUse(err.Error()) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return r, nil
	}
}

// Start starts the server again after Stop, on the same port and with the
// same data folder, and waits until it answers PING (ctx bounds the wait).
// Starting a running server is an error.
func (r *Redis) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc != nil && !r.proc.exited() {
		return errors.New("redis-server is already running")
	}
	cmd := exec.Command(r.bin, r.args...)
	cmd.Dir = r.Dir
	proc, err := startProcess("redis-server", cmd, r.logw, nil)
	if err != nil {
		return err
	}
	r.proc = proc
	addr := fmt.Sprintf("127.0.0.1:%d", r.Port)
	if err := waitReady(ctx, proc, time.Minute, func(ctx context.Context) error { return PingRedis(ctx, addr) }); err != nil {
		_ = proc.stop(syscall.SIGTERM, 10*time.Second)
		return err
	}
	return nil
}

// Stop shuts the server down (SIGTERM: the append-only file is flushed)
// and waits for the process to exit, so that afterwards connections to its
// port are refused. Stopping a stopped server does nothing.
func (r *Redis) Stop() error {
	r.mu.Lock()
	p := r.proc
	r.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.stop(syscall.SIGTERM, 10*time.Second)
}

// Restart stops the server and starts it again on the same port and data.
func (r *Redis) Restart(ctx context.Context) error {
	if err := r.Stop(); err != nil {
		return err
	}
	return r.Start(ctx)
}

// Done is closed when the current server process exits; it belongs to the
// process running when Done is called.
func (r *Redis) Done() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.proc.done
}

// PingRedis sends PING over RESP to addr and expects PONG. A server still loading its
// append-only file answers -LOADING, which counts as not ready.
func PingRedis(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line = strings.TrimSpace(line); line != "+PONG" {
		return fmt.Errorf("redis answered PING with %q", line)
	}
	return nil
}
