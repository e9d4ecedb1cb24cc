package local

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMissingToolIsLoud runs a test that needs a tool nobody has in a
// child process of this test binary: without CI it must be skipped with a
// DidNotRun line (which scripts/test.sh counts), with CI=true it must fail.
func TestMissingToolIsLoud(t *testing.T) {
	if os.Getenv("RATEBILL_MISSING_TOOL_CHILD") != "" {
		requireTool(t, "ratebill-no-such-tool")
		t.Fatal("requireTool returned for a tool that does not exist")
		return
	}
	run := func(ci string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMissingToolIsLoud$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "RATEBILL_MISSING_TOOL_CHILD=1", "CI="+ci)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("")
	if err != nil || !strings.Contains(out, "--- SKIP: TestMissingToolIsLoud") || !strings.Contains(out, DidNotRun+"ratebill-no-such-tool") {
		t.Errorf("without CI: want a skip with %q, got err %v:\n%s", DidNotRun, err, out)
	}
	out, err = run("true")
	if err == nil || !strings.Contains(out, "--- FAIL: TestMissingToolIsLoud") {
		t.Errorf("with CI=true: want a failure, got err %v:\n%s", err, out)
	}
}
