package postgres

import (
	"context"
	"time"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/history"
)

// UsageHistory returns the buckets of r that hold usage, from the minute
// rollups (one index range scan: the primary key for one user, the
// minute index for all), never the events. userID 0 sums every user
// (the operator's view). Buckets are aligned to r's step since the Unix
// epoch; history.Fill zero-fills the rest.
func (s *Store) UsageHistory(ctx context.Context, userID int64, r history.Range) ([]history.Point, error) {
	const one = `
SELECT date_bin($1::interval, minute, 'epoch'::timestamptz), sum(requests)::bigint, sum(units)::bigint, sum(denied)::bigint
FROM usage_minutes WHERE user_id = $4 AND minute >= $2 AND minute < $3
GROUP BY 1 ORDER BY 1`
	const all = `
SELECT date_bin($1::interval, minute, 'epoch'::timestamptz), sum(requests)::bigint, sum(units)::bigint, sum(denied)::bigint
FROM usage_minutes WHERE minute >= $2 AND minute < $3
GROUP BY 1 ORDER BY 1`
	pool, err := s.db(ctx)
	if err != nil {
		return nil, err
	}
	q, args := all, []any{r.Step(), r.From, r.To}
	if userID != 0 {
		q, args = one, append(args, userID)
	}
	rows, err := pool.Query(ctx, q, args...)
	if err != nil {
		return nil, mapError("reading usage history", err)
	}
	defer rows.Close()
	var out []history.Point
	for rows.Next() {
		var p history.Point
		if err := rows.Scan(&p.Start, &p.Requests, &p.Units, &p.Denied); err != nil {
			return nil, mapError("reading usage history", err)
		}
		p.Start = p.Start.UTC()
		out = append(out, p)
	}
	return out, mapError("reading usage history", rows.Err())
}

// TopCustomers returns the limit users with the most usage of kind by in
// r (ties by user id), from the minute rollups; users with none of it are
// left out.
func (s *Store) TopCustomers(ctx context.Context, r history.Range, by history.Top, limit int) ([]history.Customer, error) {
	// by is one of three constants; the ORDER BY column is chosen here,
	// never from input.
	order := map[history.Top]string{history.ByRequests: "2", history.ByUnits: "3", history.ByDenied: "4"}[by]
	if order == "" {
		return nil, shared.Errorf(shared.EInvalid, "unknown order %q", by)
	}
	q := `
WITH t AS (
    SELECT user_id, sum(requests)::bigint AS requests, sum(units)::bigint AS units, sum(denied)::bigint AS denied
    FROM usage_minutes WHERE minute >= $1 AND minute < $2
    GROUP BY user_id
)
SELECT t.user_id, t.requests, t.units, t.denied, coalesce(u.username, '')
FROM t LEFT JOIN users u ON u.id = t.user_id
WHERE (ARRAY[t.requests, t.units, t.denied])[` + order + ` - 1] > 0
ORDER BY ` + order + ` DESC, t.user_id
LIMIT $3`
	pool, err := s.db(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := pool.Query(ctx, q, r.From, r.To, limit)
	if err != nil {
		return nil, mapError("reading top customers", err)
	}
	defer rows.Close()
	out := []history.Customer{}
	for rows.Next() {
		var c history.Customer
		if err := rows.Scan(&c.UserID, &c.Requests, &c.Units, &c.Denied, &c.Username); err != nil {
			return nil, mapError("reading top customers", err)
		}
		out = append(out, c)
	}
	return out, mapError("reading top customers", rows.Err())
}

// AddDenials adds counts to the minute rollups' denied column in one
// statement (rows in (user, minute) order, as WriteUsage locks them, so
// the two cannot deadlock).
func (s *Store) AddDenials(ctx context.Context, ds []shared.Denial) error {
	if len(ds) == 0 {
		return nil
	}
	const q = `
INSERT INTO usage_minutes AS m (user_id, minute, requests, units, denied)
SELECT user_id, minute, 0, 0, sum(n) FROM unnest($1::bigint[], $2::timestamptz[], $3::bigint[]) AS t(user_id, minute, n)
GROUP BY 1, 2 ORDER BY 1, 2
ON CONFLICT (user_id, minute) DO UPDATE SET denied = m.denied + EXCLUDED.denied`
	users := make([]int64, len(ds))
	minutes := make([]time.Time, len(ds))
	counts := make([]int64, len(ds))
	for i, d := range ds {
		users[i], minutes[i], counts[i] = d.UserID, d.Minute.UTC().Truncate(time.Minute), d.Count
	}
	pool, err := s.db(ctx)
	if err != nil {
		return err
	}
	_, err = pool.Exec(ctx, q, users, minutes, counts)
	return mapError("adding denials", err)
}
