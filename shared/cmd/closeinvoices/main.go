// Command closeinvoices computes and stores the final invoices of a
// month (package invoicing): by default the previous month (UTC), for
// every user whose account existed before its end.
//
//	go run ./shared/cmd/closeinvoices                  # the previous month
//	go run ./shared/cmd/closeinvoices -period 2026-11  # a given month
//
// It is the Cloud Run job that Cloud Scheduler starts at 01:15 UTC on the
// 1st of every month (terraform/invoices.tf). Running it again, or twice
// at once, stores nothing twice: each invoice is written once, keyed by
// user and month, and a stored invoice never changes. A month is closed
// only once it has been over for -grace (an hour by default), so calls in
// flight at midnight and their releases are in. It reads the same
// environment as the functions (DATABASE_URL or the Cloud SQL settings,
// API_RATE_LIMIT, API_RATE_WINDOW, BILLING_UNIT_PRICE, BILLING_CURRENCY)
// and prints one line: the month, the invoices it stored, and those
// another run had stored.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/joho/godotenv"

	"github.com/ratebill/platform/shared/config"
	"github.com/ratebill/platform/shared/invoicing"
	"github.com/ratebill/platform/shared/postgres"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "closeinvoices: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fl := flag.NewFlagSet("closeinvoices", flag.ContinueOnError)
	period := fl.String("period", "", "the month to close, YYYY-MM (default: the previous month, UTC)")
	grace := fl.Duration("grace", time.Hour, "close a month only this long after its end")
	timeout := fl.Duration("timeout", 30*time.Minute, "give up after this long (a rerun continues where it stopped)")
	if err := fl.Parse(args); err != nil {
		return err
	}
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
	p := invoicing.PeriodOf(time.Now()).Prev()
	if *period != "" {
		if p, err = invoicing.ParsePeriod("-period", *period); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	store := postgres.New(cfg)
	defer store.Close()
	svc := invoicing.New(cfg, store)
	svc.Grace = max(*grace, time.Nanosecond) // zero means the default in Service
	res, err := svc.Close(ctx, p)
	if err != nil {
		return fmt.Errorf("closing %s after %d invoices: %w", p, res.Closed, err)
	}
	fmt.Printf("closeinvoices: %s closed: %d invoices stored, %d stored by another run\n", res.Period, res.Closed, res.Already)
	return nil
}
