package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// Plan is a plan as GET /admin/plans shows it. Prices are decimal
// strings, printed as the API wrote them.
type Plan struct {
	Name          string      `json:"name"`
	Currency      string      `json:"currency"`
	FixedFee      string      `json:"fixed_fee"`
	IncludedUnits int64       `json:"included_units"`
	Price         PriceModel  `json:"price"`
	Limits        []PlanLimit `json:"limits"`
	FromConfig    bool        `json:"from_config"`
	UpdatedAt     time.Time   `json:"updated_at"`
}

// PriceModel prices a plan's billable units.
type PriceModel struct {
	Kind         string `json:"kind"`
	UnitPrice    string `json:"unit_price"`
	Tiers        []Tier `json:"tiers"`
	PackageSize  int64  `json:"package_size"`
	PackagePrice string `json:"package_price"`
}

// Tier is one step of a graduated or volume price; UpTo nil: no bound.
type Tier struct {
	UpTo      *int64 `json:"up_to"`
	UnitPrice string `json:"unit_price"`
}

// PlanLimit is one rate limit of a plan.
type PlanLimit struct {
	Name          string `json:"name"`
	Units         int64  `json:"units"`
	WindowSeconds int64  `json:"window_seconds"`
	Algorithm     string `json:"algorithm"`
}

// UserPlan is the plan a user is on, from when (nil: never assigned).
type UserPlan struct {
	UserID        int64      `json:"user_id"`
	Plan          string     `json:"plan"`
	EffectiveFrom *time.Time `json:"effective_from"`
}

// maxPlanFile bounds a plan file (a plan is a few hundred bytes).
const maxPlanFile = 64 << 10

func (a *app) plansCommand() *cobra.Command {
	c := group("plans", "List, show and define plans")
	c.AddCommand(a.plansList(), a.plansShow(), a.plansSet())
	return c
}

func (a *app) plansList() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List plans by name (GET /admin/plans)",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := a.client()
			if err != nil {
				return err
			}
			var page Page[Plan]
			b, err := api.get(cmd.Context(), "/admin/plans", nil, &page)
			if err != nil {
				return err
			}
			if a.json {
				a.emit(b)
				return nil
			}
			return writePlans(a.opts.Stdout, page.Items)
		},
	}
}

func (a *app) plansShow() *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show a plan: price, fee, allowance and limits (GET /admin/plans/{name})",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.planAnswer(cmd, "GET", args[0], nil)
		},
	}
}

func (a *app) plansSet() *cobra.Command {
	var file string
	c := &cobra.Command{
		Use:   "set NAME --file PLAN.json",
		Short: "Create a plan or replace its definition (PUT /admin/plans/{name})",
		Long: `Create a plan or replace its definition (PUT /admin/plans/{name}).

The file is one plan as JSON (docs/plans-and-invoices.md); its "name" may
be left out. A replaced definition bills the open period of every user on
the plan from then on, and their keys see the new limits on their next
call. The default plan follows the deployment's configuration.`,
		Example: `  ratebill plans set growth --file growth.json`,
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return usagef("--file is required (the plan as JSON)")
			}
			b, err := readPlanFile(file)
			if err != nil {
				return err
			}
			if !json.Valid(b) {
				return usagef("%s: not JSON", file)
			}
			return a.planAnswer(cmd, "PUT", args[0], json.RawMessage(b))
		},
	}
	c.Flags().StringVar(&file, "file", "", "the plan as JSON")
	return c
}

// planAnswer sends method to /admin/plans/NAME and prints the plan.
func (a *app) planAnswer(cmd *cobra.Command, method, name string, body any) error {
	if name == "" || strings.ContainsAny(name, "/?#") {
		return usagef("NAME must be a plan's name")
	}
	api, err := a.client()
	if err != nil {
		return err
	}
	var p Plan
	b, err := api.send(cmd.Context(), method, "/admin/plans/"+name, body, &p)
	if err != nil {
		return err
	}
	if a.json {
		a.emit(b)
		return nil
	}
	return writePlan(a.opts.Stdout, p)
}

func readPlanFile(path string) ([]byte, error) {
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
		return nil, usagef("%s: larger than %d bytes", path, maxPlanFile)
	}
	return b, nil
}

func (a *app) usersPlan() *cobra.Command {
	var effective string
	c := &cobra.Command{
		Use:   "plan USER_ID PLAN [--effective RFC3339]",
		Short: "Put a user on a plan (PUT /admin/users/{id}/plan)",
		Long: `Put a user on a plan (PUT /admin/users/{id}/plan), from --effective
(default now), truncated to the minute. Refused in a month whose invoice for
the user is closed. A limit override (users limit) still wins.`,
		Example: `  ratebill users plan 42 growth
  ratebill users plan 42 default --effective 2026-12-01T00:00:00Z`,
		Args: exactArgs("USER_ID", "PLAN"),
		RunE: func(cmd *cobra.Command, args []string) error {
			uid, err := idArg("USER_ID", args[0])
			if err != nil {
				return err
			}
			body := map[string]string{"plan": args[1]}
			if effective != "" {
				if _, err := time.Parse(time.RFC3339, effective); err != nil {
					return usagef("--effective must be an RFC 3339 time, e.g. 2026-12-01T00:00:00Z")
				}
				body["effective"] = effective
			}
			api, err := a.client()
			if err != nil {
				return err
			}
			var up UserPlan
			b, err := api.send(cmd.Context(), "PUT", fmt.Sprintf("/admin/users/%d/plan", uid), body, &up)
			if err != nil {
				return err
			}
			if a.json {
				a.emit(b)
				return nil
			}
			tw := tabwriter.NewWriter(a.opts.Stdout, 0, 4, 2, ' ', 0)
			row(tw, "user", id(up.UserID))
			row(tw, "plan", up.Plan)
			row(tw, "effective", when(up.EffectiveFrom))
			return tw.Flush()
		},
	}
	c.Flags().StringVar(&effective, "effective", "", "when the plan takes effect, RFC 3339 (default now)")
	return c
}

func priceText(m PriceModel) string {
	switch m.Kind {
	case "per_unit":
		return "per unit " + m.UnitPrice
	case "package":
		return fmt.Sprintf("package of %d at %s", m.PackageSize, m.PackagePrice)
	case "graduated", "volume":
		parts := make([]string, 0, len(m.Tiers))
		for _, t := range m.Tiers {
			bound := "rest"
			if t.UpTo != nil {
				bound = fmt.Sprintf("≤%d", *t.UpTo)
			}
			parts = append(parts, bound+" "+t.UnitPrice)
		}
		return m.Kind + " " + strings.Join(parts, ", ")
	}
	return orDash(m.Kind)
}

func limitsText(ls []PlanLimit) string {
	parts := make([]string, 0, len(ls))
	for _, l := range ls {
		parts = append(parts, fmt.Sprintf("%s %d/%ds %s", l.Name, l.Units, l.WindowSeconds, l.Algorithm))
	}
	return orDash(strings.Join(parts, "; "))
}

// writePlans is the table of plans list.
func writePlans(w io.Writer, plans []Plan) error {
	tw := table(w, "NAME", "CURRENCY", "FIXED FEE", "INCLUDED", "PRICE", "LIMITS", "UPDATED")
	for _, p := range plans {
		name := p.Name
		if p.FromConfig {
			name += " (config)"
		}
		row(tw, name, p.Currency, orDash(p.FixedFee), fmt.Sprint(p.IncludedUnits), priceText(p.Price), limitsText(p.Limits), when(&p.UpdatedAt))
	}
	return tw.Flush()
}

// writePlan is one plan as fields, then its limits as a table.
func writePlan(w io.Writer, p Plan) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row(tw, "name", p.Name)
	if p.FromConfig {
		row(tw, "defined by", "the configuration (API_RATE_LIMIT, API_RATE_WINDOW, BILLING_UNIT_PRICE)")
	}
	row(tw, "currency", p.Currency)
	row(tw, "fixed fee", orDash(p.FixedFee))
	row(tw, "included units", fmt.Sprint(p.IncludedUnits))
	row(tw, "price", priceText(p.Price))
	row(tw, "updated", when(&p.UpdatedAt))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	lt := table(w, "LIMIT", "UNITS", "WINDOW (S)", "ALGORITHM")
	for _, l := range p.Limits {
		row(lt, l.Name, fmt.Sprint(l.Units), fmt.Sprint(l.WindowSeconds), l.Algorithm)
	}
	return lt.Flush()
}
