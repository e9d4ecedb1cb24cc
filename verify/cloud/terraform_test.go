package cloud

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// terraform runs the terraform CLI in dir with the test CLI configuration
// and returns its combined output, failing the test on a non-zero exit.
func terraform(t *testing.T, dir, rc string, args ...string) string {
	t.Helper()
	out, err := terraformOutput(t, dir, rc, args...)
	if err != nil {
		t.Fatalf("terraform %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func terraformOutput(t *testing.T, dir, rc string, args ...string) (string, error) {
	t.Helper()
	bin, _ := terraformCLI(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"TF_CLI_CONFIG_FILE="+rc,
		"TF_IN_AUTOMATION=1",
		"CHECKPOINT_DISABLE=1",
		"TF_INPUT=0",
	)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("terraform %s: %s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	return string(out), err
}

// copyTerraform copies terraform/ into a temporary directory, without local
// state or lock files, so init writes nothing into the repository (no
// .terraform.lock.hcl with the hashes of a local provider build).
func copyTerraform(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".terraform" {
			return filepath.SkipDir
		}
		if d.Name() == ".terraform.lock.hcl" || strings.HasSuffix(d.Name(), ".tfstate") {
			return nil
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestTerraformFmt runs terraform fmt -check -recursive on terraform/.
func TestTerraformFmt(t *testing.T) {
	_, rc := terraformCLI(t)
	dir := filepath.Join(repoRoot(t), "terraform")
	out, err := terraformOutput(t, dir, rc, "fmt", "-check", "-recursive", "-diff", "-no-color")
	if err != nil {
		t.Fatalf("terraform fmt -check -recursive: %v; run terraform fmt -recursive terraform/\n%s", err, out)
	}
}

// TestTerraform initialises terraform/ with the real hashicorp/google
// provider (from the local filesystem mirror), validates it, runs the
// plan-only terraform tests of tests/ with a mocked provider (routing,
// connection budget, IAM), and plans each committed environment's tfvars.
func TestTerraform(t *testing.T) {
	_, rc := terraformCLI(t)
	dir := copyTerraform(t, filepath.Join(repoRoot(t), "terraform"))

	out := terraform(t, dir, rc, "init", "-backend=false", "-input=false", "-no-color")
	t.Log(lastLines(out, 3))

	t.Run("provider", func(t *testing.T) {
		out := terraform(t, dir, rc, "version", "-json")
		var v struct {
			ProviderSelections map[string]string `json:"provider_selections"`
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("terraform version -json: %v\n%s", err, out)
		}
		got := v.ProviderSelections["registry.terraform.io/hashicorp/google"]
		if !strings.HasPrefix(got, "8.") {
			t.Errorf("hashicorp/google %q selected, want the 8.x line of versions.tf", got)
		}
		for p := range v.ProviderSelections {
			if p != "registry.terraform.io/hashicorp/google" {
				t.Errorf("provider %s is needed; only hashicorp/google can be had offline", p)
			}
		}
	})

	t.Run("validate", func(t *testing.T) {
		out, _ := terraformOutput(t, dir, rc, "validate", "-json", "-no-color")
		var v struct {
			Valid       bool `json:"valid"`
			Diagnostics []struct {
				Severity string `json:"severity"`
				Summary  string `json:"summary"`
				Detail   string `json:"detail"`
				Range    *struct {
					Filename string `json:"filename"`
					Start    struct {
						Line int `json:"line"`
					} `json:"start"`
				} `json:"range"`
			} `json:"diagnostics"`
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("terraform validate -json: %v\n%s", err, out)
		}
		// Warnings fail too: they are deprecations that break with the next
		// major provider version.
		for _, d := range v.Diagnostics {
			where := ""
			if d.Range != nil {
				where = d.Range.Filename + ":" + strconv.Itoa(d.Range.Start.Line) + ": "
			}
			t.Errorf("%s%s: %s: %s", where, d.Severity, d.Summary, d.Detail)
		}
		if !v.Valid {
			t.Error("terraform validate: configuration is not valid")
		}
	})

	t.Run("test", func(t *testing.T) {
		out := terraform(t, dir, rc, "test", "-no-color")
		checkTestSummary(t, out, 11)
	})

	for _, env := range []string{"dev", "prod"} {
		t.Run("environment/"+env, func(t *testing.T) {
			out := terraform(t, dir, rc, "test", "-no-color",
				"-test-directory=tests/environments", "-var-file=environments/"+env+".tfvars")
			checkTestSummary(t, out, 1)
		})
	}
}

// checkTestSummary fails unless terraform test's closing line reports at
// least min passed runs and no failures.
func checkTestSummary(t *testing.T, out string, min int) {
	t.Helper()
	var passed, failed int
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "Success!") || strings.HasPrefix(line, "Failure!") {
			// "Success! 9 passed, 0 failed." / "Failure! 8 passed, 1 failed."
			f := strings.Fields(strings.NewReplacer(",", " ", ".", " ").Replace(line))
			for i := 1; i+1 < len(f); i++ {
				n, err := strconv.Atoi(f[i])
				if err != nil {
					continue
				}
				switch f[i+1] {
				case "passed":
					passed = n
				case "failed":
					failed = n
				}
			}
		}
	}
	if failed != 0 || passed < min {
		t.Errorf("terraform test: %d passed, %d failed; want at least %d passed and none failed\n%s", passed, failed, min, out)
		return
	}
	// The run names and results, one line each.
	var runs []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "run \"") {
			runs = append(runs, strings.TrimSpace(line))
		}
	}
	t.Logf("%d passed: %s", passed, strings.Join(runs, "; "))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
