package postgres

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/apikey"
)

// Key lifecycle (issue 12). A user has many keys; each change is one
// transaction that also writes its audit row (insertAudit) and, when
// cached principals must see it (revocation, a rotation's new expiry),
// raises users.version; the caller publishes the returned version to
// Redis once the change is committed (ratelimit.Limiter.PublishVersion).
// Every transaction locks the user's row first, then the key's, so
// concurrent changes of one user are serialised and cannot deadlock.

// Audit actions of the key lifecycle.
const (
	ActionKeyCreate = "key.create"
	ActionKeyRotate = "key.rotate"
	ActionKeyRevoke = "key.revoke"
)

// errNoKey is the one answer for a key id that does not exist, belongs to
// another user or cannot be changed (revoked, expired): the same body
// for all, so an answer never tells that an id exists.
// Any other error (the database is down) is passed on.
func errNoKey(cause error) error {
	if errors.Is(cause, pgx.ErrNoRows) || shared.ErrorCode(cause) == shared.ENotFound {
		return &shared.Error{Code: shared.ENotFound, Message: "no such key", Err: cause}
	}
	return mapError("changing a key", cause)
}

// keyColumns are the columns scanKey reads, of api_keys aliased k.
const keyColumns = `k.id, k.user_id, k.name, k.display_prefix, k.created_at, k.expires_at, k.revoked_at, k.last_used_at`

func scanKey(row pgx.Row) (shared.Key, error) {
	var k shared.Key
	err := row.Scan(&k.ID, &k.UserID, &k.Name, &k.Prefix, &k.CreatedAt, &k.ExpiresAt, &k.RevokedAt, &k.LastUsedAt)
	k.CreatedAt = k.CreatedAt.UTC()
	for _, t := range []**time.Time{&k.ExpiresAt, &k.RevokedAt, &k.LastUsedAt} {
		if *t != nil {
			u := (*t).UTC()
			*t = &u
		}
	}
	return k, err
}

// auditKey is a key as the audit log records it (no secret, no hash).
type auditKey struct {
	ID        int64      `json:"id"`
	Name      string     `json:"name"`
	Prefix    string     `json:"api_key_prefix"`
	ExpiresAt *time.Time `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at"`
}

func auditOf(k shared.Key) auditKey {
	return auditKey{ID: k.ID, Name: k.Name, Prefix: k.Prefix, ExpiresAt: k.ExpiresAt, RevokedAt: k.RevokedAt}
}

func keyTarget(id int64) string { return "key:" + strconv.FormatInt(id, 10) }

// ListKeys returns every key of the user, newest first, revoked and
// expired ones included.
func (s *Store) ListKeys(ctx context.Context, userID int64) ([]shared.Key, error) {
	pool, err := s.db(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := pool.Query(ctx, `SELECT `+keyColumns+` FROM api_keys k WHERE k.user_id = $1 ORDER BY k.id DESC`, userID)
	if err != nil {
		return nil, mapError("listing keys", err)
	}
	defer rows.Close()
	keys := []shared.Key{}
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, mapError("listing keys", err)
		}
		keys = append(keys, k)
	}
	return keys, mapError("listing keys", rows.Err())
}

// IssueKey creates a key for the user, named name, expiring expiresIn
// from now (0: never), and writes the key.create audit row with actor's
// who and where (ActorType, ActorID, ActorName, RemoteAddr, RequestID;
// the rest is filled in). The customer's POST /keys and the operator's
// POST /admin/users/{id}/keys both use it. Errors: ENotFound for no such
// user, EConflict when a customer (actor type ActorUser) already has
// KEYS_PER_USER_MAX active keys (not revoked, not expired; keys in a
// rotation's grace period count); operators are not bound by the cap. No version is raised: a new key changes no cached principal.
func (s *Store) IssueKey(ctx context.Context, userID int64, name string, expiresIn time.Duration, actor AuditEntry) (shared.NewKey, error) {
	key, err := apikey.Generate(nil)
	if err != nil {
		return shared.NewKey{}, err
	}
	var out shared.NewKey
	err = s.tx(ctx, "issuing a key", func(tx pgx.Tx) error {
		if _, err := lockUser(ctx, tx, userID, false); err != nil {
			return err
		}
		// The cap binds customers, not operators (who may need to give a
		// customer a key past it).
		if actor.ActorType == ActorUser {
			if err := s.checkKeyCap(ctx, tx, userID, 0); err != nil {
				return err
			}
		}
		k, err := insertKey(ctx, tx, userID, name, expiresIn, key)
		if err != nil {
			return err
		}
		out = shared.NewKey{Key: k, APIKey: key}
		actor.Action, actor.UserID, actor.Target, actor.Before, actor.After = ActionKeyCreate, userID, keyTarget(k.ID), nil, auditOf(k)
		return insertAudit(ctx, tx, actor)
	})
	return out, err
}

// RotateKey replaces the user's active key keyID by a new key of the same
// name: the old key keeps working for grace (its expiry becomes now +
// grace, or stays sooner if it was sooner) and is then expired; a grace
// of 0 revokes it now. It raises the user's version (the old key's expiry
// changed) and writes the key.rotate audit row. It returns the new key
// and the change to the old one. Errors: ENotFound when the user has no
// such active key (another user's, revoked or expired: one answer),
// EConflict when the new key would pass the key cap.
func (s *Store) RotateKey(ctx context.Context, userID, keyID int64, grace time.Duration, actor AuditEntry) (shared.NewKey, shared.KeyChange, error) {
	key, err := apikey.Generate(nil)
	if err != nil {
		return shared.NewKey{}, shared.KeyChange{}, err
	}
	var nk shared.NewKey
	var old shared.KeyChange
	err = s.tx(ctx, "rotating a key", func(tx pgx.Tx) error {
		v, err := lockUser(ctx, tx, userID, true)
		if err != nil {
			return errNoKey(err)
		}
		before, err := scanKey(tx.QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys k
WHERE k.id = $1 AND k.user_id = $2 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
FOR UPDATE`, keyID, userID))
		if err != nil {
			return errNoKey(err)
		}
		exclude := int64(0)
		if grace == 0 {
			exclude = keyID // revoked now: it leaves the count
		}
		if err := s.checkKeyCap(ctx, tx, userID, exclude); err != nil {
			return err
		}
		k, err := insertKey(ctx, tx, userID, before.Name, 0, key)
		if err != nil {
			return err
		}
		nk = shared.NewKey{Key: k, APIKey: key}
		var q string
		if grace == 0 {
			q = `UPDATE api_keys k SET revoked_at = now(), replaced_by = $2 WHERE k.id = $1 RETURNING ` + keyColumns
		} else {
			q = `UPDATE api_keys k SET expires_at = least(coalesce(k.expires_at, 'infinity'), now() + make_interval(secs => $3)), replaced_by = $2
WHERE k.id = $1 RETURNING ` + keyColumns
		}
		args := []any{keyID, k.ID}
		if grace != 0 {
			args = append(args, grace.Seconds())
		}
		after, err := scanKey(tx.QueryRow(ctx, q, args...))
		if err != nil {
			return mapError("rotating a key", err)
		}
		old = shared.KeyChange{Key: after, Version: v}
		actor.Action, actor.UserID, actor.Target = ActionKeyRotate, userID, keyTarget(keyID)
		actor.Before = auditOf(before)
		actor.After = map[string]any{"replaced": auditOf(after), "new_key": auditOf(k), "grace_seconds": int64(grace / time.Second)}
		return insertAudit(ctx, tx, actor)
	})
	return nk, old, err
}

// RevokeKeyByID revokes key keyID now. userID limits it to that user's
// keys (the customer's DELETE /keys/{id}); 0 allows any key (the
// operator's DELETE /admin/keys/{id}). It raises the key's user's version
// and writes the key.revoke audit row. Errors: ENotFound for a key that
// does not exist, belongs to another user or is already revoked (one
// answer for all).
func (s *Store) RevokeKeyByID(ctx context.Context, userID, keyID int64, actor AuditEntry) (shared.KeyChange, error) {
	var out shared.KeyChange
	err := s.tx(ctx, "revoking a key", func(tx pgx.Tx) error {
		owner := userID
		if owner == 0 {
			if err := tx.QueryRow(ctx, `SELECT user_id FROM api_keys WHERE id = $1`, keyID).Scan(&owner); err != nil {
				return errNoKey(err)
			}
		}
		v, err := lockUser(ctx, tx, owner, true)
		if err != nil {
			return errNoKey(err)
		}
		before, err := scanKey(tx.QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys k
WHERE k.id = $1 AND k.user_id = $2 AND k.revoked_at IS NULL FOR UPDATE`, keyID, owner))
		if err != nil {
			return errNoKey(err)
		}
		after, err := scanKey(tx.QueryRow(ctx, `UPDATE api_keys k SET revoked_at = now() WHERE k.id = $1 RETURNING `+keyColumns, keyID))
		if err != nil {
			return mapError("revoking a key", err)
		}
		out = shared.KeyChange{Key: after, Version: v}
		actor.Action, actor.UserID, actor.Target, actor.Before, actor.After = ActionKeyRevoke, owner, keyTarget(keyID), auditOf(before), auditOf(after)
		return insertAudit(ctx, tx, actor)
	})
	return out, err
}

// TouchKeys sets last_used_at to now for the keys ids, in one statement
// (rows locked in id order, so concurrent flushes of several instances
// cannot deadlock). It never moves last_used_at back.
func (s *Store) TouchKeys(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	pool, err := s.db(ctx)
	if err != nil {
		return err
	}
	_, err = pool.Exec(ctx, `
WITH l AS (
    SELECT id FROM api_keys WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE
)
UPDATE api_keys k SET last_used_at = now() FROM l
WHERE k.id = l.id AND (k.last_used_at IS NULL OR k.last_used_at < now())`, ids)
	return mapError("recording key use", err)
}

// tx runs fn in a transaction, committed when fn returns nil.
func (s *Store) tx(ctx context.Context, op string, fn func(pgx.Tx) error) error {
	pool, err := s.db(ctx)
	if err != nil {
		return err
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return mapError(op, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := fn(tx); err != nil {
		var e *shared.Error
		if errors.As(err, &e) {
			return err
		}
		return mapError(op, err)
	}
	return mapError(op, tx.Commit(ctx))
}

// lockUser locks the user's row for the transaction and, with bump,
// raises the user's version, returning the new one. ENotFound for no
// such user.
func lockUser(ctx context.Context, tx pgx.Tx, userID int64, bump bool) (int64, error) {
	q := `SELECT version FROM users WHERE id = $1 FOR UPDATE`
	if bump {
		q = `UPDATE users SET version = version + 1 WHERE id = $1 RETURNING version`
	}
	var v int64
	if err := tx.QueryRow(ctx, q, userID).Scan(&v); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, &shared.Error{Code: shared.ENotFound, Message: "no such user", Err: err}
		}
		return 0, mapError("locking the user", err)
	}
	return v, nil
}

// checkKeyCap fails with EConflict when the user's active keys, not
// counting exclude, leave no room for one more.
func (s *Store) checkKeyCap(ctx context.Context, tx pgx.Tx, userID, exclude int64) error {
	var n int
	err := tx.QueryRow(ctx, `SELECT count(*) FROM api_keys
WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`, userID, exclude).Scan(&n)
	if err != nil {
		return mapError("counting keys", err)
	}
	if n >= s.keyCap {
		return shared.Errorf(shared.EConflict, "this user has %d active keys, the most allowed (KEYS_PER_USER_MAX); revoke one first (keys in a rotation's grace period count)", n)
	}
	return nil
}

// insertKey stores key (by digest) for the user.
func insertKey(ctx context.Context, tx pgx.Tx, userID int64, name string, expiresIn time.Duration, key string) (shared.Key, error) {
	digest := apikey.Hash(key)
	var expires any
	if expiresIn > 0 {
		expires = expiresIn.Seconds()
	}
	k, err := scanKey(tx.QueryRow(ctx, `
INSERT INTO api_keys AS k (user_id, key_hash, display_prefix, name, expires_at)
VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
RETURNING `+keyColumns, userID, digest[:], apikey.Display(key), name, expires))
	if err != nil {
		return shared.Key{}, mapError("storing a key", err)
	}
	return k, nil
}
