// Command genrouters writes every router's generated configuration from
// the shared routing table (package routes/routers): nginx/routes.conf,
// nginx/upstreams.*.conf and terraform/routes.auto.tf.json. Run it from
// anywhere in the repository after changing routes.Table:
//
//	go run ./shared/cmd/genrouters
//
// Tests in verify/local and verify/cloud fail when a committed file
// differs from what it writes.
package main

import (
	"log"
	"os"
	"path/filepath"

	"github.com/ratebill/platform/shared/reporoot"
	"github.com/ratebill/platform/shared/routes/routers"
)

func main() {
	log.SetFlags(0)
	root, err := reporoot.Find()
	if err != nil {
		log.Fatal(err)
	}
	files, err := routers.Files()
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range routers.SortedPaths(files) {
		dst := filepath.Join(root, filepath.FromSlash(p))
		if err := os.WriteFile(dst, files[p], 0o644); err != nil {
			log.Fatal(err)
		}
		log.Printf("wrote %s", dst)
	}
}
