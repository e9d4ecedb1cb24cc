package gate_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/auth"
	"github.com/ratebill/platform/shared/gate"
	"github.com/ratebill/platform/shared/meter"
	"github.com/ratebill/platform/shared/ratelimit"
	"github.com/ratebill/platform/shared/testdb"
)

// Redis losing its data, for one user: the tests share one Redis server,
// so instead of FLUSHALL (tools/e2e does that, and a restart without
// data, on a server of its own) they delete every key of the user's
// quota, which is what a loss looks like to that user.
func loseUserData(t *testing.T, userID int64) {
	t.Helper()
	rdb := testdb.Redis(t)
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, fmt.Sprintf("*{user:%d}*", userID)).Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("user %d's keys: %v %v", userID, keys, err)
	}
	if err := rdb.Del(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
}

var callSeq atomic.Int64

// newID is a request id no other call of the test run uses.
func newID() string { return fmt.Sprintf("call-%08d", callSeq.Add(1)) }

// admitN admits n calls of cost each and returns the last metering.
func admitN(t *testing.T, g *gate.Gate, p shared.Principal, n int, cost int64) gate.Metering {
	t.Helper()
	var m gate.Metering
	for range n {
		var err error
		m, err = g.Admit(context.Background(), p, gate.Call{Endpoint: "/usage", Cost: cost, RequestID: newID()})
		if err != nil || !m.Admitted() {
			t.Fatalf("admit: %+v %v", m, err)
		}
	}
	return m
}

// sameWindow runs scenario until its first and last decisions fall in
// one window (a window may end during a run; short windows often do).
func sameWindow(t *testing.T, scenario func(t *testing.T) (first, last time.Time)) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		first, last := scenario(t)
		if first.Equal(last) {
			return
		}
		if attempt == 3 {
			t.Fatalf("windows kept ending mid-test (%v, %v)", first, last)
		}
	}
}

// TestLostWindowIsRebuilt: a user who used 50 of 50 units is still
// refused after Redis lost its data, in the same window: the window is
// rebuilt from the ledger. On main before the rebuild this admitted 50
// more.
func TestLostWindowIsRebuilt(t *testing.T) {
	t.Parallel()
	limit := ratelimit.Limit{Requests: 50, Window: time.Hour}
	sameWindow(t, func(t *testing.T) (time.Time, time.Time) {
		b := setup(t, options{gate: gate.Options{UserLimit: limit}})
		p, err := b.gate.Authenticate(context.Background(), b.key)
		if err != nil {
			t.Fatal(err)
		}
		admitN(t, b.gate, p, 40, 1)
		first := admitN(t, b.gate, p, 2, 5)
		if first.Limit.Used != 50 {
			t.Fatalf("used %d, want 50", first.Limit.Used)
		}
		loseUserData(t, b.userID)
		m, err := b.gate.Admit(context.Background(), p, gate.Call{Endpoint: "/usage", RequestID: newID()})
		if err != nil || m.Admitted() || m.Limit.Used != 50 || m.Limit.Remaining != 0 {
			t.Fatalf("after the loss: %+v %v, want refused with 50 used", m.Limit, err)
		}
		if b.limiter.Rebuilds() < 2 { // the user's first call, and after the loss
			t.Fatalf("%d rebuilds", b.limiter.Rebuilds())
		}
		return first.Limit.WindowStart, m.Limit.WindowStart
	})
}

// TestLostWindowReleasesSubtracted: released calls are not in the
// rebuilt window (the ledger excludes them, as the refund took them off
// the counter).
func TestLostWindowReleasesSubtracted(t *testing.T) {
	t.Parallel()
	limit := ratelimit.Limit{Requests: 20, Window: time.Hour}
	sameWindow(t, func(t *testing.T) (time.Time, time.Time) {
		b := setup(t, options{gate: gate.Options{UserLimit: limit}})
		g := b.gate.WithReleaser(b.store)
		ctx := context.Background()
		p, err := g.Authenticate(ctx, b.key)
		if err != nil {
			t.Fatal(err)
		}
		var first time.Time
		var tokens []string
		for i := range 5 {
			m, err := g.Admit(ctx, p, gate.Call{Endpoint: "/verify", Cost: 4, Releasable: true, RequestID: fmt.Sprintf("rel-%05d", i)})
			if err != nil || !m.Admitted() {
				t.Fatalf("%+v %v", m, err)
			}
			first = m.Limit.WindowStart
			tokens = append(tokens, m.ReleaseToken)
		}
		for _, tok := range tokens[:2] {
			if _, err := g.Release(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}
		loseUserData(t, b.userID)
		// 12 units held: 8 fit, 9 do not.
		m, err := g.Admit(ctx, p, gate.Call{Endpoint: "/verify", Cost: 9, RequestID: newID()})
		if err != nil || m.Admitted() || m.Limit.Used != 12 {
			t.Fatalf("cost 9 after the loss: %+v %v, want refused on 12 used", m.Limit, err)
		}
		m, err = g.Admit(ctx, p, gate.Call{Endpoint: "/verify", Cost: 8, RequestID: newID()})
		if err != nil || !m.Admitted() || m.Limit.Used != 20 {
			t.Fatalf("cost 8 after the loss: %+v %v, want admitted to 20", m.Limit, err)
		}
		return first, m.Limit.WindowStart
	})
}

// TestLostShortWindow: a window shorter than a minute is rebuilt from
// the events alone.
func TestLostShortWindow(t *testing.T) {
	t.Parallel()
	limit := ratelimit.Limit{Requests: 5, Window: 10 * time.Second}
	sameWindow(t, func(t *testing.T) (time.Time, time.Time) {
		b := setup(t, options{gate: gate.Options{UserLimit: limit}})
		p, err := b.gate.Authenticate(context.Background(), b.key)
		if err != nil {
			t.Fatal(err)
		}
		first := admitN(t, b.gate, p, 5, 1)
		loseUserData(t, b.userID)
		m, err := b.gate.Admit(context.Background(), p, gate.Call{Endpoint: "/usage", RequestID: newID()})
		if err != nil {
			t.Fatal(err)
		}
		if first.Limit.WindowStart.Equal(m.Limit.WindowStart) && (m.Admitted() || m.Limit.Used != 5) {
			t.Fatalf("after the loss: %+v, want refused with 5 used", m.Limit)
		}
		return first.Limit.WindowStart, m.Limit.WindowStart
	})
}

// TestLostWindowUnderLoad: two instances (each its own Redis client,
// limiter and usage recorder, one database) under concurrent load lose
// the user's Redis data mid-window. The bound: the units admitted in
// the window never exceed the limit plus the calls in flight at the loss
// (admitted by Redis, not yet in the ledger when it is read). Calls in
// flight are counted from the callers' side (inside Admit at the loss),
// an upper bound of those.
func TestLostWindowUnderLoad(t *testing.T) {
	t.Parallel()
	limit := ratelimit.Limit{Requests: 300, Window: time.Hour}
	b := setup(t, options{gate: gate.Options{UserLimit: limit}})
	ropt, err := redis.ParseURL(testdb.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	rdb2 := redis.NewClient(ropt)
	t.Cleanup(func() { rdb2.Close() })
	rec2 := meter.New(b.store, meter.Options{Timeout: 2 * time.Second})
	t.Cleanup(func() { rec2.Close(context.Background()) })
	gates := []*gate.Gate{
		b.gate,
		gate.New(auth.New(b.store, time.Minute, 100), ratelimit.New(rdb2).WithLedger(b.store), rec2, gate.Options{UserLimit: limit}),
	}
	p, err := b.gate.Authenticate(context.Background(), b.key)
	if err != nil {
		t.Fatal(err)
	}
	const workers = 16
	var (
		inside   atomic.Int64 // callers inside Admit
		mu       sync.Mutex
		admitted = map[time.Time]int64{} // units per window start
		lost     atomic.Bool
		after    atomic.Int64 // decisions after the loss
		wg       sync.WaitGroup
		stop     = make(chan struct{})
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				inside.Add(1)
				m, err := gates[w%2].Admit(context.Background(), p, gate.Call{Endpoint: "/usage", RequestID: newID()})
				inside.Add(-1)
				if err != nil {
					t.Error(err)
					return
				}
				if lost.Load() {
					after.Add(1)
				}
				if m.Admitted() {
					mu.Lock()
					admitted[m.Limit.WindowStart] += m.Cost
					mu.Unlock()
				}
			}
		}()
	}
	// Lose the data once half the limit is used.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		var n int64
		for _, v := range admitted {
			n += v
		}
		mu.Unlock()
		if n >= limit.Requests/2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d admitted in 30 s", n)
		}
		time.Sleep(time.Millisecond) // polling progress, not synchronising
	}
	inFlight := inside.Load()
	loseUserData(t, b.userID)
	lost.Store(true)
	// Keep the load on until 2 x limit decisions were taken after the
	// loss: without the rebuild, a whole second limit would be admitted.
	for after.Load() < 2*limit.Requests && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if after.Load() < 2*limit.Requests {
		t.Fatalf("only %d decisions after the loss", after.Load())
	}
	var total int64
	for ws, n := range admitted {
		total += n
		if n > limit.Requests+inFlight {
			t.Errorf("window %v: %d units admitted, over the bound of %d (limit) + %d (in flight at the loss)", ws, n, limit.Requests, inFlight)
		}
	}
	billed, err := b.store.TotalUnits(context.Background(), b.userID)
	if err != nil || billed != total {
		t.Fatalf("billed %d (%v), admitted %d", billed, err, total)
	}
	t.Logf("admitted %d units in %d window(s) for a limit of %d; %d calls in flight at the loss; %d decisions after it", total, len(admitted), limit.Requests, inFlight, after.Load())
}
