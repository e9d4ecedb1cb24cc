package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/apikey"
	"github.com/ratebill/platform/shared/config"
	"github.com/ratebill/platform/shared/lazy"
	"github.com/ratebill/platform/shared/pricing"
)

// Store runs the platform's queries. Its pool is built on first use (and,
// with INIT_DB, migrated under an advisory lock), once per instance; a
// failed build is retried by the next query. New does no I/O, so a
// function instance starts without waiting for the database.
type Store struct {
	pool *lazy.Value[*pgxpool.Pool]
	// keyCap bounds a user's active keys (KEYS_PER_USER_MAX).
	keyCap int
}

// New returns a Store for cfg whose pool opens on first use.
func New(cfg config.Config) *Store {
	return &Store{keyCap: cfg.KeysPerUserMax, pool: lazy.New(func(ctx context.Context) (*pgxpool.Pool, error) {
		if err := cfg.RequireDatabase(); err != nil {
			return nil, err
		}
		pool, err := Open(ctx, cfg)
		if err != nil {
			return nil, shared.Unavailable("postgres", err)
		}
		if cfg.InitDB {
			mctx, cancel := context.WithTimeout(ctx, cfg.DBPoolTimeout)
			err := MigratePool(mctx, pool)
			cancel()
			if err != nil {
				pool.Close()
				return nil, mapError("applying migrations", err)
			}
		}
		return pool, nil
	})}
}

// NewStore returns a Store on an open pool (tests, the migration job).
func NewStore(pool *pgxpool.Pool) *Store {
	return &Store{keyCap: config.Defaults().KeysPerUserMax, pool: lazy.New(func(context.Context) (*pgxpool.Pool, error) { return pool, nil })}
}

// WithKeyCap sets the bound on a user's active keys (KEYS_PER_USER_MAX)
// and returns s.
func (s *Store) WithKeyCap(n int) *Store {
	s.keyCap = n
	return s
}

// db returns the pool, opening it on first use.
func (s *Store) db(ctx context.Context) (*pgxpool.Pool, error) { return s.pool.Get(ctx) }

// Open opens the pool now (and migrates, with INIT_DB), so a broken
// database shows at start-up rather than on the first request.
func (s *Store) Open(ctx context.Context) error {
	_, err := s.db(ctx)
	return err
}

// Close closes the pool; every later query fails with
// shared.ErrShuttingDown.
func (s *Store) Close() {
	if pool, ok := s.pool.Close(); ok {
		pool.Close()
	}
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	pool, err := s.db(ctx)
	if err != nil {
		return err
	}
	return Ping(ctx, pool)
}

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
	pool, err := s.db(ctx)
	if err != nil {
		return shared.User{}, err
	}
	err = pool.QueryRow(ctx, q, username, email, digest[:], prefix).
		Scan(&u.ID, &u.Username, &u.Email, &u.CreatedAt, &u.KeyPrefix)
	if err != nil {
		return shared.User{}, mapError("creating user", err)
	}
	u.CreatedAt = u.CreatedAt.UTC()
	return u, nil
}

// LookupKey returns the principal owning the key with digest, with its
// user's suspension, limit override and version, and the key's expiry:
// shared.ErrRevokedKey when it was revoked, shared.ErrExpiredKey when it
// has expired (database clock), an ENotFound error when there is no such
// key. A suspended user's key is found (Principal.Suspended): the gate
// refuses it, and no negative cache keeps it past a reactivation.
func (s *Store) LookupKey(ctx context.Context, digest apikey.Digest) (shared.Principal, error) {
	const q = `
SELECT k.id, u.id, u.username, u.email, u.created_at, k.display_prefix, k.revoked_at IS NOT NULL,
       k.expires_at, coalesce(k.expires_at <= now(), false), u.suspended_at IS NOT NULL,
       coalesce(u.limit_units, 0), coalesce(u.limit_window_seconds, 0), u.version,
       coalesce(pl.name, 'default'), coalesce(pl.from_config, true), coalesce(pl.currency, ''), coalesce(pl.fixed_fee, 0),
       coalesce(pl.included_units, 0), coalesce(pl.price, 'null'), coalesce(pl.limits, 'null'), u.spend_cap
FROM api_keys k JOIN users u ON u.id = k.user_id
LEFT JOIN LATERAL (
    SELECT plans.* FROM plan_assignments a JOIN plans ON plans.name = a.plan_name
    WHERE a.user_id = u.id AND a.effective_from <= now() ORDER BY a.effective_from DESC LIMIT 1) pl ON true
WHERE k.key_hash = $1`
	var p shared.Principal
	pool, err := s.db(ctx)
	if err != nil {
		return shared.Principal{}, err
	}
	var revoked, expired bool
	var expires *time.Time
	var window int64
	var fromConfig bool
	var plan pricing.Plan
	var price, limits []byte
	var spendCap decimal.NullDecimal
	err = pool.QueryRow(ctx, q, digest[:]).
		Scan(&p.KeyID, &p.UserID, &p.Username, &p.Email, &p.CreatedAt, &p.KeyPrefix, &revoked,
			&expires, &expired, &p.Suspended, &p.LimitUnits, &window, &p.Version, &plan.Name, &fromConfig,
			&plan.Currency, &plan.FixedFee, &plan.IncludedUnits, &price, &limits, &spendCap)
	switch {
	case err != nil:
		return shared.Principal{}, mapError("looking up key", err)
	case revoked:
		return shared.Principal{}, shared.ErrRevokedKey
	case expired:
		return shared.Principal{}, shared.ErrExpiredKey
	}
	if expires != nil {
		p.KeyExpiresAt = expires.UTC()
	}
	p.Plan = plan.Name
	if !fromConfig {
		if err := json.Unmarshal(price, &plan.Price); err != nil {
			return shared.Principal{}, fmt.Errorf("decoding the price of plan %s: %w", plan.Name, err)
		}
		if err := json.Unmarshal(limits, &plan.Limits); err != nil {
			return shared.Principal{}, fmt.Errorf("decoding the limits of plan %s: %w", plan.Name, err)
		}
		p.PlanDef = &plan
	}
	if spendCap.Valid {
		p.SpendCap = &spendCap.Decimal
	}
	p.LimitWindow = time.Duration(window) * time.Second
	p.KeyDigest = digest
	p.CreatedAt = p.CreatedAt.UTC()
	return p, nil
}

// RevokeKey revokes the key with digest. Instances that cached it stop
// accepting it within their AUTH_CACHE_TTL.
func (s *Store) RevokeKey(ctx context.Context, digest apikey.Digest) error {
	pool, err := s.db(ctx)
	if err != nil {
		return err
	}
	tag, err := pool.Exec(ctx, `UPDATE api_keys SET revoked_at = now() WHERE key_hash = $1 AND revoked_at IS NULL`, digest[:])
	if err != nil {
		return mapError("revoking key", err)
	}
	if tag.RowsAffected() == 0 {
		return &shared.Error{Code: shared.ENotFound, Message: "no such unrevoked key"}
	}
	return nil
}

// WriteUsage records a batch of events in one statement and returns one
// result per event, in order. Either every event of the batch is durable
// when it returns nil, or none is. An event's Units of 0 is recorded as
// 1; a negative one breaks a CHECK and fails the batch.
func (s *Store) WriteUsage(ctx context.Context, events []shared.UsageEvent) ([]shared.UsageResult, error) {
	// One statement: the events, then the rollups in user (and minute)
	// order, so that concurrent batches lock rollup rows in the same order
	// and cannot deadlock.
	const q = `
WITH input AS (
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bytea[]) AS t(user_id, request_id, endpoint, units, release_hash)
), ins AS (
    INSERT INTO usage_events (user_id, request_id, endpoint, units, release_hash)
    SELECT user_id, request_id, endpoint, units, release_hash FROM input
    ON CONFLICT DO NOTHING
    RETURNING user_id, request_id, units, created_at
), tot AS (
    INSERT INTO usage_totals AS t (user_id, total_requests, total_units)
    SELECT user_id, count(*), sum(units) FROM ins GROUP BY user_id ORDER BY user_id
    ON CONFLICT (user_id) DO UPDATE SET total_requests = t.total_requests + EXCLUDED.total_requests,
                                        total_units = t.total_units + EXCLUDED.total_units
    RETURNING user_id, total_requests, total_units
), mins AS (
    INSERT INTO usage_minutes AS m (user_id, minute, requests, units)
    SELECT user_id, date_trunc('minute', created_at), count(*), sum(units) FROM ins GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (user_id, minute) DO UPDATE SET requests = m.requests + EXCLUDED.requests,
                                                units = m.units + EXCLUDED.units
)
SELECT ins.user_id, ins.request_id, ins.units, tot.total_requests, tot.total_units FROM ins JOIN tot USING (user_id)`
	users := make([]int64, len(events))
	ids := make([]string, len(events))
	endpoints := make([]string, len(events))
	units := make([]int64, len(events))
	releases := make([][]byte, len(events))
	for i, e := range events {
		releases[i] = e.ReleaseHash
		users[i], ids[i], endpoints[i], units[i] = e.UserID, e.RequestID, e.Endpoint, e.Units
		if units[i] == 0 {
			units[i] = 1
		}
	}
	pool, err := s.db(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := pool.Query(ctx, q, users, ids, endpoints, units, releases)
	if err != nil {
		return nil, mapError("writing usage", err)
	}
	type key struct {
		user int64
		id   string
	}
	inserted := make(map[key]int64, len(events)) // units of each inserted event
	tot := make(map[int64]totals)
	added := make(map[int64]totals) // requests and units inserted per user
	for rows.Next() {
		var k key
		var u int64
		var t totals
		if err := rows.Scan(&k.user, &k.id, &u, &t.requests, &t.units); err != nil {
			rows.Close()
			return nil, mapError("writing usage", err)
		}
		inserted[k] = u
		tot[k.user] = t
		a := added[k.user]
		a.requests++
		a.units += u
		added[k.user] = a
	}
	if err := rows.Err(); err != nil {
		return nil, mapError("writing usage", err)
	}

	// Number each user's inserted events in batch order, ending at the
	// user's new totals.
	out := make([]shared.UsageResult, len(events))
	seen := make(map[int64]totals)
	var dupUsers []int64
	for i, e := range events {
		k := key{e.UserID, e.RequestID}
		if u, ok := inserted[k]; ok {
			c := seen[e.UserID]
			c.requests++
			c.units += u
			seen[e.UserID] = c
			t, a := tot[e.UserID], added[e.UserID]
			out[i].Total = t.requests - a.requests + c.requests
			out[i].TotalUnits = t.units - a.units + c.units
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
		if err := s.replays(ctx, pool, events, out); err != nil {
			return nil, err
		}
		for i := range out {
			if out[i].Duplicate {
				t := cur[events[i].UserID]
				out[i].Total, out[i].TotalUnits = t.requests, t.units
			}
		}
	}
	return out, nil
}

// replays counts one replay on the first record of every duplicate of
// the batch, in one statement (duplicates are rare: retries), and fills
// in what the caller needs to judge it: the count, the record's age on
// the database clock, its units and whether it was released. The same
// id twice in one batch counts twice, as two replays would.
func (s *Store) replays(ctx context.Context, pool *pgxpool.Pool, events []shared.UsageEvent, out []shared.UsageResult) error {
	const q = `
WITH d AS (
    SELECT user_id, request_id, count(*)::int AS n
    FROM unnest($1::bigint[], $2::text[]) AS t(user_id, request_id)
    GROUP BY 1, 2 ORDER BY 1, 2
)
UPDATE usage_events e SET replays = e.replays + d.n
FROM d WHERE e.user_id = d.user_id AND e.request_id = d.request_id
RETURNING e.user_id, e.request_id, e.replays, now() - e.created_at, e.units, e.released_at IS NOT NULL, d.n`
	type key struct {
		user int64
		id   string
	}
	var users []int64
	var ids []string
	for i, e := range events {
		if out[i].Duplicate {
			users, ids = append(users, e.UserID), append(ids, e.RequestID)
		}
	}
	rows, err := pool.Query(ctx, q, users, ids)
	if err != nil {
		return mapError("counting replays", err)
	}
	type first struct {
		replays, n int
		age        time.Duration
		units      int64
		released   bool
	}
	got := map[key]*first{}
	for rows.Next() {
		var k key
		var f first
		if err := rows.Scan(&k.user, &k.id, &f.replays, &f.age, &f.units, &f.released, &f.n); err != nil {
			rows.Close()
			return mapError("counting replays", err)
		}
		f.replays -= f.n // numbered below, in batch order
		got[k] = &f
	}
	if err := rows.Err(); err != nil {
		return mapError("counting replays", err)
	}
	for i, e := range events {
		f, ok := got[key{e.UserID, e.RequestID}]
		if !out[i].Duplicate || !ok {
			continue
		}
		f.replays++
		out[i].Replays, out[i].Age, out[i].FirstUnits, out[i].Released = f.replays, f.age, f.units, f.released
	}
	return nil
}

// Release releases the call whose release token has the SHA-256 digest,
// once, within window of its record: it is marked released and its
// request and units are subtracted from the user's totals and the
// minute's rollup, in one statement. Errors: ENotFound for no such token,
// EConflict when it was released already or the window has passed.
func (s *Store) Release(ctx context.Context, digest []byte, window time.Duration) (shared.Release, error) {
	const q = `
WITH e AS (
    SELECT user_id, request_id, units, created_at, released_at IS NOT NULL AS released,
           now() - created_at > $2::interval AS expired
    FROM usage_events WHERE release_hash = $1
    FOR UPDATE
), u AS (
    UPDATE usage_events ue SET released_at = now()
    FROM e WHERE ue.user_id = e.user_id AND ue.request_id = e.request_id AND NOT e.released AND NOT e.expired
    RETURNING ue.user_id, ue.units, ue.created_at
), t AS (
    UPDATE usage_totals tt SET total_requests = tt.total_requests - 1, total_units = tt.total_units - u.units
    FROM u WHERE tt.user_id = u.user_id
), m AS (
    UPDATE usage_minutes mm SET requests = mm.requests - 1, units = mm.units - u.units
    FROM u WHERE mm.user_id = u.user_id AND mm.minute = date_trunc('minute', u.created_at)
)
SELECT e.user_id, e.request_id, e.units, e.created_at, e.released, e.expired FROM e`
	pool, err := s.db(ctx)
	if err != nil {
		return shared.Release{}, err
	}
	var r shared.Release
	var released, expired bool
	err = pool.QueryRow(ctx, q, digest, window).Scan(&r.UserID, &r.RequestID, &r.Units, &r.RecordedAt, &released, &expired)
	switch {
	case err != nil:
		return shared.Release{}, mapError("releasing a call", err)
	case released:
		return r, shared.Errorf(shared.EConflict, "this call was released already")
	case expired:
		return r, shared.Errorf(shared.EConflict, "the release window of %v has passed", window)
	}
	r.RecordedAt = r.RecordedAt.UTC()
	return r, nil
}

// totals are a user's recorded requests and units.
type totals struct{ requests, units int64 }

func (s *Store) totals(ctx context.Context, users []int64) (map[int64]totals, error) {
	pool, err := s.db(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := pool.Query(ctx, `SELECT user_id, total_requests, total_units FROM usage_totals WHERE user_id = ANY($1)`, users)
	if err != nil {
		return nil, mapError("reading totals", err)
	}
	defer rows.Close()
	m := make(map[int64]totals, len(users))
	for rows.Next() {
		var u int64
		var t totals
		if err := rows.Scan(&u, &t.requests, &t.units); err != nil {
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
	return m[userID].requests, nil
}

// TotalUnits returns the user's metered units so far (0 for none).
func (s *Store) TotalUnits(ctx context.Context, userID int64) (int64, error) {
	m, err := s.totals(ctx, []int64{userID})
	if err != nil {
		return 0, err
	}
	return m[userID].units, nil
}

// UnitsSince returns the units userID was billed at or after since (on
// the database clock), released calls excluded: the durable count a rate
// limiter rebuilds a window from after Redis lost its data
// (ratelimit.Ledger). Whole minutes come from the rollups (written in the
// same statement as the events, so never behind them), the part before
// the first whole minute from the events; with eventsOnly (windows
// shorter than a minute) everything comes from the events. Each part is
// one index range scan.
func (s *Store) UnitsSince(ctx context.Context, userID int64, since time.Time, eventsOnly bool) (int64, error) {
	const q = `
WITH b AS (
    SELECT $2::timestamptz AS s,
           CASE WHEN $3 THEN 'infinity'::timestamptz
                WHEN date_trunc('minute', $2::timestamptz) = $2::timestamptz THEN $2::timestamptz
                ELSE date_trunc('minute', $2::timestamptz) + interval '1 minute' END AS sc
)
SELECT (SELECT coalesce(sum(m.units), 0) FROM usage_minutes m, b
        WHERE m.user_id = $1 AND m.minute >= b.sc)::bigint
     + (SELECT coalesce(sum(u.units), 0) FROM usage_events u, b
        WHERE u.user_id = $1 AND u.created_at >= b.s AND u.created_at < b.sc AND u.released_at IS NULL)::bigint`
	pool, err := s.db(ctx)
	if err != nil {
		return 0, err
	}
	var n int64
	if err := pool.QueryRow(ctx, q, userID, since, eventsOnly).Scan(&n); err != nil {
		return 0, mapError("reading the ledger", err)
	}
	return n, nil
}

// RequestsInLast counts the user's metered requests and units in
// [now-d, now] on the database clock, exactly: whole minutes from the
// rollups, the two partial edge minutes from the events.
func (s *Store) RequestsInLast(ctx context.Context, userID int64, d time.Duration) (shared.Period, error) {
	const q = `
WITH p AS (
    SELECT now() AS e, now() - $2::interval AS s
), b AS (
    SELECT e, s,
           date_trunc('minute', e) AS ef,
           CASE WHEN date_trunc('minute', s) = s THEN s
                ELSE date_trunc('minute', s) + interval '1 minute' END AS sc
    FROM p
), whole AS (
    SELECT coalesce(sum(m.requests), 0)::bigint AS requests, coalesce(sum(m.units), 0)::bigint AS units
    FROM usage_minutes m, b
    WHERE m.user_id = $1 AND m.minute >= b.sc AND m.minute < b.ef
), edge AS (
    -- The two ranges are disjoint; each is one index range scan.
    -- Released calls are excluded, as the rollups exclude them.
    SELECT u.units FROM usage_events u, b
    WHERE u.user_id = $1 AND u.created_at >= b.s AND u.created_at < least(b.sc, b.ef) AND u.released_at IS NULL
    UNION ALL
    SELECT u.units FROM usage_events u, b
    WHERE u.user_id = $1 AND u.created_at >= greatest(b.ef, b.sc) AND u.created_at <= b.e AND u.released_at IS NULL
), edges AS (
    SELECT count(*)::bigint AS requests, coalesce(sum(units), 0)::bigint AS units FROM edge
)
SELECT b.s, b.e, whole.requests + edges.requests, whole.units + edges.units
FROM b, whole, edges`
	pool, err := s.db(ctx)
	if err != nil {
		return shared.Period{}, err
	}
	var p shared.Period
	if err := pool.QueryRow(ctx, q, userID, d).Scan(&p.Start, &p.End, &p.Requests, &p.Units); err != nil {
		return shared.Period{}, mapError("billing", err)
	}
	p.Start, p.End = p.Start.UTC(), p.End.UTC()
	return p, nil
}
