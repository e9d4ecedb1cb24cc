package devserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// DatabaseName is the database StartPostgres creates for the platform.
const DatabaseName = "apidb"

// superuser is the bootstrap superuser initdb creates, whatever the OS user.
const superuser = "postgres"

// Postgres is a private PostgreSQL server run from the machine's binaries.
type Postgres struct {
	// URL reaches the platform database as the superuser, with trust
	// authentication on loopback:
	// postgres://postgres@127.0.0.1:PORT/apidb?sslmode=disable.
	URL string
	// Port is the TCP port on 127.0.0.1.
	Port int
	// Dir is the data directory (absolute).
	Dir string

	proc *process
}

// StartPostgres initialises dir with initdb when it is empty or missing
// (data in an existing dir survives restarts), starts postgres listening on
// 127.0.0.1:port (0 picks a free port) with no Unix socket, waits until it
// accepts connections, ensures the database "apidb" exists, and returns.
// logw receives initdb's and the server's output (nil discards it).
//
// ctx bounds the start only: cancelling it during the start stops what was
// started and returns an error. Once StartPostgres has returned, the server
// runs until Stop, so a caller can first stop the processes that write to
// it (letting them flush) and then the server, whatever its context; if
// the caller dies instead, the kernel kills the server (Linux).
//
// As root, initdb and postgres run as the "postgres" user, which then owns
// dir; see the package documentation.
func StartPostgres(ctx context.Context, dir string, port int, logw io.Writer, opts ...Option) (*Postgres, error) {
	o := collect(opts)
	if logw == nil {
		logw = io.Discard
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the Postgres data folder: %w", err)
	}
	dataVersion, initialised, err := dataDirVersion(dir)
	if err != nil {
		return nil, err
	}
	bin, err := findPostgres(dataVersion)
	if err != nil {
		return nil, err
	}
	if initialised {
		if v, err := binVersion(bin); err == nil && v != dataVersion {
			return nil, fmt.Errorf("%s holds a PostgreSQL %s cluster but the binaries in %s are PostgreSQL %s: install PostgreSQL %s (apt-get install postgresql-%s) or remove the folder to start afresh (its data is lost)", dir, dataVersion, bin, v, dataVersion, dataVersion)
		}
	}

	cred, err := serverCredential(dir, logw)
	if err != nil {
		return nil, err
	}

	if !initialised {
		if err := initdb(ctx, bin, dir, cred, o.fast, logw); err != nil {
			return nil, err
		}
	}

	settings := [][2]string{
		{"listen_addresses", "127.0.0.1"},
		{"unix_socket_directories", ""},
	}
	if o.fast {
		settings = append(settings, [2]string{"fsync", "off"}, [2]string{"synchronous_commit", "off"}, [2]string{"full_page_writes", "off"})
	}
	settings = append(settings, o.settings...)

	for attempt := 0; ; attempt++ {
		p := port
		if p == 0 {
			if p, err = FreePort(); err != nil {
				return nil, err
			}
		}
		pg, err := startPostgres(ctx, bin, dir, p, settings, cred, logw)
		if err != nil && port == 0 && attempt < 3 && addrInUse(err.Error()) {
			continue
		}
		return pg, err
	}
}

func startPostgres(ctx context.Context, bin, dir string, port int, settings [][2]string, cred *syscall.Credential, logw io.Writer) (*Postgres, error) {
	args := []string{"-D", dir, "-p", strconv.Itoa(port)}
	for _, s := range settings {
		args = append(args, "-c", s[0]+"="+s[1])
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.Dir = dir
	proc, err := startProcess("postgres", cmd, logw, cred)
	if err != nil {
		return nil, err
	}
	pg := &Postgres{
		URL:  fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", superuser, port, DatabaseName),
		Port: port,
		Dir:  dir,
		proc: proc,
	}
	admin := fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=2", superuser, port)
	var conn *pgx.Conn
	err = waitReady(ctx, proc, 2*time.Minute, func(ctx context.Context) error {
		var err error
		conn, err = pgx.Connect(ctx, admin)
		return err
	})
	if err != nil {
		_ = pg.Stop()
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", DatabaseName).Scan(&exists); err != nil {
		_ = pg.Stop()
		return nil, fmt.Errorf("looking up database %s: %w", DatabaseName, err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+DatabaseName); err != nil {
			_ = pg.Stop()
			return nil, fmt.Errorf("creating database %s: %w", DatabaseName, err)
		}
	}
	return pg, nil
}

// initdb creates the cluster in a sibling folder and renames it onto the
// empty dir when complete, so an interrupted initdb never leaves a folder
// that looks initialised but is not.
func initdb(ctx context.Context, bin, dir string, cred *syscall.Credential, fast bool, logw io.Writer) error {
	tmp := dir + ".initdb"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if cred != nil {
		if err := os.Chown(tmp, int(cred.Uid), int(cred.Gid)); err != nil {
			return err
		}
	}
	args := []string{"-D", tmp, "-U", superuser, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-instructions"}
	if fast {
		args = append(args, "--no-sync")
	}
	fmt.Fprintf(logw, "devserver: initdb %s\n", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), args...)
	cmd.Stdout, cmd.Stderr = logw, logw
	cmd.SysProcAttr = sysProcAttr(cred)
	// initdb runs postgres in bootstrap mode as its own child: on
	// cancellation end the whole group, not initdb alone.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.Dir = tmp
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("initdb cancelled: %w", ctx.Err())
		}
		return fmt.Errorf("initdb %s: %w (its output went to the server log)", dir, err)
	}
	// dir is empty (checked before); os.Rename refuses to replace a
	// directory, so remove it first.
	if err := os.Remove(dir); err != nil {
		return fmt.Errorf("replacing %s with the new cluster: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("moving the new cluster into %s: %w", dir, err)
	}
	return nil
}

// Stop shuts the server down (SIGINT, Postgres's "fast" shutdown: open
// transactions roll back, a checkpoint is written) and waits for it to exit. It is safe to call more
// than once. It returns an error when the server had already died or had to
// be killed.
func (p *Postgres) Stop() error {
	return p.proc.stop(syscall.SIGINT, 60*time.Second)
}

// Done is closed when the server process has exited, for whatever reason.
func (p *Postgres) Done() <-chan struct{} { return p.proc.done }

// dataDirVersion reads PG_VERSION from dir. initialised is false for an
// empty dir; a non-empty dir without PG_VERSION is an error.
func dataDirVersion(dir string) (version string, initialised bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, "PG_VERSION"))
	if err == nil {
		return strings.TrimSpace(string(b)), true, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", false, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", false, err
	}
	if len(entries) > 0 {
		return "", false, fmt.Errorf("%s is neither empty nor a Postgres data directory (no PG_VERSION): empty it or choose another folder", dir)
	}
	return "", false, nil
}

// serverCredential returns the credential postgres must run with: nil for
// a normal user, the "postgres" user for root, in which case dir is handed
// to that user and made reachable.
func serverCredential(dir string, logw io.Writer) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		// Debian's postgresql package creates the user; binaries from
		// elsewhere may come without it.
		args := []string{"--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"}
		fmt.Fprintf(logw, "devserver: no postgres user to run the server as (it refuses root): useradd %s\n", strings.Join(args, " "))
		if out, uerr := exec.Command("useradd", args...).CombinedOutput(); uerr != nil {
			return nil, fmt.Errorf("running as root: postgres refuses to run as root, there is no \"postgres\" user to run it as, and useradd failed (%v: %s); create one or run as a normal user", uerr, out)
		}
		if u, err = user.Lookup("postgres"); err != nil {
			return nil, err
		}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := chownTree(dir, uid, gid); err != nil {
		return nil, fmt.Errorf("handing %s to the postgres user: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	if err := makeTraversable(dir, uid, logw); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}
