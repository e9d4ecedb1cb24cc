package postgres_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/postgres"
	"github.com/ratebill/platform/shared/testdb"
)

// TestUnitsSince: the ledger count a lost rate-limit window is rebuilt
// from equals a plain sum over the events (released calls excluded),
// whether whole minutes come from the rollups or everything from the
// events, for starts inside a minute, on a minute and in the future.
func TestUnitsSince(t *testing.T) {
	t.Parallel()
	pool := testdb.Pool(t)
	s := postgres.NewStore(pool)
	ctx := context.Background()
	u, _ := newUser(t, s, "ledger")
	insertAt(t, pool, u, []time.Duration{
		-3 * time.Hour, -61 * time.Minute, -59*time.Minute - 30*time.Second,
		-10 * time.Minute, -65 * time.Second, -20 * time.Second, -time.Second,
	})
	// Two calls now, one of them released: it counts nowhere.
	digest := bytes.Repeat([]byte{7}, 32)
	if _, err := s.WriteUsage(ctx, []shared.UsageEvent{
		{UserID: u, RequestID: "kept-00001", Units: 11},
		{UserID: u, RequestID: "freed-0001", Units: 13, ReleaseHash: digest},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Release(ctx, digest, time.Minute); err != nil {
		t.Fatal(err)
	}
	var now time.Time
	if err := pool.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		since time.Time
	}{
		{"two hours", now.Add(-2 * time.Hour)},
		{"an hour", now.Add(-time.Hour)},
		{"on a minute", now.Truncate(time.Minute).Add(-5 * time.Minute)},
		{"70 s", now.Add(-70 * time.Second)},
		{"30 s", now.Add(-30 * time.Second)},
		{"everything", now.Add(-24 * time.Hour)},
		{"future", now.Add(time.Minute)},
	}
	for _, tt := range tests {
		var want int64
		if err := pool.QueryRow(ctx, `SELECT coalesce(sum(units), 0) FROM usage_events WHERE user_id = $1 AND created_at >= $2 AND released_at IS NULL`, u, tt.since).Scan(&want); err != nil {
			t.Fatal(err)
		}
		for _, eventsOnly := range []bool{false, true} {
			got, err := s.UnitsSince(ctx, u, tt.since, eventsOnly)
			if err != nil || got != want {
				t.Errorf("%s (events only %v): %d %v, want %d", tt.name, eventsOnly, got, err, want)
			}
		}
	}
	if got, _ := s.UnitsSince(ctx, u, now.Add(-24*time.Hour), false); got != 1+2+3+4+5+6+7+11 {
		t.Fatalf("everything: %d, want %d (the released 13 excluded)", got, 1+2+3+4+5+6+7+11)
	}
	if got, err := s.UnitsSince(ctx, u+1, now.Add(-24*time.Hour), false); err != nil || got != 0 {
		t.Fatalf("another user: %d %v", got, err)
	}
}
