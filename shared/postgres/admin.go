package postgres

import (
	"context"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

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
	// Version is users.version: it increases with every change that must
	// reach cached principals (publish it to Redis after commit).
	Version int64
}

// AdminKey is one API key of a user, without its secret.
type AdminKey struct {
	ID           int64
	UserID       int64
	Name         string
	APIKeyPrefix string
	CreatedAt    time.Time
	ExpiresAt    *time.Time
	RevokedAt    *time.Time
	LastUsedAt   *time.Time
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

const userColumns = `id, username, email, created_at, suspended_at, suspended_reason, limit_units, limit_window_seconds::bigint, version`

func scanUser(row pgx.Row) (AdminUser, error) {
	var u AdminUser
	err := row.Scan(&u.ID, &u.Username, &u.Email, &u.CreatedAt, &u.SuspendedAt, &u.SuspendedReason, &u.LimitUnits, &u.LimitWindowSeconds, &u.Version)
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

const adminKeyColumns = `id, user_id, name, display_prefix, created_at, expires_at, revoked_at, last_used_at`

func scanAdminKey(row pgx.Row) (AdminKey, error) {
	var k AdminKey
	err := row.Scan(&k.ID, &k.UserID, &k.Name, &k.APIKeyPrefix, &k.CreatedAt, &k.ExpiresAt, &k.RevokedAt, &k.LastUsedAt)
	k.CreatedAt = k.CreatedAt.UTC()
	k.ExpiresAt, k.RevokedAt, k.LastUsedAt = utcPtr(k.ExpiresAt), utcPtr(k.RevokedAt), utcPtr(k.LastUsedAt)
	return k, err
}

func keyAudit(k AdminKey) map[string]any {
	return map[string]any{"id": k.ID, "name": k.Name, "api_key_prefix": k.APIKeyPrefix, "expires_at": k.ExpiresAt, "revoked_at": k.RevokedAt}
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
func (s *Store) AdminGetUser(ctx context.Context, id int64) (AdminUser, []AdminKey, shared.Period, error) {
	pool, err := s.db(ctx)
	if err != nil {
		return AdminUser{}, nil, shared.Period{}, err
	}
	u, err := scanUser(pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if err != nil {
		return AdminUser{}, nil, shared.Period{}, mapError("reading user", err)
	}
	rows, err := pool.Query(ctx, `SELECT `+adminKeyColumns+` FROM api_keys WHERE user_id = $1 ORDER BY id DESC`, id)
	if err != nil {
		return AdminUser{}, nil, shared.Period{}, mapError("listing keys", err)
	}
	defer rows.Close()
	keys := []AdminKey{}
	for rows.Next() {
		k, err := scanAdminKey(rows)
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

// AdminIssueKey stores a new key (by digest) for user id, named name,
// expiring after expiresIn (nil: never), audited (key.create) with the
// operator as actor. ENotFound when there is no such user. A new key is
// cached nowhere, so users.version does not move.
//
// Minimal operator-side version; the coordinator may fold it into the
// keys store (IssueKey) at merge.
func (s *Store) AdminIssueKey(ctx context.Context, actor Actor, userID int64, name string, expiresIn *time.Duration, digest [32]byte, prefix string) (AdminKey, error) {
	var k AdminKey
	err := s.adminTx(ctx, "issuing key", func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM users WHERE id = $1 FOR SHARE`, userID).Scan(&one); err != nil {
			return err
		}
		var exp any
		if expiresIn != nil {
			exp = *expiresIn
		}
		var err error
		k, err = scanAdminKey(tx.QueryRow(ctx, `
INSERT INTO api_keys (user_id, key_hash, display_prefix, name, expires_at)
VALUES ($1, $2, $3, $4, now() + $5::interval)
RETURNING `+adminKeyColumns, userID, digest[:], prefix, name, exp))
		if err != nil {
			return err
		}
		return insertAudit(ctx, tx, actor.entry("key.create", userID, "key:"+strconv.FormatInt(k.ID, 10), nil, keyAudit(k)))
	})
	return k, err
}

// AdminRevokeKey revokes key id, whoever owns it, audited (key.revoke),
// and bumps its owner's users.version; it returns the owner and the new
// version to publish. ENotFound when there is no such unrevoked key.
//
// Minimal operator-side version; the coordinator may fold it into the
// keys store (RevokeKeyByID) at merge.
func (s *Store) AdminRevokeKey(ctx context.Context, actor Actor, id int64) (userID, version int64, err error) {
	err = s.adminTx(ctx, "revoking key", func(tx pgx.Tx) error {
		before, err := scanAdminKey(tx.QueryRow(ctx, `SELECT `+adminKeyColumns+` FROM api_keys WHERE id = $1 AND revoked_at IS NULL FOR UPDATE`, id))
		if err != nil {
			return err
		}
		after, err := scanAdminKey(tx.QueryRow(ctx, `UPDATE api_keys SET revoked_at = now() WHERE id = $1 RETURNING `+adminKeyColumns, id))
		if err != nil {
			return err
		}
		userID = after.UserID
		if err := tx.QueryRow(ctx, `UPDATE users SET version = version + 1 WHERE id = $1 RETURNING version`, userID).Scan(&version); err != nil {
			return err
		}
		return insertAudit(ctx, tx, actor.entry("key.revoke", userID, "key:"+strconv.FormatInt(id, 10), keyAudit(before), keyAudit(after)))
	})
	return userID, version, err
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
