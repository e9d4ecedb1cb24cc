package postgres

import (
	"context"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/ratebill/platform/shared"
)

// SpendCap returns user id's spend cap, nil when none is set. Errors:
// ENotFound for an unknown user.
func (s *Store) SpendCap(ctx context.Context, id int64) (*decimal.Decimal, error) {
	pool, err := s.db(ctx)
	if err != nil {
		return nil, err
	}
	var cap decimal.NullDecimal
	if err := pool.QueryRow(ctx, `SELECT spend_cap FROM users WHERE id = $1`, id).Scan(&cap); err != nil {
		return nil, mapError("reading a spend cap", err)
	}
	if !cap.Valid {
		return nil, nil
	}
	return &cap.Decimal, nil
}

// SetSpendCap sets (amount non-nil) or clears (nil) user id's spend cap,
// audited (user.cap.set, user.cap.clear), and raises the user's version:
// the returned version is the one to publish so that cached keys see the
// cap on their next call. amount is at most 2 decimals and not negative
// (the caller validates; the column's CHECK holds it too). Errors:
// ENotFound for an unknown user.
func (s *Store) SetSpendCap(ctx context.Context, actor Actor, id int64, amount *decimal.Decimal) (int64, error) {
	action := "user.cap.set"
	if amount == nil {
		action = "user.cap.clear"
	}
	var version int64
	err := s.adminTx(ctx, action, func(tx pgx.Tx) error {
		var before decimal.NullDecimal
		if err := tx.QueryRow(ctx, `SELECT spend_cap FROM users WHERE id = $1 FOR UPDATE`, id).Scan(&before); err != nil {
			return err
		}
		var arg any
		if amount != nil {
			arg = *amount
		}
		if err := tx.QueryRow(ctx, `UPDATE users SET spend_cap = $2, version = version + 1 WHERE id = $1 RETURNING version`, id, arg).Scan(&version); err != nil {
			return err
		}
		capOf := func(d decimal.NullDecimal) any {
			if !d.Valid {
				return map[string]any{"spend_cap": nil}
			}
			return map[string]any{"spend_cap": d.Decimal.StringFixed(2)}
		}
		after := decimal.NullDecimal{Valid: amount != nil}
		if amount != nil {
			after.Decimal = *amount
		}
		return insertAudit(ctx, tx, actor.entry(action, id, "user:"+strconv.FormatInt(id, 10), capOf(before), capOf(after)))
	})
	if shared.ErrorCode(err) == shared.ENotFound {
		return 0, shared.Errorf(shared.ENotFound, "no user %d", id)
	}
	return version, err
}
