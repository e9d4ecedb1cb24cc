package cloud

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDeployedVersionsDocumented: Cloud SQL runs the PostgreSQL major of
// var.db_version, the tests run Debian 12's PostgreSQL 15; when they
// differ, docs/deploy-gcp.md must name both and why. And no provider lock
// file can be produced here (terraform providers lock needs the public
// registry): the docs must say how to make one.
func TestDeployedVersionsDocumented(t *testing.T) {
	root := repoRoot(t)
	vars, err := os.ReadFile(filepath.Join(root, "terraform", "variables.tf"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`default\s*=\s*"POSTGRES_(\d+)"`).FindSubmatch(vars)
	if m == nil {
		t.Fatal("terraform/variables.tf: no POSTGRES_<n> default for db_version")
	}
	docB, err := os.ReadFile(filepath.Join(root, "docs", "deploy-gcp.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(docB)
	const tested = "15" // Debian 12's only PostgreSQL
	if deployed := string(m[1]); deployed != tested {
		for _, want := range []string{"PostgreSQL " + deployed, "PostgreSQL " + tested, "Debian 12"} {
			if !strings.Contains(doc, want) {
				t.Errorf("Cloud SQL runs PostgreSQL %s, the tests %s: docs/deploy-gcp.md must say so (missing %q)", deployed, tested, want)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(root, "terraform", ".terraform.lock.hcl")); err != nil && !strings.Contains(doc, "terraform providers lock") {
		t.Error("no committed .terraform.lock.hcl: docs/deploy-gcp.md must say why and how to produce one (terraform providers lock)")
	}
}
