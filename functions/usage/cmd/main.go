// Command usage runs the usage function alone, as Cloud Run does.
package main

import (
	_ "github.com/ratebill/platform/functions/usage"
	"github.com/ratebill/platform/shared/instance"
)

func main() { instance.Main("Usage") }
