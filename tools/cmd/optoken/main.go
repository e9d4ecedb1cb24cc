// Command optoken prints a new operator token (rbo_…, 256 random bits and
// a checksum), for the bootstrap secret on Google Cloud
// (docs/deploy-gcp.md):
//
//	go run ./tools/cmd/optoken | gcloud secrets versions add ratebill-prod-operator-bootstrap --data-file=-
//
// It writes the token to stdout with no newline and nothing else.
package main

import (
	"fmt"
	"log"

	"github.com/ratebill/platform/shared/operator"
)

func main() {
	tok, err := operator.Token.Generate(nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(tok)
}
