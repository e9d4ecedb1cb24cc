package routers

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/ratebill/platform/shared/routes"
)

// RoutesFile is the path, relative to the repository root, of the
// Terraform locals generated from routes.Table.
const RoutesFile = "terraform/routes.auto.tf.json"

// routesDoc is the Terraform JSON document of RoutesFile.
type routesDoc struct {
	Comment string       `json:"//"`
	Locals  routesLocals `json:"locals"`
}

type routesLocals struct {
	// Routes maps each exact public path to the function serving it; a
	// path with variables appears as its wildcard ("/admin/keys/*").
	Routes map[string]string `json:"routes"`
}

// RoutesTerraformJSON renders routes.Table as the Terraform JSON file that
// terraform/gateway.tf builds the URL map from: local.routes, a map from
// each exact path to its function. The output is deterministic (sorted
// keys) and ends with a newline.
func RoutesTerraformJSON() ([]byte, error) {
	doc := routesDoc{
		Comment: "Generated from shared/routes.Table by `go run ./shared/cmd/genrouters`. DO NOT EDIT: TestRoutesFileMatchesTable fails when this file and the table differ.",
		Locals:  routesLocals{Routes: map[string]string{}},
	}
	for _, r := range routes.Table {
		// A pattern becomes its wildcard (routes.Wildcard): a URL map
		// allows "*" only at the end of a path rule.
		path := routes.Wildcard(r.Path)
		if fn, ok := doc.Locals.Routes[path]; ok && fn != r.Function {
			return nil, fmt.Errorf("routing table: path %s is served by both %s and %s", path, fn, r.Function)
		}
		doc.Locals.Routes[path] = r.Function
		if r.Prefix {
			// A URL map path rule ending in "/*" matches every path below.
			doc.Locals.Routes[r.Path+"/*"] = r.Function
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encoding routes: %w", err)
	}
	return buf.Bytes(), nil
}
