package meter_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ratebill/platform/shared/meter"
)

// TestDenialsBatched: many concurrent denials of one user cost no write
// until the interval has passed, then one statement adds them all to the
// user's minute in the rollups (real Postgres); Flush writes the rest.
func TestDenialsBatched(t *testing.T) {
	t.Parallel()
	s, pool, user := newStorePoolUser(t)
	d := meter.NewDenials(s, time.Hour, nil) // no flush on its own within the test
	var wg sync.WaitGroup
	for i := 0; i < 500; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); d.Note(user) }()
	}
	wg.Wait()
	denied := func() int64 {
		var n int64
		if err := pool.QueryRow(context.Background(), `SELECT coalesce(sum(denied), 0) FROM usage_minutes WHERE user_id = $1`, user).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := denied(); n != 0 {
		t.Fatalf("%d denials written before the interval passed", n)
	}
	if err := d.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := denied(); n != 500 {
		t.Fatalf("%d denials written, want 500", n)
	}
	// A row of denials only leaves the admitted counts alone.
	var req, units int64
	if err := pool.QueryRow(context.Background(), `SELECT sum(requests), sum(units) FROM usage_minutes WHERE user_id = $1`, user).Scan(&req, &units); err != nil {
		t.Fatal(err)
	}
	if req != 0 || units != 0 {
		t.Fatalf("requests %d units %d, want 0", req, units)
	}
	// Nothing pending: a second flush writes nothing.
	if err := d.Flush(context.Background()); err != nil || denied() != 500 {
		t.Fatalf("second flush: %v, %d", err, denied())
	}
}

// TestDenialsFlushOnCadence: once the interval has passed, the next call
// starts a flush in the background; it lands without Flush.
func TestDenialsFlushOnCadence(t *testing.T) {
	t.Parallel()
	s, pool, user := newStorePoolUser(t)
	d := meter.NewDenials(s, time.Second, nil)
	d.Note(user)
	d.Note(user)
	deadline := time.Now().Add(30 * time.Second)
	for {
		d.MaybeFlush() // what the gate does on every request
		var n int64
		if err := pool.QueryRow(context.Background(), `SELECT coalesce(sum(denied), 0) FROM usage_minutes WHERE user_id = $1`, user).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 2 {
			return
		}
		if n > 2 || time.Now().After(deadline) {
			t.Fatalf("%d denials written, want 2", n)
		}
		time.Sleep(50 * time.Millisecond) // polling a real condition, bounded by the deadline
	}
}
