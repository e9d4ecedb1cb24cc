package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/apikey"
	"github.com/ratebill/platform/shared/history"
	"github.com/ratebill/platform/shared/postgres"
	"github.com/ratebill/platform/shared/testdb"
)

func newUser(t *testing.T, s *postgres.Store, name string) (int64, string) {
	t.Helper()
	key, _ := apikey.Generate(nil)
	u, err := s.CreateUser(context.Background(), name, name+"@example.com", apikey.Hash(key), apikey.Display(key))
	if err != nil {
		t.Fatal(err)
	}
	return u.ID, key
}

func TestCreateUserAndLookup(t *testing.T) {
	t.Parallel()
	s := postgres.NewStore(testdb.Pool(t))
	ctx := context.Background()
	key, _ := apikey.Generate(nil)
	u, err := s.CreateUser(ctx, "Alice", "alice@example.com", apikey.Hash(key), apikey.Display(key))
	if err != nil {
		t.Fatal(err)
	}
	if u.ID == 0 || u.Username != "Alice" || u.KeyPrefix != apikey.Display(key) || time.Since(u.CreatedAt) > time.Minute {
		t.Fatalf("created %+v", u)
	}
	p, err := s.LookupKey(ctx, apikey.Hash(key))
	if err != nil || p.UserID != u.ID || p.Email != "alice@example.com" {
		t.Fatalf("lookup: %+v %v", p, err)
	}
	other, _ := apikey.Generate(nil)
	if _, err := s.LookupKey(ctx, apikey.Hash(other)); shared.ErrorCode(err) != shared.ENotFound {
		t.Fatalf("unknown key: %v", err)
	}

	tests := []struct {
		name, username, email, field string
	}{
		{"same username other case", "ALICE", "a2@example.com", "username"},
		{"same email other case", "alice2", "Alice@Example.com", "email"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, _ := apikey.Generate(nil)
			_, err := s.CreateUser(ctx, tt.username, tt.email, apikey.Hash(k), apikey.Display(k))
			var e *shared.Error
			if !errors.As(err, &e) || e.Code != shared.EConflict || len(e.Fields) != 1 || e.Fields[0].Field != tt.field {
				t.Errorf("err = %v, want a conflict naming %s", err, tt.field)
			}
		})
	}

	if err := s.RevokeKey(ctx, apikey.Hash(key)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupKey(ctx, apikey.Hash(key)); err != shared.ErrRevokedKey {
		t.Fatalf("revoked key: %v, want ErrRevokedKey", err)
	}
	if err := s.RevokeKey(ctx, apikey.Hash(key)); shared.ErrorCode(err) != shared.ENotFound {
		t.Fatalf("second revoke: %v", err)
	}
}

func TestWriteUsageTotalsAndIdempotency(t *testing.T) {
	t.Parallel()
	s := postgres.NewStore(testdb.Pool(t))
	ctx := context.Background()
	a, _ := newUser(t, s, "a")
	b, _ := newUser(t, s, "b")

	res, err := s.WriteUsage(ctx, []shared.UsageEvent{
		{UserID: a, RequestID: "r1", Endpoint: "/usage"},
		{UserID: b, RequestID: "r1", Endpoint: "/usage"}, // same id, other user: counts
		{UserID: a, RequestID: "r2", Endpoint: "/usage"},
		{UserID: a, RequestID: "r2", Endpoint: "/usage"}, // same id twice in a batch: once
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []shared.UsageResult{{Total: 1, TotalUnits: 1}, {Total: 1, TotalUnits: 1}, {Total: 2, TotalUnits: 2},
		{Total: 2, TotalUnits: 2, Duplicate: true, Replays: 1, FirstUnits: 1}}
	for i := range want {
		got := res[i]
		got.Age = 0 // the database's clock: checked in TestReplays
		if got != want[i] {
			t.Fatalf("result %d = %+v, want %+v (all %+v)", i, res[i], want[i], res)
		}
	}
	// A retried batch counts nothing again.
	res, err = s.WriteUsage(ctx, []shared.UsageEvent{{UserID: a, RequestID: "r1", Endpoint: "/usage"}, {UserID: a, RequestID: "r3", Endpoint: "/usage"}})
	if err != nil {
		t.Fatal(err)
	}
	if r := res[0]; !r.Duplicate || r.Replays != 1 || r.FirstUnits != 1 || (r.Total != 3 || r.TotalUnits != 3) && (r.Total != 2 || r.TotalUnits != 2) {
		t.Fatalf("retry: %+v", res[0])
	}
	if res[1] != (shared.UsageResult{Total: 3, TotalUnits: 3}) {
		t.Fatalf("new after retry: %+v", res[1])
	}
	if n, _ := s.TotalRequests(ctx, a); n != 3 {
		t.Fatalf("total a = %d, want 3", n)
	}
	p, err := s.RequestsInLast(ctx, a, 24*time.Hour)
	if err != nil || p.Requests != 3 {
		t.Fatalf("billing a: %+v %v", p, err)
	}
	if p.End.Sub(p.Start) != 24*time.Hour {
		t.Fatalf("period %v", p.End.Sub(p.Start))
	}
	// One invalid event (an empty request id breaks a CHECK) refuses the
	// whole batch: nothing of it counts.
	if _, err := s.WriteUsage(ctx, []shared.UsageEvent{{UserID: a, RequestID: "r4", Endpoint: "/usage"}, {UserID: a, RequestID: "", Endpoint: "/usage"}}); err == nil {
		t.Fatal("want an error for an invalid event")
	}
	if n, _ := s.TotalRequests(ctx, a); n != 3 {
		t.Fatalf("a failed batch changed the total: %d", n)
	}
}

// TestWriteUsageUnits: costs add up per user in batch order, 0 counts as
// 1, a retried id adds nothing (whatever its cost), a negative cost fails
// the whole batch, and the bill's units equal the totals.
func TestWriteUsageUnits(t *testing.T) {
	t.Parallel()
	s := postgres.NewStore(testdb.Pool(t))
	ctx := context.Background()
	a, _ := newUser(t, s, "ua")
	b, _ := newUser(t, s, "ub")
	res, err := s.WriteUsage(ctx, []shared.UsageEvent{
		{UserID: a, RequestID: "u1", Endpoint: "GET /forecast", Units: 5},
		{UserID: b, RequestID: "u1", Endpoint: "GET /forecast", Units: 7},
		{UserID: a, RequestID: "u2", Endpoint: "/usage"}, // no cost: 1
		{UserID: a, RequestID: "u3", Endpoint: "GET /forecast", Units: 10_000},
		{UserID: a, RequestID: "u3", Endpoint: "GET /forecast", Units: 10_000}, // repeated in the batch
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []shared.UsageResult{
		{Total: 1, TotalUnits: 5},
		{Total: 1, TotalUnits: 7},
		{Total: 2, TotalUnits: 6},
		{Total: 3, TotalUnits: 10_006},
		{Total: 3, TotalUnits: 10_006, Duplicate: true, Replays: 1, FirstUnits: 10_000},
	}
	for i := range want {
		got := res[i]
		got.Age = 0
		if got != want[i] {
			t.Fatalf("result %d = %+v, want %+v (all %+v)", i, res[i], want[i], res)
		}
	}
	// A retry with another cost is a duplicate: nothing is added, and the
	// first record's units are reported (the gate refuses the retry).
	res, err = s.WriteUsage(ctx, []shared.UsageEvent{{UserID: a, RequestID: "u1", Endpoint: "x", Units: 99}})
	if r := res[0]; err != nil || r.Total != 3 || r.TotalUnits != 10_006 || !r.Duplicate || r.FirstUnits != 5 {
		t.Fatalf("retry: %+v %v", res, err)
	}
	if _, err := s.WriteUsage(ctx, []shared.UsageEvent{{UserID: a, RequestID: "u4", Endpoint: "x", Units: 3}, {UserID: a, RequestID: "u5", Endpoint: "x", Units: -1}}); err == nil {
		t.Fatal("want an error for a negative cost")
	}
	if n, err := s.TotalUnits(ctx, a); err != nil || n != 10_006 {
		t.Fatalf("total units %d (%v) after a failed batch, want 10006", n, err)
	}
	for user, wantP := range map[int64]shared.Period{a: {Requests: 3, Units: 10_006}, b: {Requests: 1, Units: 7}} {
		p, err := s.RequestsInLast(ctx, user, 24*time.Hour)
		if err != nil || p.Requests != wantP.Requests || p.Units != wantP.Units {
			t.Fatalf("user %d billed %+v (%v), want %d requests, %d units", user, p, err, wantP.Requests, wantP.Units)
		}
	}
}

// TestMigrationBackfillsUnits: rows written before migration 003 (no
// units) are worth their count: totals and rollups are backfilled, events
// default to 1.
func TestMigrationBackfillsUnits(t *testing.T) {
	t.Parallel()
	pool := testdb.Pool(t)
	ctx := context.Background()
	// Recreate the pre-003 state on this database: drop the columns, write
	// as the old code did, then run 003's statements again.
	for _, q := range []string{
		`ALTER TABLE usage_events DROP COLUMN units`,
		`ALTER TABLE usage_totals DROP COLUMN total_units`,
		`ALTER TABLE usage_minutes DROP COLUMN units`,
		`INSERT INTO usage_events (user_id, request_id, endpoint) VALUES (7, 'old-1', '/usage'), (7, 'old-2', '/usage')`,
		`INSERT INTO usage_totals (user_id, total_requests) VALUES (7, 2)`,
		`INSERT INTO usage_minutes (user_id, minute, requests) VALUES (7, date_trunc('minute', now()), 2)`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	sql, err := fs.ReadFile(postgres.Migrations(), "003_cost_units.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, string(sql)); err != nil {
		t.Fatal(err)
	}
	var events, total, minute int64
	if err := pool.QueryRow(ctx, `SELECT (SELECT sum(units) FROM usage_events WHERE user_id = 7),
       (SELECT total_units FROM usage_totals WHERE user_id = 7),
       (SELECT sum(units) FROM usage_minutes WHERE user_id = 7)`).Scan(&events, &total, &minute); err != nil {
		t.Fatal(err)
	}
	if events != 2 || total != 2 || minute != 2 {
		t.Fatalf("after 003: event units %d, total_units %d, minute units %d; want 2 each", events, total, minute)
	}
}

// TestBillingEdges checks the rollup arithmetic: events outside the
// period are not billed, whole minutes come from rollups, partial edge
// minutes from events, and the sum equals a plain count.
func TestBillingEdges(t *testing.T) {
	t.Parallel()
	pool := testdb.Pool(t)
	s := postgres.NewStore(pool)
	ctx := context.Background()
	u, _ := newUser(t, s, "edge")
	// Insert events at chosen times directly, with their rollups, the way
	// WriteUsage would have.
	offsets := []time.Duration{
		-25 * time.Hour,               // outside
		-24*time.Hour - time.Second,   // just outside
		-24*time.Hour + 2*time.Second, // inside, head partial minute (usually)
		-23 * time.Hour,               // whole minute
		-90 * time.Minute,             // whole minute
		-30 * time.Second,             // tail partial minute (often)
		-1 * time.Second,              // tail
		10 * time.Minute,              // future: outside
	}
	insertAt(t, pool, u, offsets)
	p, err := s.RequestsInLast(ctx, u, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var plain, plainUnits int64
	pool.QueryRow(ctx, `SELECT count(*), sum(units) FROM usage_events WHERE user_id=$1 AND created_at >= $2 AND created_at <= $3`, u, p.Start, p.End).Scan(&plain, &plainUnits)
	if p.Requests != plain || plain != 5 {
		t.Fatalf("billed %d, plain count %d, want 5", p.Requests, plain)
	}
	// Event i costs i+1: the five inside are 3+4+5+6+7.
	if p.Units != plainUnits || plainUnits != 25 {
		t.Fatalf("billed %d units, plain sum %d, want 25", p.Units, plainUnits)
	}
}

func insertAt(t *testing.T, pool *pgxpool.Pool, user int64, offsets []time.Duration) {
	t.Helper()
	ctx := context.Background()
	for i, off := range offsets {
		_, err := pool.Exec(ctx, `
WITH e AS (INSERT INTO usage_events (user_id, request_id, endpoint, created_at, units)
           VALUES ($1, $2, '/usage', now() + $3::interval, $4) RETURNING created_at, units)
INSERT INTO usage_minutes (user_id, minute, requests, units)
SELECT $1, date_trunc('minute', created_at), 1, units FROM e
ON CONFLICT (user_id, minute) DO UPDATE SET requests = usage_minutes.requests + 1, units = usage_minutes.units + EXCLUDED.units`,
			user, fmt.Sprintf("seed-%d", i), off, i+1)
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestConcurrentBatchesNoDeadlock runs many overlapping batches over the
// same users from many goroutines, as many instances would.
func TestConcurrentBatchesNoDeadlock(t *testing.T) {
	t.Parallel()
	s := postgres.NewStore(testdb.Pool(t))
	ctx := context.Background()
	var users []int64
	for i := 0; i < 5; i++ {
		id, _ := newUser(t, s, fmt.Sprintf("c%d", i))
		users = append(users, id)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; b < 20; b++ {
				var batch []shared.UsageEvent
				for i := 0; i < 10; i++ {
					// reverse order in odd goroutines
					u := users[(i+g)%len(users)]
					if g%2 == 1 {
						u = users[len(users)-1-(i+g)%len(users)]
					}
					batch = append(batch, shared.UsageEvent{UserID: u, RequestID: fmt.Sprintf("g%d-b%d-i%d", g, b, i), Endpoint: "/usage", Units: int64(i % 3)})
				}
				if _, err := s.WriteUsage(ctx, batch); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var sum, sumUnits int64
	for _, u := range users {
		n, _ := s.TotalRequests(ctx, u)
		sum += n
		p, _ := s.RequestsInLast(ctx, u, 24*time.Hour)
		units, _ := s.TotalUnits(ctx, u)
		if p.Requests != n || p.Units != units {
			t.Errorf("user %d: billed %d requests and %d units, totals %d and %d", u, p.Requests, p.Units, n, units)
		}
		sumUnits += units
	}
	if sum != 8*20*10 {
		t.Fatalf("sum of totals %d, want %d", sum, 8*20*10)
	}
	// Units per batch of 10: i%3 is 0,1,2,0,1,2,0,1,2,0, with 0 counting
	// as 1: 4+3+6 = 13.
	if sumUnits != 8*20*13 {
		t.Fatalf("sum of units %d, want %d", sumUnits, 8*20*13)
	}
}

func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	url := testdb.DatabaseURL(t) // already migrated: a re-run is a no-op
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- postgres.Migrate(context.Background(), url) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestUnavailable(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none?connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s := postgres.NewStore(pool)
	if err := s.Ping(context.Background()); shared.ErrorCode(err) != shared.EUnavailable {
		t.Fatalf("ping of a closed port: %v, want EUnavailable", err)
	}
	if _, err := s.LookupKey(context.Background(), apikey.Digest{}); shared.ErrorCode(err) != shared.EUnavailable {
		t.Fatalf("lookup: %v, want EUnavailable", err)
	}
	s.Close()
	if err := s.Ping(context.Background()); !errors.Is(err, shared.ErrShuttingDown) {
		t.Fatalf("ping after Close: %v, want ErrShuttingDown", err)
	}
}

func TestNormalizeURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"postgresql+psycopg2://u:p@h:5432/apidb": "postgres://u:p@h:5432/apidb",
		"postgres://u@h/db":                      "postgres://u@h/db",
		"host=h dbname=d":                        "host=h dbname=d",
	} {
		if got := postgres.NormalizeURL(in); got != want {
			t.Errorf("NormalizeURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestReplays: every replay of a recorded id is counted on its first
// record, in batch order, with the record's age and units.
func TestReplays(t *testing.T) {
	t.Parallel()
	s := postgres.NewStore(testdb.Pool(t))
	ctx := context.Background()
	ev := shared.UsageEvent{UserID: 7, RequestID: "replayed-1", Endpoint: "/verify", Units: 4}
	if _, err := s.WriteUsage(ctx, []shared.UsageEvent{ev}); err != nil {
		t.Fatal(err)
	}
	res, err := s.WriteUsage(ctx, []shared.UsageEvent{ev, ev})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if !r.Duplicate || r.Replays != i+1 || r.FirstUnits != 4 || r.Age <= 0 || r.Age > time.Minute || r.Total != 1 || r.TotalUnits != 4 {
			t.Fatalf("replay %d: %+v", i+1, r)
		}
	}
	res, err = s.WriteUsage(ctx, []shared.UsageEvent{ev})
	if err != nil || res[0].Replays != 3 {
		t.Fatalf("third replay: %+v %v", res, err)
	}
}

// TestRelease: a call released by its token's digest is off the totals
// and the bill, once; an unknown digest is ENotFound; a second release
// and a release after the window are EConflict.
func TestRelease(t *testing.T) {
	t.Parallel()
	s := postgres.NewStore(testdb.Pool(t))
	ctx := context.Background()
	digest := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }
	_, err := s.WriteUsage(ctx, []shared.UsageEvent{
		{UserID: 9, RequestID: "kept-0001", Units: 2},
		{UserID: 9, RequestID: "freed-0001", Units: 5, ReleaseHash: digest(1)},
		{UserID: 9, RequestID: "late-00001", Units: 1, ReleaseHash: digest(2)},
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Release(ctx, digest(1), time.Minute)
	if err != nil || r.UserID != 9 || r.RequestID != "freed-0001" || r.Units != 5 {
		t.Fatalf("release: %+v %v", r, err)
	}
	p, err := s.RequestsInLast(ctx, 9, time.Hour)
	if err != nil || p.Requests != 2 || p.Units != 3 {
		t.Fatalf("bill after release: %+v %v, want 2 requests and 3 units", p, err)
	}
	if total, err := s.TotalUnits(ctx, 9); err != nil || total != 3 {
		t.Fatalf("total units %d %v, want 3", total, err)
	}
	if _, err := s.Release(ctx, digest(1), time.Minute); shared.ErrorCode(err) != shared.EConflict {
		t.Fatalf("second release: %v", err)
	}
	if _, err := s.Release(ctx, digest(3), time.Minute); shared.ErrorCode(err) != shared.ENotFound {
		t.Fatalf("unknown digest: %v", err)
	}
	if _, err := s.Release(ctx, digest(2), time.Nanosecond); shared.ErrorCode(err) != shared.EConflict {
		t.Fatalf("after the window: %v", err)
	}
	res, err := s.WriteUsage(ctx, []shared.UsageEvent{{UserID: 9, RequestID: "freed-0001", Units: 5}})
	if err != nil || !res[0].Duplicate || !res[0].Released {
		t.Fatalf("replay of a released call: %+v %v", res, err)
	}
}

// TestUsageHistoryFromRollups: history and top customers read the minute
// rollups written with the events (and denials), bucketed and summed.
func TestUsageHistoryFromRollups(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.Pool(t)
	s := postgres.NewStore(pool)
	var users []int64
	for _, name := range []string{"ha", "hb"} {
		k, _ := apikey.Generate(nil)
		u, err := s.CreateUser(ctx, name, name+"@example.com", apikey.Hash(k), apikey.Display(k))
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, u.ID)
	}
	// Rollup rows at known minutes (the write path's own rows are at now()).
	h := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	rows := []struct {
		user           int64
		minute         time.Time
		requests, unit int64
	}{
		{users[0], h, 2, 5}, {users[0], h.Add(59 * time.Minute), 1, 1}, {users[0], h.Add(time.Hour), 4, 4},
		{users[1], h.Add(30 * time.Minute), 3, 3},
	}
	for _, r := range rows {
		if _, err := pool.Exec(ctx, `INSERT INTO usage_minutes (user_id, minute, requests, units) VALUES ($1, $2, $3, $4)`, r.user, r.minute, r.requests, r.unit); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddDenials(ctx, []shared.Denial{{UserID: users[1], Minute: h.Add(30 * time.Minute), Count: 7}, {UserID: users[1], Minute: h.Add(30*time.Minute + 10*time.Second), Count: 1}}); err != nil {
		t.Fatal(err)
	}
	rng, err := history.Parse(url.Values{"from": {"2026-12-06T10:00:00Z"}, "to": {"2026-12-06T12:00:00Z"}, "granularity": {"hour"}}, h)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.UsageHistory(ctx, users[0], rng)
	if err != nil {
		t.Fatal(err)
	}
	want := []history.Point{{Start: h, Requests: 3, Units: 6}, {Start: h.Add(time.Hour), Requests: 4, Units: 4}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("user history %v, want %v", got, want)
	}
	all, err := s.UsageHistory(ctx, 0, rng)
	if err != nil {
		t.Fatal(err)
	}
	want = []history.Point{{Start: h, Requests: 6, Units: 9, Denied: 8}, {Start: h.Add(time.Hour), Requests: 4, Units: 4}}
	if fmt.Sprint(all) != fmt.Sprint(want) {
		t.Fatalf("all history %v, want %v", all, want)
	}
	top, err := s.TopCustomers(ctx, rng, history.ByDenied, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(top) != 1 || top[0].Username != "hb" || top[0].Denied != 8 || top[0].Requests != 3 {
		t.Fatalf("top by denied %+v", top)
	}
	top, err = s.TopCustomers(ctx, rng, history.ByRequests, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(top) != 1 || top[0].Username != "ha" || top[0].Requests != 7 || top[0].Units != 10 {
		t.Fatalf("top by requests %+v", top)
	}
}
