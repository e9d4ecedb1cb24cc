package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/apikey"
)

// Store runs the platform's queries on a pool.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a Store using pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Pool returns the underlying pool.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return Ping(ctx, s.pool) }

// Unique constraints reported in ConflictError.Constraint.
const (
	ConstraintUsername = "users_username_key"
	ConstraintEmail    = "users_email_key"
)

// CreateUser stores a user and its first API key (by digest) atomically.
func (s *Store) CreateUser(ctx context.Context, username, email string, digest apikey.Digest, prefix string) (shared.User, error) {
	const q = `
WITH u AS (
    INSERT INTO users (username, email) VALUES ($1, $2)
    RETURNING id, username, email, created_at
), k AS (
    INSERT INTO api_keys (user_id, key_hash, display_prefix)
    SELECT id, $3, $4 FROM u
    RETURNING display_prefix
)
SELECT u.id, u.username, u.email, u.created_at, k.display_prefix FROM u, k`
	var u shared.User
	err := s.pool.QueryRow(ctx, q, username, email, digest[:], prefix).
		Scan(&u.ID, &u.Username, &u.Email, &u.CreatedAt, &u.KeyPrefix)
	if err != nil {
		return shared.User{}, mapError("creating user", err)
	}
	u.CreatedAt = u.CreatedAt.UTC()
	return u, nil
}

// LookupKey returns the principal owning the unrevoked key with digest,
// or ErrNotFound.
func (s *Store) LookupKey(ctx context.Context, digest apikey.Digest) (shared.Principal, error) {
	const q = `
SELECT k.id, u.id, u.username, u.email, u.created_at, k.display_prefix
FROM api_keys k JOIN users u ON u.id = k.user_id
WHERE k.key_hash = $1 AND k.revoked_at IS NULL`
	var p shared.Principal
	err := s.pool.QueryRow(ctx, q, digest[:]).
		Scan(&p.KeyID, &p.UserID, &p.Username, &p.Email, &p.CreatedAt, &p.KeyPrefix)
	if err != nil {
		return shared.Principal{}, mapError("looking up key", err)
	}
	p.CreatedAt = p.CreatedAt.UTC()
	return p, nil
}

// RevokeKey revokes the key with digest. Instances that cached it stop
// accepting it within their AUTH_CACHE_TTL.
func (s *Store) RevokeKey(ctx context.Context, digest apikey.Digest) error {
	tag, err := s.pool.Exec(ctx, `UPDATE api_keys SET revoked_at = now() WHERE key_hash = $1 AND revoked_at IS NULL`, digest[:])
	if err != nil {
		return mapError("revoking key", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// UsageEvent is one metered request to record.
type UsageEvent struct {
	UserID    int64
	RequestID string // unique per user; a repeated id is not counted again
	Endpoint  string
}

// UsageResult is the outcome of recording one event.
type UsageResult struct {
	// Total is the user's metered requests so far, this one included.
	Total int64
	// Duplicate reports that the request id had already been recorded.
	Duplicate bool
}

// WriteUsage records a batch of events in one statement and returns one
// result per event, in order. Either every event of the batch is durable
// when it returns nil, or none is.
func (s *Store) WriteUsage(ctx context.Context, events []UsageEvent) ([]UsageResult, error) {
	const q = `
WITH input AS (
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[]) AS t(user_id, request_id, endpoint)
), ins AS (
    INSERT INTO usage_events (user_id, request_id, endpoint)
    SELECT user_id, request_id, endpoint FROM input
    ON CONFLICT DO NOTHING
    RETURNING user_id, request_id, created_at
), tot AS (
    INSERT INTO usage_totals AS t (user_id, total_requests)
    SELECT user_id, count(*) FROM ins GROUP BY user_id ORDER BY user_id
    ON CONFLICT (user_id) DO UPDATE SET total_requests = t.total_requests + EXCLUDED.total_requests
    RETURNING user_id, total_requests
), mins AS (
    INSERT INTO usage_minutes AS m (user_id, minute, requests)
    SELECT user_id, date_trunc('minute', created_at), count(*) FROM ins GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (user_id, minute) DO UPDATE SET requests = m.requests + EXCLUDED.requests
)
SELECT ins.user_id, ins.request_id, tot.total_requests FROM ins JOIN tot USING (user_id)`
	users := make([]int64, len(events))
	ids := make([]string, len(events))
	endpoints := make([]string, len(events))
	for i, e := range events {
		users[i], ids[i], endpoints[i] = e.UserID, e.RequestID, e.Endpoint
	}
	rows, err := s.pool.Query(ctx, q, users, ids, endpoints)
	if err != nil {
		return nil, mapError("writing usage", err)
	}
	type key struct {
		user int64
		id   string
	}
	inserted := make(map[key]bool, len(events))
	totals := make(map[int64]int64)
	newCount := make(map[int64]int64) // events inserted per user
	for rows.Next() {
		var k key
		var total int64
		if err := rows.Scan(&k.user, &k.id, &total); err != nil {
			rows.Close()
			return nil, mapError("writing usage", err)
		}
		inserted[k] = true
		totals[k.user] = total
		newCount[k.user]++
	}
	if err := rows.Err(); err != nil {
		return nil, mapError("writing usage", err)
	}

	// Number each user's inserted events in batch order, ending at the
	// user's new total.
	out := make([]UsageResult, len(events))
	seen := make(map[int64]int64)
	var dupUsers []int64
	for i, e := range events {
		k := key{e.UserID, e.RequestID}
		if inserted[k] {
			seen[e.UserID]++
			out[i].Total = totals[e.UserID] - newCount[e.UserID] + seen[e.UserID]
			delete(inserted, k) // the same id twice in one batch counts once
			continue
		}
		out[i].Duplicate = true
		dupUsers = append(dupUsers, e.UserID)
	}
	if len(dupUsers) > 0 {
		cur, err := s.totals(ctx, dupUsers)
		if err != nil {
			return nil, err
		}
		for i := range out {
			if out[i].Duplicate {
				out[i].Total = cur[events[i].UserID]
			}
		}
	}
	return out, nil
}

func (s *Store) totals(ctx context.Context, users []int64) (map[int64]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT user_id, total_requests FROM usage_totals WHERE user_id = ANY($1)`, users)
	if err != nil {
		return nil, mapError("reading totals", err)
	}
	defer rows.Close()
	m := make(map[int64]int64, len(users))
	for rows.Next() {
		var u, t int64
		if err := rows.Scan(&u, &t); err != nil {
			return nil, mapError("reading totals", err)
		}
		m[u] = t
	}
	return m, mapError("reading totals", rows.Err())
}

// TotalRequests returns the user's metered requests so far (0 for none).
func (s *Store) TotalRequests(ctx context.Context, userID int64) (int64, error) {
	m, err := s.totals(ctx, []int64{userID})
	if err != nil {
		return 0, err
	}
	return m[userID], nil
}

// Period is a billed span on the database clock.
type Period struct {
	Start, End time.Time
	Requests   int64
}

// RequestsInLast counts the user's metered requests in [now-d, now] on the
// database clock, exactly: whole minutes from the rollups, the two partial
// edge minutes from the events.
func (s *Store) RequestsInLast(ctx context.Context, userID int64, d time.Duration) (Period, error) {
	const q = `
WITH p AS (
    SELECT now() AS e, now() - $2::interval AS s
), b AS (
    SELECT e, s,
           date_trunc('minute', e) AS ef,
           CASE WHEN date_trunc('minute', s) = s THEN s
                ELSE date_trunc('minute', s) + interval '1 minute' END AS sc
    FROM p
)
SELECT b.s, b.e,
    coalesce((SELECT sum(m.requests) FROM usage_minutes m
              WHERE m.user_id = $1 AND m.minute >= b.sc AND m.minute < b.ef), 0)::bigint
  + (SELECT count(*) FROM usage_events u
     WHERE u.user_id = $1 AND u.created_at >= b.s AND u.created_at < least(b.sc, b.ef))
  + (SELECT count(*) FROM usage_events u
     WHERE u.user_id = $1 AND u.created_at >= greatest(b.ef, b.sc) AND u.created_at <= b.e)
FROM b`
	var p Period
	if err := s.pool.QueryRow(ctx, q, userID, d).Scan(&p.Start, &p.End, &p.Requests); err != nil {
		return Period{}, mapError("billing", err)
	}
	p.Start, p.End = p.Start.UTC(), p.End.UTC()
	return p, nil
}
