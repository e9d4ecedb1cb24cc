package postgres

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ratebill/platform/shared"
)

// Operator token scopes.
const (
	ScopeAdmin  = "admin"  // may read and change everything under /admin/
	ScopeViewer = "viewer" // may only read
)

// OperatorToken is one operator credential, without its secret (only
// its SHA-256 is stored).
type OperatorToken struct {
	ID          int64
	Name        string
	Scope       string
	TokenPrefix string // display prefix, e.g. "rbo_AbCd1234"
	CreatedAt   time.Time
	RevokedAt   *time.Time
	LastUsedAt  *time.Time
}

// Actor is who performs an audited change, and from where.
type Actor struct {
	Type       string // ActorOperator, ActorUser or ActorSystem
	ID         int64
	Name       string
	RemoteAddr string
	RequestID  string
}

// Who returns the audit entry of a with who and where filled in, for the
// store methods that fill in the rest (IssueKey, RevokeKeyByID).
func (a Actor) Who() AuditEntry { return a.entry("", 0, "", nil, nil) }

// entry returns the audit entry of an action of a.
func (a Actor) entry(action string, userID int64, target string, before, after any) AuditEntry {
	return AuditEntry{ActorType: a.Type, ActorID: a.ID, ActorName: a.Name, Action: action, UserID: userID,
		Target: target, RemoteAddr: a.RemoteAddr, RequestID: a.RequestID, Before: before, After: after}
}

const tokenColumns = `id, name, scope, display_prefix, created_at, revoked_at, last_used_at`

func scanToken(row pgx.Row) (OperatorToken, error) {
	var t OperatorToken
	err := row.Scan(&t.ID, &t.Name, &t.Scope, &t.TokenPrefix, &t.CreatedAt, &t.RevokedAt, &t.LastUsedAt)
	t.CreatedAt = t.CreatedAt.UTC()
	t.RevokedAt, t.LastUsedAt = utcPtr(t.RevokedAt), utcPtr(t.LastUsedAt)
	return t, err
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// tokenAudit is the audit log's view of a token: never its hash.
func tokenAudit(t OperatorToken) map[string]any {
	return map[string]any{"id": t.ID, "name": t.Name, "scope": t.Scope, "token_prefix": t.TokenPrefix, "revoked_at": t.RevokedAt}
}

// LookupOperatorToken returns the token whose SHA-256 is digest: ENotFound
// when there is none, the token with RevokedAt set when it was revoked.
// The comparison is the database's unique-index lookup of the digest;
// nothing secret is compared byte by byte in Go. The same statement
// records the use (last_used_at), at most once a minute per token, so
// operator traffic does not write on every request.
func (s *Store) LookupOperatorToken(ctx context.Context, digest [32]byte) (OperatorToken, error) {
	const q = `
WITH t AS (
    SELECT ` + tokenColumns + ` FROM operator_tokens WHERE token_hash = $1
), touch AS (
    UPDATE operator_tokens o SET last_used_at = now()
    FROM t WHERE o.id = t.id AND t.revoked_at IS NULL
      AND (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute')
)
SELECT ` + tokenColumns + ` FROM t`
	pool, err := s.db(ctx)
	if err != nil {
		return OperatorToken{}, err
	}
	t, err := scanToken(pool.QueryRow(ctx, q, digest[:]))
	if err != nil {
		return OperatorToken{}, mapError("looking up operator token", err)
	}
	return t, nil
}

// ListOperatorTokens returns every operator token, newest first.
func (s *Store) ListOperatorTokens(ctx context.Context) ([]OperatorToken, error) {
	pool, err := s.db(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := pool.Query(ctx, `SELECT `+tokenColumns+` FROM operator_tokens ORDER BY id DESC`)
	if err != nil {
		return nil, mapError("listing operator tokens", err)
	}
	defer rows.Close()
	out := []OperatorToken{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, mapError("listing operator tokens", err)
		}
		out = append(out, t)
	}
	return out, mapError("listing operator tokens", rows.Err())
}

// CreateOperatorToken stores a token (by digest) created by actor, and
// audits it (token.create) in the same transaction.
func (s *Store) CreateOperatorToken(ctx context.Context, actor Actor, name, scope string, digest [32]byte, prefix string) (OperatorToken, error) {
	var t OperatorToken
	err := s.adminTx(ctx, "creating operator token", func(tx pgx.Tx) error {
		var err error
		t, err = scanToken(tx.QueryRow(ctx, `
INSERT INTO operator_tokens (name, token_hash, display_prefix, scope, created_by)
VALUES ($1, $2, $3, $4, NULLIF($5, 0))
RETURNING `+tokenColumns, name, digest[:], prefix, scope, actor.ID))
		if err != nil {
			return err
		}
		return insertAudit(ctx, tx, actor.entry("token.create", 0, "token:"+strconv.FormatInt(t.ID, 10), nil, tokenAudit(t)))
	})
	return t, err
}

// RevokeOperatorToken revokes token id, audited (token.revoke). ENotFound
// when there is no such unrevoked token; EConflict when it is the last
// unrevoked admin token (revoking it would leave nobody able to create
// another).
func (s *Store) RevokeOperatorToken(ctx context.Context, actor Actor, id int64) error {
	return s.adminTx(ctx, "revoking operator token", func(tx pgx.Tx) error {
		before, err := scanToken(tx.QueryRow(ctx, `SELECT `+tokenColumns+` FROM operator_tokens WHERE id = $1 AND revoked_at IS NULL FOR UPDATE`, id))
		if err != nil {
			return err
		}
		if before.Scope == ScopeAdmin {
			// Lock the other admin tokens too, so two concurrent
			// revocations cannot each see the other as the survivor.
			var others int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM (SELECT id FROM operator_tokens WHERE scope = 'admin' AND revoked_at IS NULL AND id <> $1 FOR UPDATE) o`, id).Scan(&others); err != nil {
				return err
			}
			if others == 0 {
				return shared.Errorf(shared.EConflict, "this is the last admin token; create another admin token before revoking it")
			}
		}
		after, err := scanToken(tx.QueryRow(ctx, `UPDATE operator_tokens SET revoked_at = now() WHERE id = $1 RETURNING `+tokenColumns, id))
		if err != nil {
			return err
		}
		return insertAudit(ctx, tx, actor.entry("token.revoke", 0, "token:"+strconv.FormatInt(id, 10), tokenAudit(before), tokenAudit(after)))
	})
}

// EnsureBootstrapToken makes sure an admin token with digest exists,
// named "bootstrap": inserted (and audited as actor "system") when no
// token has that digest, left alone otherwise, so a revoked bootstrap
// token stays revoked. It reports whether it inserted one.
func (s *Store) EnsureBootstrapToken(ctx context.Context, digest [32]byte, prefix string) (bool, error) {
	inserted := false
	err := s.adminTx(ctx, "ensuring the bootstrap operator token", func(tx pgx.Tx) error {
		t, err := scanToken(tx.QueryRow(ctx, `
INSERT INTO operator_tokens (name, token_hash, display_prefix, scope)
VALUES ('bootstrap', $1, $2, 'admin')
ON CONFLICT (token_hash) DO NOTHING
RETURNING `+tokenColumns, digest[:], prefix))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // already there
		}
		if err != nil {
			return err
		}
		inserted = true
		return insertAudit(ctx, tx, Actor{Type: ActorSystem, Name: "bootstrap"}.entry("token.create", 0, "token:"+strconv.FormatInt(t.ID, 10), nil, tokenAudit(t)))
	})
	return inserted, err
}

// adminTx runs fn in a transaction, committed when fn returns nil; errors are
// mapped at the storage boundary with op.
func (s *Store) adminTx(ctx context.Context, op string, fn func(pgx.Tx) error) error {
	pool, err := s.db(ctx)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, pool, fn)
	return mapError(op, err)
}
