package cloud

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/ratebill/platform/shared/routes"
	"github.com/ratebill/platform/shared/routes/routers"
)

// TestRoutesFileMatchesTable fails when terraform/routes.auto.tf.json is
// not what routes.Table generates: run `go run ./shared/cmd/genrouters`.
func TestRoutesFileMatchesTable(t *testing.T) {
	want, err := routers.RoutesTerraformJSON()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(repoRoot(t), routers.RoutesFile)
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (generate it: go run ./shared/cmd/genrouters)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from shared/routes.Table; regenerate it: go run ./shared/cmd/genrouters\n--- committed\n%s\n--- generated\n%s", routers.RoutesFile, got, want)
	}
}

// TestRoutesTerraformJSON checks the generated document itself: every row
// of the table, each path once, to its function, and nothing else.
func TestRoutesTerraformJSON(t *testing.T) {
	b, err := routers.RoutesTerraformJSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Locals struct {
			Routes map[string]string `json:"routes"`
		} `json:"locals"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	got := doc.Locals.Routes
	distinct := map[string]bool{}
	for _, p := range routes.Paths("") {
		distinct[routes.Wildcard(p)] = true // a pattern as "LITERAL/*"
		if routes.IsPrefix(p) {
			distinct[p+"/*"] = true // every path below it
		}
	}
	if len(got) != len(distinct) {
		t.Errorf("generated %d paths, the table has %d (distinct paths, patterns as wildcards, and PATH/* of each Prefix route)", len(got), len(distinct))
	}
	for _, r := range routes.Table {
		if p := routes.Wildcard(r.Path); got[p] != r.Function {
			t.Errorf("path %s: generated function %q, table says %q", p, got[p], r.Function)
		}
		if r.Prefix && got[r.Path+"/*"] != r.Function {
			t.Errorf("path %s/*: generated function %q, table says %q", r.Path, got[r.Path+"/*"], r.Function)
		}
	}
	for _, fn := range routes.Functions {
		if len(routes.Paths(fn)) == 0 {
			t.Errorf("function %s serves no path; the load balancer would have a backend nothing reaches", fn)
		}
	}
}
