// Command exportinvoices writes a month's closed invoices, for every
// customer, to standard output: CSV (one row per line item, for an
// accounting system or a Stripe import) or JSON.
//
//	go run ./shared/cmd/exportinvoices -period 2026-11 -format csv > 2026-11.csv
//	go run ./shared/cmd/exportinvoices -period 2026-11 -format json
//
// It reads the same environment as the functions (DATABASE_URL or the
// Cloud SQL settings). The operator API's GET /admin/invoices (billing
// function) serves the same export (package invoicing, Service.Export);
// this command streams, so it suits a month too large for one response.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/joho/godotenv"

	"github.com/ratebill/platform/shared/config"
	"github.com/ratebill/platform/shared/invoicing"
	"github.com/ratebill/platform/shared/postgres"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "exportinvoices: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fl := flag.NewFlagSet("exportinvoices", flag.ContinueOnError)
	period := fl.String("period", "", "the month, YYYY-MM (required)")
	format := fl.String("format", invoicing.CSV, "csv or json")
	if err := fl.Parse(args); err != nil {
		return err
	}
	p, err := invoicing.ParsePeriod("-period", *period)
	if err != nil {
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
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	store := postgres.New(cfg)
	defer store.Close()
	w := bufio.NewWriter(out)
	n, err := invoicing.New(cfg, store).Export(ctx, p, *format, w)
	if err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "exportinvoices: %s: %d invoices\n", p, n)
	return nil
}
