// Command health runs the health function alone, as Cloud Run does.
package main

import (
	_ "github.com/ratebill/platform/functions/health"
	"github.com/ratebill/platform/shared/instance"
)

func main() { instance.Main("Health") }
