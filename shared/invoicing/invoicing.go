// Package invoicing turns plans, plan assignments and the usage rollups
// into monthly invoices: open ones computed on every read, closed ones
// computed once by the closing job, stored and final.
//
// Periods are calendar months in UTC ("2026-11"). A period's usage is
// read from the per-minute rollups (usage_minutes), one index range scan
// per plan segment, never by scanning events: the cost of an invoice
// grows with the minutes in which the user made calls, not with calls.
//
// # Plan changes in the middle of a period
//
// A user's period is split at every plan change (assignments take effect
// at whole minutes, so the rollups split exactly). Each segment is billed
// by the plan in effect during it, on its own (package pricing, Compute):
// the fixed fee and the included units prorated by the segment's share
// of the period's seconds, and the price model applied to the units
// recorded during the segment. A customer who upgrades mid-month pays
// half of each fee and gets half of each allowance; usage is priced by
// the plan it was made under. Tiers restart with a new plan.
//
// # Late events
//
// Events are stamped with the database's clock when they are written, so
// a unit lands in a closed period only when it was written across the
// period's end and the job ran first, or when a rollup is corrected
// later. Such units never change the closed invoice: the next period's
// invoice carries them (CarriedUnits: the previous period's rollups now,
// minus the units its closed invoice billed), priced by the plan in
// effect at the start of that next period. The job closes a period only
// after a grace time past its end (an hour by default) so that in-flight
// batches and releases (15 minutes) have settled.
package invoicing

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/config"
	"github.com/ratebill/platform/shared/postgres"
	"github.com/ratebill/platform/shared/pricing"
)

// Period is a calendar month in UTC.
type Period struct {
	Year  int
	Month time.Month
}

var periodRE = regexp.MustCompile(`^([0-9]{4})-([0-9]{2})$`)

// ParsePeriod parses "YYYY-MM" (a month 01 to 12 of a year from 2000),
// reporting a 422 that names field.
func ParsePeriod(field, s string) (Period, error) {
	invalid := &shared.Error{Code: shared.EInvalid, Message: field + " must be a month as YYYY-MM, e.g. 2026-11",
		Fields: []shared.FieldError{{Field: field, Detail: "must be a month as YYYY-MM (2000-01 or later)"}}}
	m := periodRE.FindStringSubmatch(s)
	if m == nil {
		return Period{}, invalid
	}
	y, _ := strconv.Atoi(m[1])
	mo, _ := strconv.Atoi(m[2])
	if y < 2000 || mo < 1 || mo > 12 {
		return Period{}, invalid
	}
	return Period{Year: y, Month: time.Month(mo)}, nil
}

// PeriodOf returns the period that contains t.
func PeriodOf(t time.Time) Period {
	t = t.UTC()
	return Period{Year: t.Year(), Month: t.Month()}
}

func (p Period) String() string { return fmt.Sprintf("%04d-%02d", p.Year, int(p.Month)) }

// Start is the period's first instant.
func (p Period) Start() time.Time { return time.Date(p.Year, p.Month, 1, 0, 0, 0, 0, time.UTC) }

// End is the first instant after the period.
func (p Period) End() time.Time { return p.Start().AddDate(0, 1, 0) }

// Prev is the period before p.
func (p Period) Prev() Period { return PeriodOf(p.Start().AddDate(0, -1, 0)) }

// Before reports whether p is earlier than q.
func (p Period) Before(q Period) bool { return p.Start().Before(q.Start()) }

// Service computes, closes and reads invoices.
type Service struct {
	Store *postgres.Store
	// Default is the plan of users without an assignment and the
	// definition of the from_config plan row (pricing.DefaultPlan of the
	// configuration).
	Default pricing.Plan
	// Now is the clock deciding which periods are over; time.Now when nil.
	Now func() time.Time
	// Grace is how long after a period's end the job waits before closing
	// it; an hour when zero.
	Grace time.Duration
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Service) grace() time.Duration {
	if s.Grace > 0 {
		return s.Grace
	}
	return time.Hour
}

// Invoice returns the user's invoice for period: the stored one when the
// period is closed, else one computed now from the rollups (status
// open). A period after the current one, or before the user's account
// existed, is a 404 (not a 422: the month is well-formed, its invoice
// does not exist).
func (s *Service) Invoice(ctx context.Context, userID int64, p Period) (shared.Invoice, error) {
	if PeriodOf(s.now()).Before(p) {
		return shared.Invoice{}, shared.Errorf(shared.ENotFound, "no invoice for %s: the month has not begun", p)
	}
	inv, err := s.Store.Invoice(ctx, userID, p.String())
	if err == nil || shared.ErrorCode(err) != shared.ENotFound {
		return inv, err
	}
	c, err := s.Store.Customer(ctx, userID)
	if err != nil {
		return shared.Invoice{}, err
	}
	if p.Before(PeriodOf(c.CreatedAt)) {
		return shared.Invoice{}, shared.Errorf(shared.ENotFound, "no invoice for %s: the account was created in %s", p, PeriodOf(c.CreatedAt))
	}
	return s.compute(ctx, userID, p)
}

// compute bills the period from the rollups as they are now.
func (s *Service) compute(ctx context.Context, userID int64, p Period) (shared.Invoice, error) {
	start, end := p.Start(), p.End()
	as, err := s.Store.Assignments(ctx, userID, start, end)
	if err != nil {
		return shared.Invoice{}, err
	}
	type seg struct {
		from time.Time
		plan pricing.Plan
	}
	segs := []seg{{from: start, plan: s.Default}}
	for _, a := range as {
		plan := a.Plan.Plan
		if a.Plan.FromConfig {
			plan = s.Default
		}
		if !a.From.After(start) {
			segs[0].plan = plan
			continue
		}
		segs = append(segs, seg{from: a.From, plan: plan})
	}
	bounds := make([]time.Time, 0, len(segs)+1)
	for _, sg := range segs {
		bounds = append(bounds, sg.from)
	}
	bounds = append(bounds, end)
	requests, units, err := s.Store.UsageBetween(ctx, userID, bounds)
	if err != nil {
		return shared.Invoice{}, err
	}
	carried, err := s.carried(ctx, userID, p)
	if err != nil {
		return shared.Invoice{}, err
	}

	inv := shared.Invoice{UserID: userID, Period: p.String(), Status: shared.InvoiceOpen, CarriedUnits: carried, ComputedAt: s.now()}
	den := int64(end.Sub(start) / time.Second)
	priced := make([]pricing.Segment, len(segs))
	for i, sg := range segs {
		u := units[i]
		if i == 0 {
			u += carried
		}
		priced[i] = pricing.Segment{Plan: sg.plan, Units: u, Num: int64(bounds[i+1].Sub(bounds[i]) / time.Second), Den: den}
		inv.Segments = append(inv.Segments, shared.PlanSegment{Plan: sg.plan, From: bounds[i], To: bounds[i+1], Requests: requests[i], Units: units[i]})
		inv.Requests += requests[i]
		inv.RecordedUnits += units[i]
	}
	for _, sg := range priced[1:] {
		if sg.Plan.Currency != priced[0].Plan.Currency {
			return shared.Invoice{}, fmt.Errorf("billing user %d for %s: plans in %s and %s", userID, p, priced[0].Plan.Currency, sg.Plan.Currency)
		}
	}
	bill := pricing.Compute(priced)
	inv.Currency, inv.Lines, inv.Subtotal, inv.Total = bill.Currency, bill.Lines, bill.Subtotal, bill.Total
	return inv, nil
}

// carried returns the units recorded for the period before p after that
// period's invoice closed (0 when it is not closed).
func (s *Service) carried(ctx context.Context, userID int64, p Period) (int64, error) {
	prev := p.Prev()
	closed, err := s.Store.Invoice(ctx, userID, prev.String())
	if shared.ErrorCode(err) == shared.ENotFound {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	_, units, err := s.Store.UsageBetween(ctx, userID, []time.Time{prev.Start(), prev.End()})
	if err != nil {
		return 0, err
	}
	return max(0, units[0]-closed.RecordedUnits), nil
}

// CloseResult says what a closing run did.
type CloseResult struct {
	Period  string
	Closed  int // invoices this run stored
	Already int // invoices another run stored first (concurrent runs)
}

// Close computes and stores the final invoice of period for every user
// whose account existed before its end and who has none yet. It is
// idempotent and safe to run concurrently: the invoices' primary key
// lets exactly one run store each invoice. It refuses a period that is
// not over by the grace time (EInvalid).
func (s *Service) Close(ctx context.Context, p Period) (CloseResult, error) {
	res := CloseResult{Period: p.String()}
	if until := p.End().Add(s.grace()); s.now().Before(until) {
		return res, shared.Errorf(shared.EInvalid, "period %s can be closed from %s (its end plus %v)", p, until.Format(time.RFC3339), s.grace())
	}
	var after int64
	for {
		ids, err := s.Store.UsersToClose(ctx, p.String(), p.End(), after, 500)
		if err != nil {
			return res, err
		}
		if len(ids) == 0 {
			return res, nil
		}
		for _, id := range ids {
			inv, err := s.compute(ctx, id, p)
			if err != nil {
				return res, fmt.Errorf("closing user %d's invoice for %s: %w", id, p, err)
			}
			stored, err := s.Store.StoreInvoice(ctx, inv)
			if err != nil {
				return res, err
			}
			if stored {
				res.Closed++
			} else {
				res.Already++
			}
		}
		after = ids[len(ids)-1]
	}
}

// Summary is one period of a user's invoice list.
type Summary struct {
	Period   string
	Status   string
	Currency string
	Units    int64
	Total    string
}

// List returns the user's periods, newest first, from the current one
// back to the month the account was created: at most limit of them,
// starting at before (exclusive) when it is non-zero; next is the
// period to continue from, or "" at the end.
func (s *Service) List(ctx context.Context, userID int64, before *Period, limit int) (items []Summary, next string, err error) {
	c, err := s.Store.Customer(ctx, userID)
	if err != nil {
		return nil, "", err
	}
	first, cur := PeriodOf(c.CreatedAt), PeriodOf(s.now())
	if before != nil && !cur.Before(*before) {
		cur = before.Prev() // a cursor after the current period lists from it
	}
	last := cur
	for i := 1; i < limit && first.Before(last); i++ {
		last = last.Prev()
	}
	if cur.Before(first) {
		return []Summary{}, "", nil
	}
	closed, err := s.Store.ClosedInvoices(ctx, userID, last.String(), cur.String())
	if err != nil {
		return nil, "", err
	}
	items = []Summary{}
	for p := cur; !p.Before(last); p = p.Prev() {
		inv, ok := closed[p.String()]
		if !ok {
			if inv, err = s.compute(ctx, userID, p); err != nil {
				return nil, "", err
			}
		}
		items = append(items, Summary{Period: p.String(), Status: inv.Status, Currency: inv.Currency, Units: inv.Units(),
			Total: pricing.FormatAmount(inv.Total)})
	}
	if first.Before(last) {
		next = last.String()
	}
	return items, next, nil
}

// New returns the Service of a deployment: the default plan from its
// API_RATE_LIMIT, API_RATE_WINDOW, BILLING_UNIT_PRICE and
// BILLING_CURRENCY.
func New(cfg config.Config, store *postgres.Store) *Service {
	return &Service{Store: store, Default: pricing.DefaultPlan(cfg.RateLimit, cfg.RateWindow, cfg.UnitPrice, cfg.Currency)}
}
