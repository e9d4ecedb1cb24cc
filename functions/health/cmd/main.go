// Command health runs the health function alone, as Cloud Run runs its image: the
// dependencies and the handler built at start-up, its own http.Server with
// timeouts, and a drain on SIGTERM that flushes pending usage.
package main

import (
	"github.com/ratebill/platform/functions/health"
	"github.com/ratebill/platform/shared/serve"
)

func main() { serve.Main(health.Handler) }
