package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shopspring/decimal"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/pricing"
)

// CreatePlan stores a new plan, validated first. Errors: EInvalid for a
// plan Validate refuses, EConflict when the name is taken.
func (s *Store) CreatePlan(ctx context.Context, p pricing.Plan) error {
	return s.writePlan(ctx, p, `
INSERT INTO plans (name, currency, fixed_fee, included_units, price, limits)
VALUES ($1, $2, $3, $4, $5, $6)`)
}

// UpdatePlan replaces a stored plan's definition. Open periods of users
// on it are billed by the new definition from then on; closed invoices
// keep the snapshot they were closed with. The default plan is defined
// by the configuration and cannot be updated here. Errors: EInvalid,
// ENotFound.
func (s *Store) UpdatePlan(ctx context.Context, p pricing.Plan) error {
	return s.writePlan(ctx, p, `
UPDATE plans SET currency = $2, fixed_fee = $3, included_units = $4, price = $5, limits = $6, updated_at = now()
WHERE name = $1 AND NOT from_config`)
}

func (s *Store) writePlan(ctx context.Context, p pricing.Plan, q string) error {
	if err := p.Validate(); err != nil {
		return &shared.Error{Code: shared.EInvalid, Message: err.Error()}
	}
	price, err := json.Marshal(p.Price)
	if err != nil {
		return fmt.Errorf("encoding price: %w", err)
	}
	limits, err := json.Marshal(p.Limits)
	if err != nil {
		return fmt.Errorf("encoding limits: %w", err)
	}
	pool, err := s.db(ctx)
	if err != nil {
		return err
	}
	tag, err := pool.Exec(ctx, q, p.Name, p.Currency, p.FixedFee, p.IncludedUnits, price, limits)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return shared.Errorf(shared.EConflict, "a plan named %q exists", p.Name)
	}
	if err != nil {
		return mapError("writing a plan", err)
	}
	if tag.RowsAffected() == 0 {
		return shared.Errorf(shared.ENotFound, "no plan named %q that can be changed (the default plan follows the configuration)", p.Name)
	}
	return nil
}

const planColumns = `name, from_config, coalesce(currency, ''), fixed_fee, included_units, coalesce(price, 'null'), coalesce(limits, 'null'), updated_at`

func scanPlan(row pgx.Row) (shared.StoredPlan, error) {
	var sp shared.StoredPlan
	var price, limits []byte
	var fee decimal.Decimal
	var included int64
	var currency string
	if err := row.Scan(&sp.Name, &sp.FromConfig, &currency, &fee, &included, &price, &limits, &sp.UpdatedAt); err != nil {
		return sp, err
	}
	sp.UpdatedAt = sp.UpdatedAt.UTC()
	if sp.FromConfig {
		return sp, nil
	}
	sp.Plan = pricing.Plan{Name: sp.Name, Currency: currency, FixedFee: fee, IncludedUnits: included}
	if err := json.Unmarshal(price, &sp.Plan.Price); err != nil {
		return sp, fmt.Errorf("decoding plan %s: %w", sp.Name, err)
	}
	if err := json.Unmarshal(limits, &sp.Plan.Limits); err != nil {
		return sp, fmt.Errorf("decoding plan %s: %w", sp.Name, err)
	}
	return sp, nil
}

// Plans returns every stored plan, by name.
func (s *Store) Plans(ctx context.Context) ([]shared.StoredPlan, error) {
	pool, err := s.db(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := pool.Query(ctx, `SELECT `+planColumns+` FROM plans ORDER BY name`)
	if err != nil {
		return nil, mapError("reading plans", err)
	}
	defer rows.Close()
	var out []shared.StoredPlan
	for rows.Next() {
		sp, err := scanPlan(rows)
		if err != nil {
			return nil, mapError("reading plans", err)
		}
		out = append(out, sp)
	}
	return out, mapError("reading plans", rows.Err())
}

const assignQuery = `
WITH u AS (SELECT id FROM users WHERE id = $1),
     p AS (SELECT name FROM plans WHERE name = $2),
     closed AS (SELECT 1 FROM invoices WHERE user_id = $1 AND status = 'closed'
                AND period >= to_char(date_trunc('minute', $3::timestamptz) AT TIME ZONE 'UTC', 'YYYY-MM') LIMIT 1),
     ins AS (
         INSERT INTO plan_assignments (user_id, effective_from, plan_name)
         SELECT u.id, date_trunc('minute', $3::timestamptz), p.name FROM u, p WHERE NOT EXISTS (SELECT 1 FROM closed)
         ON CONFLICT (user_id, effective_from) DO UPDATE SET plan_name = EXCLUDED.plan_name, created_at = now()
         RETURNING 1)
SELECT EXISTS (SELECT 1 FROM u), EXISTS (SELECT 1 FROM p), EXISTS (SELECT 1 FROM closed), EXISTS (SELECT 1 FROM ins)`

// AssignPlan puts a user on a plan from a.EffectiveFrom, truncated to
// the minute. It refuses (EConflict) a change that falls in a period
// whose invoice for the user is closed: closed invoices never change.
// Errors: ENotFound for an unknown user or plan.
func (s *Store) AssignPlan(ctx context.Context, a shared.PlanAssignment) error {
	pool, err := s.db(ctx)
	if err != nil {
		return err
	}
	return assignPlan(ctx, pool, a)
}

// rowQuerier is a pool or a transaction.
type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func assignPlan(ctx context.Context, db rowQuerier, a shared.PlanAssignment) error {
	var user, plan, closed, done bool
	if err := db.QueryRow(ctx, assignQuery, a.UserID, a.Plan, a.EffectiveFrom).Scan(&user, &plan, &closed, &done); err != nil {
		return mapError("assigning a plan", err)
	}
	switch {
	case !user:
		return shared.Errorf(shared.ENotFound, "no user %d", a.UserID)
	case !plan:
		return shared.Errorf(shared.ENotFound, "no plan named %q", a.Plan)
	case closed:
		return shared.Errorf(shared.EConflict, "user %d has a closed invoice for %s or later: closed invoices never change", a.UserID,
			a.EffectiveFrom.UTC().Format("2006-01"))
	case !done:
		return fmt.Errorf("assigning a plan: nothing written")
	}
	return nil
}

// Assignment is a stored plan assignment with its plan.
type Assignment struct {
	From time.Time
	Plan shared.StoredPlan
}

// Assignments returns the assignments that decide a user's plans in
// [start, end): the last one at or before start (if any), then every one
// inside, in time order, each with its plan.
func (s *Store) Assignments(ctx context.Context, userID int64, start, end time.Time) ([]Assignment, error) {
	const q = `
WITH a AS (
    (SELECT effective_from, plan_name FROM plan_assignments WHERE user_id = $1 AND effective_from <= $2
     ORDER BY effective_from DESC LIMIT 1)
    UNION ALL
    (SELECT effective_from, plan_name FROM plan_assignments WHERE user_id = $1 AND effective_from > $2 AND effective_from < $3)
)
SELECT a.effective_from, ` + planColumns + ` FROM a JOIN plans ON plans.name = a.plan_name ORDER BY a.effective_from`
	pool, err := s.db(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := pool.Query(ctx, q, userID, start, end)
	if err != nil {
		return nil, mapError("reading plan assignments", err)
	}
	defer rows.Close()
	var out []Assignment
	for rows.Next() {
		var a Assignment
		var from time.Time
		sp, err := scanPlan(rowPrefix{rows, &from})
		if err != nil {
			return nil, mapError("reading plan assignments", err)
		}
		a.From, a.Plan = from.UTC(), sp
		out = append(out, a)
	}
	return out, mapError("reading plan assignments", rows.Err())
}

// rowPrefix scans one leading column into first, the rest as the plan.
type rowPrefix struct {
	row   pgx.Row
	first any
}

func (r rowPrefix) Scan(dest ...any) error { return r.row.Scan(append([]any{r.first}, dest...)...) }

// UsageBetween returns the requests and units recorded in each span
// [bounds[i], bounds[i+1]), read from the minute rollups (bounds are
// whole minutes): one index range scan per span, never the events.
func (s *Store) UsageBetween(ctx context.Context, userID int64, bounds []time.Time) (requests, units []int64, err error) {
	if len(bounds) < 2 {
		return nil, nil, nil
	}
	const q = `
SELECT s.i, coalesce(sum(m.requests), 0)::bigint, coalesce(sum(m.units), 0)::bigint
FROM unnest($2::timestamptz[], $3::timestamptz[]) WITH ORDINALITY AS s(f, t, i)
LEFT JOIN usage_minutes m ON m.user_id = $1 AND m.minute >= s.f AND m.minute < s.t
GROUP BY s.i ORDER BY s.i`
	pool, err := s.db(ctx)
	if err != nil {
		return nil, nil, err
	}
	rows, err := pool.Query(ctx, q, userID, bounds[:len(bounds)-1], bounds[1:])
	if err != nil {
		return nil, nil, mapError("reading usage rollups", err)
	}
	defer rows.Close()
	requests, units = make([]int64, len(bounds)-1), make([]int64, len(bounds)-1)
	for rows.Next() {
		var i, r, u int64
		if err := rows.Scan(&i, &r, &u); err != nil {
			return nil, nil, mapError("reading usage rollups", err)
		}
		requests[i-1], units[i-1] = r, u
	}
	return requests, units, mapError("reading usage rollups", rows.Err())
}

// Customer returns a user's name and creation time. ENotFound for none.
func (s *Store) Customer(ctx context.Context, userID int64) (shared.Customer, error) {
	pool, err := s.db(ctx)
	if err != nil {
		return shared.Customer{}, err
	}
	var c shared.Customer
	err = pool.QueryRow(ctx, `SELECT id, username, email, created_at FROM users WHERE id = $1`, userID).
		Scan(&c.ID, &c.Username, &c.Email, &c.CreatedAt)
	c.CreatedAt = c.CreatedAt.UTC()
	return c, mapError("reading a user", err)
}

// UsersToClose returns up to limit users, by id above after, created
// before end and without a closed invoice for period.
func (s *Store) UsersToClose(ctx context.Context, period string, end time.Time, after int64, limit int) ([]int64, error) {
	pool, err := s.db(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := pool.Query(ctx, `
SELECT id FROM users u WHERE created_at < $2 AND id > $3
AND NOT EXISTS (SELECT 1 FROM invoices i WHERE i.user_id = u.id AND i.period = $1)
ORDER BY id LIMIT $4`, period, end, after, limit)
	if err != nil {
		return nil, mapError("listing users to invoice", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	return ids, mapError("listing users to invoice", err)
}

const invoiceColumns = `user_id, period, status, currency, plans, lines, requests, recorded_units, carried_units, subtotal, total, computed_at`

func scanInvoice(row pgx.Row) (shared.Invoice, error) {
	var inv shared.Invoice
	var plans, lines []byte
	err := row.Scan(&inv.UserID, &inv.Period, &inv.Status, &inv.Currency, &plans, &lines, &inv.Requests, &inv.RecordedUnits,
		&inv.CarriedUnits, &inv.Subtotal, &inv.Total, &inv.ComputedAt)
	if err != nil {
		return inv, err
	}
	inv.ComputedAt = inv.ComputedAt.UTC()
	if err := json.Unmarshal(plans, &inv.Segments); err != nil {
		return inv, fmt.Errorf("decoding invoice plans: %w", err)
	}
	if err := json.Unmarshal(lines, &inv.Lines); err != nil {
		return inv, fmt.Errorf("decoding invoice lines: %w", err)
	}
	return inv, nil
}

// Invoice returns the user's stored invoice for period; ENotFound when
// none is stored (the period is open).
func (s *Store) Invoice(ctx context.Context, userID int64, period string) (shared.Invoice, error) {
	pool, err := s.db(ctx)
	if err != nil {
		return shared.Invoice{}, err
	}
	inv, err := scanInvoice(pool.QueryRow(ctx, `SELECT `+invoiceColumns+` FROM invoices WHERE user_id = $1 AND period = $2`, userID, period))
	return inv, mapError("reading an invoice", err)
}

// ClosedInvoices returns the user's stored invoices of the periods in
// [from, to] (YYYY-MM), keyed by period.
func (s *Store) ClosedInvoices(ctx context.Context, userID int64, from, to string) (map[string]shared.Invoice, error) {
	pool, err := s.db(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := pool.Query(ctx, `SELECT `+invoiceColumns+` FROM invoices WHERE user_id = $1 AND period BETWEEN $2 AND $3`, userID, from, to)
	if err != nil {
		return nil, mapError("reading invoices", err)
	}
	defer rows.Close()
	out := map[string]shared.Invoice{}
	for rows.Next() {
		inv, err := scanInvoice(rows)
		if err != nil {
			return nil, mapError("reading invoices", err)
		}
		out[inv.Period] = inv
	}
	return out, mapError("reading invoices", rows.Err())
}

// StoreInvoice writes a closed invoice once: it reports false when the
// user's invoice for the period was stored already (by an earlier or a
// concurrent run), which it leaves unchanged.
func (s *Store) StoreInvoice(ctx context.Context, inv shared.Invoice) (bool, error) {
	plans, err := json.Marshal(inv.Segments)
	if err != nil {
		return false, fmt.Errorf("encoding invoice plans: %w", err)
	}
	lines, err := json.Marshal(inv.Lines)
	if err != nil {
		return false, fmt.Errorf("encoding invoice lines: %w", err)
	}
	pool, err := s.db(ctx)
	if err != nil {
		return false, err
	}
	tag, err := pool.Exec(ctx, `
INSERT INTO invoices (user_id, period, status, currency, plans, lines, requests, recorded_units, carried_units, subtotal, total)
VALUES ($1, $2, 'closed', $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (user_id, period) DO NOTHING`,
		inv.UserID, inv.Period, inv.Currency, plans, lines, inv.Requests, inv.RecordedUnits, inv.CarriedUnits, inv.Subtotal, inv.Total)
	if err != nil {
		return false, mapError("storing an invoice", err)
	}
	return tag.RowsAffected() == 1, nil
}

// PeriodInvoices returns up to limit stored invoices of period with
// their customers, by user id above after (the operator's export).
func (s *Store) PeriodInvoices(ctx context.Context, period string, after int64, limit int) ([]shared.Invoice, []shared.Customer, error) {
	pool, err := s.db(ctx)
	if err != nil {
		return nil, nil, err
	}
	rows, err := pool.Query(ctx, `
SELECT i.user_id, i.period, i.status, i.currency, i.plans, i.lines, i.requests, i.recorded_units, i.carried_units, i.subtotal, i.total, i.computed_at,
       u.username, u.email, u.created_at
FROM invoices i JOIN users u ON u.id = i.user_id
WHERE i.period = $1 AND i.user_id > $2 ORDER BY i.user_id LIMIT $3`, period, after, limit)
	if err != nil {
		return nil, nil, mapError("reading invoices", err)
	}
	defer rows.Close()
	var invs []shared.Invoice
	var custs []shared.Customer
	for rows.Next() {
		var c shared.Customer
		inv, err := scanInvoice(rowSuffix{rows, []any{&c.Username, &c.Email, &c.CreatedAt}})
		if err != nil {
			return nil, nil, mapError("reading invoices", err)
		}
		c.ID, c.CreatedAt = inv.UserID, c.CreatedAt.UTC()
		invs, custs = append(invs, inv), append(custs, c)
	}
	return invs, custs, mapError("reading invoices", rows.Err())
}

// rowSuffix scans trailing columns into rest.
type rowSuffix struct {
	row  pgx.Row
	rest []any
}

func (r rowSuffix) Scan(dest ...any) error { return r.row.Scan(append(dest, r.rest...)...) }
