package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/pricing"
)

// UserVersion is a user's users.version after a change, to publish.
type UserVersion struct {
	UserID  int64
	Version int64
}

// Plan returns the stored plan name; ENotFound when there is none.
func (s *Store) Plan(ctx context.Context, name string) (shared.StoredPlan, error) {
	pool, err := s.db(ctx)
	if err != nil {
		return shared.StoredPlan{}, err
	}
	sp, err := scanPlan(pool.QueryRow(ctx, `SELECT `+planColumns+` FROM plans WHERE name = $1`, name))
	return sp, mapError("reading a plan", err)
}

// PutPlan creates plan p or replaces its definition (the operator's PUT
// /admin/plans/{name}), audited (plan.create or plan.update, before and
// after) in the same transaction. Like UpdatePlan, a replaced definition
// bills the open period of every user on it from then on; closed
// invoices keep their snapshot.
//
// An update raises, in the same transaction and in one statement, the
// version of every user whose current assignment is the plan, and
// returns those versions to publish: cached keys then see the new limits
// on their next call. Its cost is one pass over plan_assignments (the
// users ever assigned the plan, then each one's latest assignment by the
// primary key) and one row update per user on the plan; plans change
// rarely, and the rows are small.
//
// Errors: EInvalid for a plan Validate refuses, EConflict for the
// default plan (it follows the configuration).
func (s *Store) PutPlan(ctx context.Context, actor Actor, p pricing.Plan) (created bool, versions []UserVersion, err error) {
	if err := p.Validate(); err != nil {
		return false, nil, &shared.Error{Code: shared.EInvalid, Message: err.Error()}
	}
	price, err := json.Marshal(p.Price)
	if err != nil {
		return false, nil, fmt.Errorf("encoding price: %w", err)
	}
	limits, err := json.Marshal(p.Limits)
	if err != nil {
		return false, nil, fmt.Errorf("encoding limits: %w", err)
	}
	err = s.adminTx(ctx, "writing a plan", func(tx pgx.Tx) error {
		versions = nil
		// FOR NO KEY UPDATE: it does not wait for, nor block, the key-share
		// locks that assignments referencing the plan take.
		before, err := scanPlan(tx.QueryRow(ctx, `SELECT `+planColumns+` FROM plans WHERE name = $1 FOR NO KEY UPDATE`, p.Name))
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			created = true
			if _, err := tx.Exec(ctx, `
INSERT INTO plans (name, currency, fixed_fee, included_units, price, limits) VALUES ($1, $2, $3, $4, $5, $6)`,
				p.Name, p.Currency, p.FixedFee, p.IncludedUnits, price, limits); err != nil {
				return err
			}
			return insertAudit(ctx, tx, actor.entry("plan.create", 0, "plan:"+p.Name, nil, p))
		case err != nil:
			return err
		case before.FromConfig:
			return shared.Errorf(shared.EConflict, "the plan %q follows the deployment's configuration and cannot be changed here", p.Name)
		}
		if _, err := tx.Exec(ctx, `
UPDATE plans SET currency = $2, fixed_fee = $3, included_units = $4, price = $5, limits = $6, updated_at = now()
WHERE name = $1`, p.Name, p.Currency, p.FixedFee, p.IncludedUnits, price, limits); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
UPDATE users u SET version = u.version + 1
FROM (SELECT DISTINCT ON (a.user_id) a.user_id, a.plan_name FROM plan_assignments a
      WHERE a.effective_from <= now()
        AND a.user_id IN (SELECT user_id FROM plan_assignments WHERE plan_name = $1)
      ORDER BY a.user_id, a.effective_from DESC) cur
WHERE u.id = cur.user_id AND cur.plan_name = $1
RETURNING u.id, u.version`, p.Name)
		if err != nil {
			return err
		}
		for rows.Next() {
			var v UserVersion
			if err := rows.Scan(&v.UserID, &v.Version); err != nil {
				rows.Close()
				return err
			}
			versions = append(versions, v)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return insertAudit(ctx, tx, actor.entry("plan.update", 0, "plan:"+p.Name, before.Plan, p))
	})
	if err != nil {
		return false, nil, err
	}
	return created, versions, nil
}

// UserPlan returns the plan user id is on now and since when (nil: never
// assigned, on the default plan). ENotFound for an unknown user.
func (s *Store) UserPlan(ctx context.Context, id int64) (string, *time.Time, error) {
	pool, err := s.db(ctx)
	if err != nil {
		return "", nil, err
	}
	var name string
	var from *time.Time
	err = pool.QueryRow(ctx, `
SELECT coalesce(a.plan_name, 'default'), a.effective_from FROM users u
LEFT JOIN LATERAL (SELECT plan_name, effective_from FROM plan_assignments
                   WHERE user_id = u.id AND effective_from <= now() ORDER BY effective_from DESC LIMIT 1) a ON true
WHERE u.id = $1`, id).Scan(&name, &from)
	if err != nil {
		return "", nil, mapError("reading a user's plan", err)
	}
	return name, utcPtr(from), nil
}

// AssignPlanAs is AssignPlan by an operator: audited (user.plan.set,
// with the plan in effect before and the assignment after) and raising
// the user's version in the same transaction; the version is returned to
// publish. An assignment effective in the future reaches cached keys
// within AUTH_CACHE_TTL of taking effect.
func (s *Store) AssignPlanAs(ctx context.Context, actor Actor, a shared.PlanAssignment) (int64, error) {
	var version int64
	err := s.adminTx(ctx, "assigning a plan", func(tx pgx.Tx) error {
		v, err := lockUser(ctx, tx, a.UserID, true)
		if shared.ErrorCode(err) == shared.ENotFound {
			return shared.Errorf(shared.ENotFound, "no such user")
		} else if err != nil {
			return err
		}
		version = v
		var before string
		if err := tx.QueryRow(ctx, `
SELECT coalesce((SELECT plan_name FROM plan_assignments WHERE user_id = $1 AND effective_from <= now()
                 ORDER BY effective_from DESC LIMIT 1), 'default')`, a.UserID).Scan(&before); err != nil {
			return err
		}
		if err := assignPlan(ctx, tx, a); err != nil {
			return err
		}
		from := a.EffectiveFrom.UTC().Truncate(time.Minute)
		return insertAudit(ctx, tx, actor.entry("user.plan.set", a.UserID, "user:"+strconv.FormatInt(a.UserID, 10),
			map[string]any{"plan": before}, map[string]any{"plan": a.Plan, "effective_from": from}))
	})
	return version, err
}
