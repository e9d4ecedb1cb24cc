// Command genroutes writes terraform/routes.auto.tf.json, the load
// balancer's path table, from shared/routes.Table.
//
// Run it from verify/cloud after changing the routing table:
//
//	go run ./cmd/genroutes
//
// The -o flag names another output file; by default the file is found by
// walking up from the working directory to the repository root (the
// directory holding go.work).
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/ratebill/platform/shared/reporoot"
	"github.com/ratebill/platform/verify/cloud"
)

func main() {
	out := flag.String("o", "", "output file (default: <repository root>/"+cloud.RoutesFile+")")
	flag.Parse()

	if *out == "" {
		root, err := reporoot.Find()
		if err != nil {
			log.Fatal(err)
		}
		*out = filepath.Join(root, cloud.RoutesFile)
	}
	b, err := cloud.RoutesTerraformJSON()
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Println("wrote", *out)
}
