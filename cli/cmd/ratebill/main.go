// Command ratebill is the platform operator's command line (package cli).
//
//	go install github.com/ratebill/platform/cli/cmd/ratebill@latest
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/ratebill/platform/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.Options{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
	stop()
	os.Exit(code)
}
