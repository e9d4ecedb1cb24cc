package devserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// postgresLibGlob is where Debian and Ubuntu install each PostgreSQL major
// version's server binaries; only the client tools are put on PATH.
var postgresLibGlob = "/usr/lib/postgresql/*/bin"

// Packages are the Debian package names EnsureBinaries installs.
var (
	PostgresPackage = "postgresql"
	RedisPackage    = "redis-server"
)

// EnsureBinaries makes sure the PostgreSQL server binaries (initdb,
// postgres) and redis-server can be found. When some are missing and the
// process is root on a machine with apt-get (Debian, Ubuntu), it installs
// them, printing each command on logw; otherwise it returns an error that
// names the exact command to run.
func EnsureBinaries(ctx context.Context, logw io.Writer) error {
	if logw == nil {
		logw = io.Discard
	}
	missing := missingPackages()
	if len(missing) == 0 {
		return nil
	}
	install := "apt-get install -y --no-install-recommends " + strings.Join(missing, " ")
	_, aptErr := exec.LookPath("apt-get")
	if os.Geteuid() != 0 || aptErr != nil {
		cmd := "sudo apt-get update && sudo " + install
		if aptErr != nil {
			cmd = "install " + strings.Join(missing, " ") + " with your package manager (on Debian or Ubuntu: " + cmd + ")"
		}
		return fmt.Errorf("missing server binaries (%s); %s", strings.Join(missing, ", "), cmd)
	}
	for _, args := range [][]string{{"update"}, append([]string{"install", "-y", "--no-install-recommends"}, missing...)} {
		fmt.Fprintf(logw, "devserver: apt-get %s\n", strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = logw, logw
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("apt-get %s: %w", args[0], err)
		}
	}
	if still := missingPackages(); len(still) > 0 {
		return fmt.Errorf("installed %s but still cannot find their binaries", strings.Join(still, ", "))
	}
	return nil
}

// missingPackages names the packages whose binaries cannot be found.
func missingPackages() []string {
	var missing []string
	if _, err := findPostgres(""); err != nil {
		missing = append(missing, PostgresPackage)
	}
	if _, err := findRedis(); err != nil {
		missing = append(missing, RedisPackage)
	}
	return missing
}

// findPostgres returns the folder holding initdb and postgres. With a
// version (the major version of an existing data folder) it prefers that
// version's Debian folder; then PATH; then the highest version under
// /usr/lib/postgresql.
func findPostgres(version string) (string, error) {
	has := func(dir string) bool {
		for _, b := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
				return false
			}
		}
		return true
	}
	if version != "" {
		if dir := strings.Replace(postgresLibGlob, "*", version, 1); has(dir) {
			return dir, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		// Debian puts symlinks on PATH; use the folder they point into so
		// initdb and postgres come from the same version.
		if real, err := filepath.EvalSymlinks(p); err == nil && has(filepath.Dir(real)) {
			return filepath.Dir(real), nil
		}
		if has(filepath.Dir(p)) {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob(postgresLibGlob)
	dirs = slices.DeleteFunc(dirs, func(d string) bool { return !has(d) })
	if len(dirs) == 0 {
		return "", errors.New("no PostgreSQL server binaries (initdb, postgres) on PATH or under /usr/lib/postgresql")
	}
	major := func(d string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(d)), 64)
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int {
		switch ma, mb := major(a), major(b); {
		case ma < mb:
			return -1
		case ma > mb:
			return 1
		}
		return 0
	})
	return dirs[len(dirs)-1], nil
}

var versionRE = regexp.MustCompile(`\(PostgreSQL\) (\d+)(?:\.(\d+))?`)

// binVersion returns the major version of the postgres binary in bin, as
// PG_VERSION spells it ("15", or "9.6" for old releases).
func binVersion(bin string) (string, error) {
	out, err := exec.Command(filepath.Join(bin, "postgres"), "--version").Output()
	if err != nil {
		return "", err
	}
	m := versionRE.FindStringSubmatch(string(out))
	if m == nil {
		return "", fmt.Errorf("unrecognised postgres --version output %q", out)
	}
	if n, _ := strconv.Atoi(m[1]); n < 10 && m[2] != "" {
		return m[1] + "." + m[2], nil
	}
	return m[1], nil
}

// findRedis returns the path of redis-server.
func findRedis() (string, error) {
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/bin/redis-server", "/usr/local/bin/redis-server", "/usr/sbin/redis-server"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("redis-server not found on PATH")
}
