// Command billing runs the billing function alone, as Cloud Run does.
package main

import (
	_ "github.com/ratebill/platform/functions/billing"
	"github.com/ratebill/platform/shared/instance"
)

func main() { instance.Main("Billing") }
