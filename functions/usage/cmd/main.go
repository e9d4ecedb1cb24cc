// Command usage runs the usage function alone, as Cloud Run runs its image: the
// dependencies and the handler built at start-up, its own http.Server with
// timeouts, and a drain on SIGTERM that flushes pending usage.
package main

import (
	"github.com/ratebill/platform/functions/usage"
	"github.com/ratebill/platform/shared/serve"
)

func main() { serve.Main(usage.Handler) }
