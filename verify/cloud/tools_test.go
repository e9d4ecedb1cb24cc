package cloud

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ratebill/platform/shared/reporoot"
)

// repoRoot returns the repository root or fails the test.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := reporoot.Find()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// DidNotRun starts the message of a test skipped because a tool it needs
// is missing; scripts/test.sh counts these lines as "did not run".
const DidNotRun = "DID NOT RUN: "

// requireTool fails the test when something an offline check needs is
// missing and CI is set; without CI it skips with a DidNotRun message, so
// a developer without Terraform can still run the rest, and the summary
// says plainly what did not run.
func requireTool(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format+" (CI is set: run scripts/test.d/10-terraform.sh)", args...)
	}
	t.Skipf(DidNotRun+format+" (run scripts/test.d/10-terraform.sh)", args...)
}

// terraformCLI returns the terraform binary and the CLI configuration that
// scripts/test.d/10-terraform.sh wrote (its filesystem mirror holds the
// hashicorp/google provider), or fails/skips the test without them.
func terraformCLI(t *testing.T) (bin, rc string) {
	t.Helper()
	bin, err := exec.LookPath("terraform")
	if err != nil {
		requireTool(t, "terraform is not on PATH")
	}
	// Always the file the script wrote: an ambient TF_CLI_CONFIG_FILE would
	// not know the mirror.
	rc = filepath.Join(tfCache(t), "terraformrc")
	if _, err := os.Stat(rc); err != nil {
		requireTool(t, "Terraform CLI configuration %s is missing", rc)
	}
	return bin, rc
}

// tfCache mirrors the cache directory of scripts/test.d/10-terraform.sh.
func tfCache(t *testing.T) string {
	if d := os.Getenv("RATEBILL_TF_CACHE"); d != "" {
		return d
	}
	d, err := os.UserCacheDir() // $XDG_CACHE_HOME or $HOME/.cache
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(d, "ratebill", "terraform")
}
