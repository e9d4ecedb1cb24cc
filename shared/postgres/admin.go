package postgres

import (
	"context"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/ratebill/platform/shared"
)

// AdminUser is a user as the operator API shows it.
type AdminUser struct {
	ID              int64
	Username        string
	Email           string
	CreatedAt       time.Time
	SuspendedAt     *time.Time
	SuspendedReason *string
	// LimitUnits per LimitWindowSeconds is the user's limit override;
	// both nil when the default limit applies.
	LimitUnits         *int64
	LimitWindowSeconds *int64
	// SpendCap is the most a calendar month may cost; nil: no cap.
	SpendCap *decimal.Decimal
	// Version is users.version: it increases with every change that must
	// reach cached principals (publish it to Redis after commit).
	Version int64
}

// AuditRecord is one row of the audit log as GET /admin/audit shows it.
type AuditRecord struct {
	ID         int64
	At         time.Time
	ActorType  string
	ActorID    *int64
	ActorName  string
	Action     string
	UserID     *int64
	Target     string
	RemoteAddr string
	RequestID  string
	Before     []byte // JSON or nil
	After      []byte // JSON or nil
}

const userColumns = `id, username, email, created_at, suspended_at, suspended_reason, limit_units, limit_window_seconds::bigint, version, spend_cap`

func scanUser(row pgx.Row) (AdminUser, error) {
	var u AdminUser
	var spendCap decimal.NullDecimal
	err := row.Scan(&u.ID, &u.Username, &u.Email, &u.CreatedAt, &u.SuspendedAt, &u.SuspendedReason, &u.LimitUnits, &u.LimitWindowSeconds, &u.Version, &spendCap)
	if spendCap.Valid {
		u.SpendCap = &spendCap.Decimal
	}
	u.CreatedAt, u.SuspendedAt = u.CreatedAt.UTC(), utcPtr(u.SuspendedAt)
	return u, err
}

// userAudit is the audit log's view of a user's operator-controlled state.
func userAudit(u AdminUser) map[string]any {
	m := map[string]any{"suspended_at": u.SuspendedAt, "suspended_reason": u.SuspendedReason, "limit": nil}
	if u.LimitUnits != nil {
		m["limit"] = map[string]int64{"limit": *u.LimitUnits, "window": *u.LimitWindowSeconds}
	}
	return m
}

// ListUsers returns at most limit users with an id above afterID, in id
// order, whose username or email contains q case-insensitively (every
// user for an empty q).
func (s *Store) ListUsers(ctx context.Context, q string, afterID int64, limit int) ([]AdminUser, error) {
	pool, err := s.db(ctx)
	if err != nil {
		return nil, err
	}
	// strpos, not LIKE: q is matched literally, "%" and "_" included.
	rows, err := pool.Query(ctx, `
SELECT `+userColumns+` FROM users
WHERE id > $1 AND ($2 = '' OR strpos(lower(username), lower($2)) > 0 OR strpos(lower(email), lower($2)) > 0)
ORDER BY id LIMIT $3`, afterID, q, limit)
	if err != nil {
		return nil, mapError("listing users", err)
	}
	defer rows.Close()
	out := []AdminUser{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, mapError("listing users", err)
		}
		out = append(out, u)
	}
	return out, mapError("listing users", rows.Err())
}

// AdminGetUser returns user id with all their keys (newest first) and
// their running totals: ENotFound when there is no such user.
func (s *Store) AdminGetUser(ctx context.Context, id int64) (AdminUser, []shared.Key, shared.Period, error) {
	pool, err := s.db(ctx)
	if err != nil {
		return AdminUser{}, nil, shared.Period{}, err
	}
	u, err := scanUser(pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if err != nil {
		return AdminUser{}, nil, shared.Period{}, mapError("reading user", err)
	}
	rows, err := pool.Query(ctx, `SELECT `+keyColumns+` FROM api_keys k WHERE k.user_id = $1 ORDER BY k.id DESC`, id)
	if err != nil {
		return AdminUser{}, nil, shared.Period{}, mapError("listing keys", err)
	}
	defer rows.Close()
	keys := []shared.Key{}
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return AdminUser{}, nil, shared.Period{}, mapError("listing keys", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return AdminUser{}, nil, shared.Period{}, mapError("listing keys", err)
	}
	tot, err := s.totals(ctx, []int64{id})
	if err != nil {
		return AdminUser{}, nil, shared.Period{}, err
	}
	return u, keys, shared.Period{Requests: tot[id].requests, Units: tot[id].units}, nil
}

// changeUser runs change on user id inside a transaction: the row is
// locked, change's UPDATE (which must return userColumns and bump
// version) runs, and the action is audited with the state before and
// after. ENotFound when there is no such user.
func (s *Store) changeUser(ctx context.Context, actor Actor, action string, id int64, update string, args ...any) (AdminUser, error) {
	var after AdminUser
	err := s.adminTx(ctx, action, func(tx pgx.Tx) error {
		before, err := scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return err
		}
		after, err = scanUser(tx.QueryRow(ctx, update, append([]any{id}, args...)...))
		if err != nil {
			return err
		}
		return insertAudit(ctx, tx, actor.entry(action, id, "user:"+strconv.FormatInt(id, 10), userAudit(before), userAudit(after)))
	})
	return after, err
}

// SuspendUser suspends user id with reason (a suspended user's every key
// is refused), audited (user.suspend); suspending a suspended user
// replaces the reason and keeps the original time. The returned
// Version is the new users.version to publish.
func (s *Store) SuspendUser(ctx context.Context, actor Actor, id int64, reason string) (AdminUser, error) {
	return s.changeUser(ctx, actor, "user.suspend", id, `
UPDATE users SET suspended_at = coalesce(suspended_at, now()), suspended_reason = $2, version = version + 1
WHERE id = $1 RETURNING `+userColumns, reason)
}

// ReactivateUser lifts a suspension, audited (user.reactivate).
func (s *Store) ReactivateUser(ctx context.Context, actor Actor, id int64) (AdminUser, error) {
	return s.changeUser(ctx, actor, "user.reactivate", id, `
UPDATE users SET suspended_at = NULL, suspended_reason = NULL, version = version + 1
WHERE id = $1 RETURNING `+userColumns)
}

// SetUserLimit sets user id's limit override to units per window
// seconds, audited (user.limit.set).
func (s *Store) SetUserLimit(ctx context.Context, actor Actor, id, units, windowSeconds int64) (AdminUser, error) {
	return s.changeUser(ctx, actor, "user.limit.set", id, `
UPDATE users SET limit_units = $2, limit_window_seconds = $3, version = version + 1
WHERE id = $1 RETURNING `+userColumns, units, windowSeconds)
}

// ClearUserLimit removes user id's limit override (the default applies
// again), audited (user.limit.clear).
func (s *Store) ClearUserLimit(ctx context.Context, actor Actor, id int64) (AdminUser, error) {
	return s.changeUser(ctx, actor, "user.limit.clear", id, `
UPDATE users SET limit_units = NULL, limit_window_seconds = NULL, version = version + 1
WHERE id = $1 RETURNING `+userColumns)
}

// AuditFilter selects audit rows: by user (0: any) and action ("": any).
type AuditFilter struct {
	UserID int64
	Action string
}

// ListAudit returns at most limit audit rows matching f with an id below
// beforeID (0: from the newest), newest first.
func (s *Store) ListAudit(ctx context.Context, f AuditFilter, beforeID int64, limit int) ([]AuditRecord, error) {
	pool, err := s.db(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := pool.Query(ctx, `
SELECT id, at, actor_type, actor_id, actor_name, action, user_id, target, remote_addr, request_id, before, after
FROM audit_log
WHERE ($1 = 0 OR user_id = $1) AND ($2 = '' OR action = $2) AND ($3 = 0 OR id < $3)
ORDER BY id DESC LIMIT $4`, f.UserID, f.Action, beforeID, limit)
	if err != nil {
		return nil, mapError("reading the audit log", err)
	}
	defer rows.Close()
	out := []AuditRecord{}
	for rows.Next() {
		var a AuditRecord
		if err := rows.Scan(&a.ID, &a.At, &a.ActorType, &a.ActorID, &a.ActorName, &a.Action, &a.UserID, &a.Target, &a.RemoteAddr, &a.RequestID, &a.Before, &a.After); err != nil {
			return nil, mapError("reading the audit log", err)
		}
		a.At = a.At.UTC()
		out = append(out, a)
	}
	return out, mapError("reading the audit log", rows.Err())
}
