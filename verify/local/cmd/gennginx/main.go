// Command gennginx writes the nginx gateway's generated files
// (nginx/routes.conf and nginx/upstreams.*.conf) from the shared routing
// table. Run it from the repository root:
//
//	go run ./verify/local/cmd/gennginx
//
// TestGeneratedNginxFilesAreCurrent fails when a committed file differs.
package main

import (
	"flag"
	"log"
	"os"
	"path/filepath"

	"github.com/ratebill/platform/verify/local/gateway"
)

func main() {
	root := flag.String("root", ".", "repository root")
	flag.Parse()
	files, err := gateway.Files()
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range gateway.SortedPaths(files) {
		dst := filepath.Join(*root, filepath.FromSlash(p))
		if err := os.WriteFile(dst, files[p], 0o644); err != nil {
			log.Fatal(err)
		}
		log.Printf("wrote %s", dst)
	}
}
