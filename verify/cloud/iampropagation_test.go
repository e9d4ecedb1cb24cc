package cloud

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// resourceBlock finds resource TYPE NAME in a Terraform file.
func resourceBlock(t *testing.T, path, typ, name string) *hclsyntax.Block {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		if b.Type == "resource" && len(b.Labels) == 2 && b.Labels[0] == typ && b.Labels[1] == name {
			return b
		}
	}
	t.Fatalf("%s: no resource %s.%s", path, typ, name)
	return nil
}

// dependsOn lists the references of a block's depends_on.
func dependsOn(b *hclsyntax.Block) []string {
	attr, ok := b.Body.Attributes["depends_on"]
	if !ok {
		return nil
	}
	var out []string
	if tup, ok := attr.Expr.(*hclsyntax.TupleConsExpr); ok {
		for _, e := range tup.Exprs {
			if tr, diags := hcl.AbsTraversalForExpr(e); !diags.HasErrors() {
				parts := []string{tr.RootName()}
				for _, s := range tr[1:] {
					if a, ok := s.(hcl.TraverseAttr); ok {
						parts = append(parts, a.Name)
					}
				}
				out = append(out, strings.Join(parts, "."))
			}
		}
	}
	return out
}

// TestCloudRunWaitsForIAMPropagation: the Cloud Run service of every
// function and the migration job are created only after a wait that
// follows their account's grants (a first revision created while a
// secretAccessor grant is not yet effective fails with "permission denied
// on secret"). A depends_on on the grants alone orders the API calls but
// does not wait for propagation.
func TestCloudRunWaitsForIAMPropagation(t *testing.T) {
	tf := filepath.Join(repoRoot(t), "terraform")
	for _, tc := range []struct {
		file, typ, name, wait string
		grants                []string
	}{
		{"modules/function/main.tf", "google_cloud_run_v2_service", "fn", "iam_propagation",
			[]string{"google_secret_manager_secret_iam_member.fn", "google_project_iam_member.fn"}},
		{"migrate.tf", "google_cloud_run_v2_job", "migrate", "migrate_iam_propagation",
			[]string{"google_project_iam_member.migrate"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join(tf, tc.file)
			svc := resourceBlock(t, path, tc.typ, tc.name)
			if deps := dependsOn(svc); !slices.Contains(deps, "terraform_data."+tc.wait) {
				t.Errorf("%s.%s depends on %v; it must wait for terraform_data.%s", tc.typ, tc.name, deps, tc.wait)
			}
			wait := resourceBlock(t, path, "terraform_data", tc.wait)
			trig, ok := wait.Body.Attributes["triggers_replace"]
			if !ok {
				t.Fatalf("terraform_data.%s has no triggers_replace: it must follow the grants", tc.wait)
			}
			refs := map[string]bool{}
			for _, tr := range trig.Expr.Variables() {
				if len(tr) >= 2 {
					if a, ok := tr[1].(hcl.TraverseAttr); ok {
						refs[tr.RootName()+"."+a.Name] = true
					}
				}
			}
			for _, g := range tc.grants {
				if !refs[g] {
					t.Errorf("terraform_data.%s does not follow %s", tc.wait, g)
				}
			}
			sleeps := false
			for _, b := range wait.Body.Blocks {
				if b.Type == "provisioner" && len(b.Labels) == 1 && b.Labels[0] == "local-exec" {
					if c, ok := b.Body.Attributes["command"]; ok {
						src, _ := os.ReadFile(path)
						sleeps = strings.HasPrefix(strings.Trim(string(c.Expr.Range().SliceBytes(src)), `"`), "sleep ")
					}
				}
			}
			if !sleeps {
				t.Errorf("terraform_data.%s must sleep (local-exec) once the grants exist", tc.wait)
			}
		})
	}
}
