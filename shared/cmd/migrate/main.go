// Command migrate applies the embedded schema migrations and exits: the
// Cloud Run job, compose service and Kubernetes Job run it before the
// functions (which then run with INIT_DB=false). It reads the same
// environment as the functions. MIGRATE_GRANT_TO, a comma-separated list
// of Postgres roles (the functions' Cloud SQL IAM users), receives the
// table privileges the functions need.
package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/joho/godotenv"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/config"
	"github.com/ratebill/platform/shared/postgres"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "migrate: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	if err := godotenv.Load(); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf(".env: %w", err)
	}
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return err
	}
	if err := cfg.RequireDatabase(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pool, err := postgres.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	// The database may still be starting (compose, Kubernetes): retry.
	for attempt := 1; ; attempt++ {
		err = postgres.MigratePool(ctx, pool)
		if err == nil || shared.ErrorCode(err) != shared.EUnavailable || attempt == 30 {
			break
		}
		fmt.Fprintf(os.Stderr, "migrate: database not ready (attempt %d): %v\n", attempt, err)
		time.Sleep(2 * time.Second)
	}
	if err != nil {
		return err
	}
	if roles := os.Getenv("MIGRATE_GRANT_TO"); roles != "" {
		if err := postgres.Grant(ctx, pool, strings.Split(roles, ",")); err != nil {
			return err
		}
	}
	fmt.Println("migrate: schema is up to date")
	return nil
}
