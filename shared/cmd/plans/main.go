// Command plans manages plans and puts customers on them directly in
// the database, for scripts and deployments without an operator token
// (operators use PUT /admin/plans/{name} and PUT /admin/users/{id}/plan,
// or ratebill plans / users plan, which are audited and reach cached
// keys at once; this command writes no audit row and publishes nothing,
// so cached keys see its changes within AUTH_CACHE_TTL):
//
//	go run ./shared/cmd/plans list
//	go run ./shared/cmd/plans create -file growth.json
//	go run ./shared/cmd/plans update -file growth.json
//	go run ./shared/cmd/plans assign -user 42 -plan growth [-from 2026-11-16T00:00:00Z]
//
// A plan file is one plan as JSON (docs/plans-and-invoices.md), validated
// before it is stored: unknown fields, bad tiers, limits or prices are
// refused with the field named. The plan "default" follows the
// deployment's API_RATE_LIMIT, API_RATE_WINDOW and BILLING_UNIT_PRICE and
// cannot be changed here; assign it to put a customer back on it.
// assign takes effect at -from (default now), truncated to the minute,
// and is refused in a month whose invoice is closed. It reads the same
// environment as the functions (DATABASE_URL or the Cloud SQL settings).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/joho/godotenv"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/config"
	"github.com/ratebill/platform/shared/postgres"
	"github.com/ratebill/platform/shared/pricing"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "plans: %v\n", err)
		os.Exit(1)
	}
}

const usage = "usage: plans list | create -file PLAN.json | update -file PLAN.json | assign -user ID -plan NAME [-from RFC3339]"

// maxPlanFile bounds a plan file (a plan is a few hundred bytes).
const maxPlanFile = 64 << 10

func run(args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	cmd, args := args[0], args[1:]
	fl := flag.NewFlagSet("plans "+cmd, flag.ContinueOnError)
	file := fl.String("file", "", "the plan as JSON")
	user := fl.Int64("user", 0, "the user's id")
	plan := fl.String("plan", "", "the plan's name")
	from := fl.String("from", "", "when the plan takes effect, RFC 3339 (default now)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	var p pricing.Plan
	switch cmd {
	case "list":
	case "create", "update":
		b, err := readPlan(*file)
		if err != nil {
			return err
		}
		if p, err = pricing.ParsePlan(b); err != nil {
			return fmt.Errorf("%s: %w", *file, err)
		}
	case "assign":
		if *user < 1 || *plan == "" {
			return errors.New("assign needs -user and -plan")
		}
	default:
		return errors.New(usage)
	}
	at := time.Now()
	if *from != "" {
		t, err := time.Parse(time.RFC3339, *from)
		if err != nil {
			return fmt.Errorf("-from: %w", err)
		}
		at = t
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
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store := postgres.New(cfg)
	defer store.Close()
	switch cmd {
	case "list":
		plans, err := store.Plans(ctx)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(out)
		for _, sp := range plans {
			if sp.FromConfig {
				sp.Plan = pricing.DefaultPlan(cfg.RateLimit, cfg.RateWindow, cfg.UnitPrice, cfg.Currency)
			}
			if err := enc.Encode(sp.Plan); err != nil {
				return err
			}
		}
		return nil
	case "create", "update":
		// One currency per deployment: an invoice adds up the plans of a
		// month, and the default plan is in BILLING_CURRENCY.
		if p.Currency != cfg.Currency {
			return fmt.Errorf("%s: currency %s, but this deployment bills in %s (BILLING_CURRENCY)", *file, p.Currency, cfg.Currency)
		}
	}
	switch cmd {
	case "create":
		err = store.CreatePlan(ctx, p)
	case "update":
		err = store.UpdatePlan(ctx, p)
	case "assign":
		err = store.AssignPlan(ctx, shared.PlanAssignment{UserID: *user, Plan: *plan, EffectiveFrom: at})
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "plans: %s done\n", cmd)
	return nil
}

func readPlan(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("-file is required")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPlanFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxPlanFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxPlanFile)
	}
	return b, nil
}
