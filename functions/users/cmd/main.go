// Command users runs the users function alone, as Cloud Run does.
package main

import (
	_ "github.com/ratebill/platform/functions/users"
	"github.com/ratebill/platform/shared/instance"
)

func main() { instance.Main("Users") }
