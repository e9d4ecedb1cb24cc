package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratebill/platform/shared/ratelimit"
	"github.com/ratebill/platform/shared/testdb"
)

// ledgerFunc is a Ledger from a function; the ledger itself (Postgres)
// is tested in package postgres and, with the gate, in package gate.
type ledgerFunc func(ctx context.Context, user int64, since time.Time, eventsOnly bool) (int64, error)

func (f ledgerFunc) UnitsSince(ctx context.Context, user int64, since time.Time, eventsOnly bool) (int64, error) {
	return f(ctx, user, since, eventsOnly)
}

var _ ratelimit.Ledger = ledgerFunc(nil)

// loseUser deletes every key of user's quota, as a loss of Redis's data
// would, without touching the other tests sharing the server.
func loseUser(t *testing.T, rdb redis.UniversalClient, user int64) {
	t.Helper()
	ctx := context.Background()
	var keys []string
	var err error
	if ring, ok := rdb.(*redis.Ring); ok {
		err = ring.ForEachShard(ctx, func(ctx context.Context, c *redis.Client) error {
			k, err := c.Keys(ctx, fmt.Sprintf("*{user:%d}*", user)).Result()
			keys = append(keys, k...)
			return err
		})
	} else {
		keys, err = rdb.Keys(ctx, fmt.Sprintf("*{user:%d}*", user)).Result()
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		t.Fatalf("user %d has no keys to lose", user)
	}
	for _, k := range keys {
		if err := rdb.Del(ctx, k).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRebuildFromLedger: after the user's data is lost, the next decision
// seeds the window from the ledger (counted from the window's start,
// LedgerSkew earlier) and decides against it; later decisions need no
// ledger; a loss without a ledger starts the window from zero.
func TestRebuildFromLedger(t *testing.T) {
	t.Parallel()
	for _, tc := range versionClients() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rdb := tc.rdb(t)
			ctx := context.Background()
			user := uniqueUser()
			limit := ratelimit.Limit{Requests: 50, Window: time.Hour}
			var asked atomic.Int64
			var held atomic.Int64 // what the ledger answers
			var gotSince atomic.Value
			lim := ratelimit.New(rdb).WithLedger(ledgerFunc(func(_ context.Context, u int64, since time.Time, eventsOnly bool) (int64, error) {
				if u != user || eventsOnly {
					t.Errorf("ledger asked for user %d eventsOnly %v", u, eventsOnly)
				}
				asked.Add(1)
				gotSince.Store(since)
				return held.Load(), nil
			}))
			// A user never seen: one rebuild (the ledger is empty), then
			// normal decisions.
			r, err := lim.AllowUser(ctx, user, limit, 30)
			if err != nil || !r.Allowed || r.Used != 30 || asked.Load() != 1 || lim.Rebuilds() != 1 {
				t.Fatalf("first decision %+v %v; ledger asked %d times, %d rebuilds; want admitted, 30 used, 1 and 1", r, err, asked.Load(), lim.Rebuilds())
			}
			if since := gotSince.Load().(time.Time); !since.Equal(r.WindowStart.Add(-ratelimit.LedgerSkew)) {
				t.Fatalf("ledger counted since %v, want the window start %v less %v", since, r.WindowStart, ratelimit.LedgerSkew)
			}
			for range 3 {
				if r, err = lim.AllowUser(ctx, user, limit, 5); err != nil || !r.Allowed {
					t.Fatalf("%+v %v", r, err)
				}
			}
			if asked.Load() != 1 {
				t.Fatalf("ledger asked %d times on the normal path, want once", asked.Load())
			}
			// 45 used; the ledger has them. Lose Redis's data.
			held.Store(45)
			loseUser(t, rdb, user)
			r, err = lim.AllowUser(ctx, user, limit, 6)
			if err != nil || r.Allowed || r.Used != 45 || asked.Load() != 2 {
				t.Fatalf("after the loss: %+v %v, ledger asked %d times; want cost 6 refused with 45 used, asked twice", r, err, asked.Load())
			}
			if r, err = lim.AllowUser(ctx, user, limit, 5); err != nil || !r.Allowed || r.Used != 50 {
				t.Fatalf("after the rebuild: %+v %v, want the last 5 admitted", r, err)
			}
			if r, err = lim.AllowUser(ctx, user, limit, 0); err != nil || r.Used != 50 || asked.Load() != 2 {
				t.Fatalf("peek: %+v %v, asked %d", r, err, asked.Load())
			}
			// A peek (cost 0) after a loss rebuilds too: looking reports
			// the truth.
			loseUser(t, rdb, user)
			held.Store(50)
			if r, err = lim.AllowUser(ctx, user, limit, 0); err != nil || r.Used != 50 || r.Remaining != 0 || asked.Load() != 3 {
				t.Fatalf("peek after a loss: %+v %v, asked %d", r, err, asked.Load())
			}
			// Without a ledger, nothing is rebuilt (the behaviour before).
			loseUser(t, rdb, user)
			plain := ratelimit.New(rdb)
			if r, err = plain.AllowUser(ctx, user, limit, 1); err != nil || !r.Allowed || r.Used != 1 {
				t.Fatalf("without a ledger: %+v %v", r, err)
			}
		})
	}
}

// TestRebuildOnWindowChange: when a user's window length changes (a limit
// override set or cleared) while the counter's window still overlaps the
// new one, the new window is seeded from the ledger: the units admitted
// in it under the old length count, whatever the age of the user's
// marker. (Before, an old marker let a shortened window start from zero
// and a young one rebuilt it: the test of package gate saw both.)
func TestRebuildOnWindowChange(t *testing.T) {
	t.Parallel()
	for _, tc := range versionClients() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rdb := tc.rdb(t)
			ctx := context.Background()
			user := uniqueUser()
			var asked, held atomic.Int64
			lim := ratelimit.New(rdb).WithLedger(ledgerFunc(func(_ context.Context, u int64, _ time.Time, _ bool) (int64, error) {
				asked.Add(1)
				return held.Load(), nil
			}))
			hour := ratelimit.Limit{Requests: 50, Window: time.Hour}
			minute := ratelimit.Limit{Requests: 15, Window: time.Minute}
			first, err := lim.AllowUser(ctx, user, hour, 10)
			if err != nil || !first.Allowed || asked.Load() != 1 {
				t.Fatalf("first decision %+v %v, asked %d", first, err, asked.Load())
			}
			// A marker from long before any window of the test (Redis's
			// clock): no loss to suspect, only the change of length.
			if err := rdb.HSet(ctx, fmt.Sprintf("rl:u:{user:%d}", user), "m", first.WindowStart.Add(-48*time.Hour).UnixMicro()).Err(); err != nil {
				t.Fatal(err)
			}
			if r, err := lim.AllowUser(ctx, user, hour, 2); err != nil || !r.Allowed || r.Used != 12 || asked.Load() != 1 {
				t.Fatalf("same length, old marker: %+v %v, asked %d; want 12 used, no ledger", r, err, asked.Load())
			}
			// Down to a minute: the ledger holds 12 units in it.
			held.Store(12)
			r, err := lim.AllowUser(ctx, user, minute, 5)
			if err != nil || r.Allowed || r.Used != 12 || asked.Load() != 2 {
				t.Fatalf("shortened window: %+v %v, asked %d; want 5 refused on 12 used, from the ledger", r, err, asked.Load())
			}
			if r, err = lim.AllowUser(ctx, user, minute, 3); err != nil || !r.Allowed || r.Used != 15 || asked.Load() != 2 {
				t.Fatalf("after the seed: %+v %v, asked %d", r, err, asked.Load())
			}
			// Back to the hour: its units come from the ledger again.
			held.Store(40)
			if r, err = lim.AllowUser(ctx, user, hour, 5); err != nil || !r.Allowed || r.Used != 45 || asked.Load() != 3 {
				t.Fatalf("lengthened window: %+v %v, asked %d; want 45 used", r, err, asked.Load())
			}
			if r, err = lim.AllowUser(ctx, user, hour, 5); err != nil || !r.Allowed || r.Used != 50 || asked.Load() != 3 {
				t.Fatalf("after the second seed: %+v %v, asked %d", r, err, asked.Load())
			}
		})
	}
}

// TestRebuildConcurrent: many concurrent decisions on two limiters (two
// instances) after a loss: the window is seeded from the ledger, whoever
// seeds, as many times as they race, and the units admitted on top are
// exactly what the limit leaves.
func TestRebuildConcurrent(t *testing.T) {
	t.Parallel()
	for _, tc := range versionClients() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			user := uniqueUser()
			limit := ratelimit.Limit{Requests: 100, Window: time.Hour}
			const held = 37
			var asked atomic.Int64
			ledger := ledgerFunc(func(context.Context, int64, time.Time, bool) (int64, error) {
				asked.Add(1)
				return held, nil
			})
			rdbs := []redis.UniversalClient{tc.rdb(t), tc.rdb(t)}
			if tc.name == "miniredis" {
				rdbs[1] = rdbs[0] // two clients of one miniredis
			}
			lims := []*ratelimit.Limiter{ratelimit.New(rdbs[0]).WithLedger(ledger), ratelimit.New(rdbs[1]).WithLedger(ledger)}
			var (
				admitted atomic.Int64
				wg       sync.WaitGroup
				start    = make(chan struct{})
			)
			for i := range 200 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					r, err := lims[i%2].AllowUser(ctx, user, limit, 1)
					if err != nil {
						t.Error(err)
						return
					}
					if r.Allowed {
						admitted.Add(1)
					}
				}()
			}
			close(start)
			wg.Wait()
			if admitted.Load() != limit.Requests-held {
				t.Fatalf("admitted %d on top of the ledger's %d, want %d", admitted.Load(), held, limit.Requests-held)
			}
			if n := lims[0].Rebuilds() + lims[1].Rebuilds(); n < 1 || n > 2*3 || asked.Load() > 200 {
				t.Fatalf("%d rebuilds, ledger asked %d times", n, asked.Load())
			}
			t.Logf("%d rebuilds, ledger asked %d times for 200 concurrent decisions on 2 limiters", lims[0].Rebuilds()+lims[1].Rebuilds(), asked.Load())
		})
	}
}

// TestSeedNeverLowers: a rebuilder whose ledger reading is older (lower)
// than the counter another rebuilder seeded and decisions since raised
// does not lower it.
func TestSeedNeverLowers(t *testing.T) {
	t.Parallel()
	rdb := testdb.Redis(t)
	ctx := context.Background()
	user := uniqueUser()
	limit := ratelimit.Limit{Requests: 10, Window: time.Hour}
	var held atomic.Int64
	held.Store(4)
	lim := ratelimit.New(rdb).WithLedger(ledgerFunc(func(context.Context, int64, time.Time, bool) (int64, error) {
		return held.Load(), nil
	}))
	if r, err := lim.AllowUser(ctx, user, limit, 4); err != nil || !r.Allowed || r.Used != 8 {
		t.Fatalf("%+v %v, want 4 on top of the ledger's 4", r, err)
	}
	// The marker is lost alone (the counter survives, say, an eviction
	// of the user's hash): the rebuild keeps the larger count.
	if err := rdb.Del(ctx, fmt.Sprintf("rl:u:{user:%d}", user)).Err(); err != nil {
		t.Fatal(err)
	}
	held.Store(2)
	if r, err := lim.AllowUser(ctx, user, limit, 3); err != nil || r.Allowed || r.Used != 8 {
		t.Fatalf("%+v %v, want cost 3 refused on 8 used", r, err)
	}
}

// TestRebuildLedgerDown: when the ledger cannot answer, the decision is
// an error (the gate fails closed: 503), never an unlimited admission,
// and the window is rebuilt once it answers again.
func TestRebuildLedgerDown(t *testing.T) {
	t.Parallel()
	rdb := testdb.Redis(t)
	ctx := context.Background()
	user := uniqueUser()
	limit := ratelimit.Limit{Requests: 10, Window: time.Hour}
	down := errors.New("ledger down")
	var failing atomic.Bool
	failing.Store(true)
	lim := ratelimit.New(rdb).WithLedger(ledgerFunc(func(context.Context, int64, time.Time, bool) (int64, error) {
		if failing.Load() {
			return 0, down
		}
		return 10, nil
	}))
	for range 3 {
		if r, err := lim.AllowUser(ctx, user, limit, 1); !errors.Is(err, down) || r.Allowed {
			t.Fatalf("%+v %v, want the ledger's error", r, err)
		}
	}
	failing.Store(false)
	if r, err := lim.AllowUser(ctx, user, limit, 1); err != nil || r.Allowed || r.Used != 10 {
		t.Fatalf("%+v %v, want refused on the ledger's 10", r, err)
	}
}

// countScripts counts the script calls a client sends.
type countScripts struct{ n atomic.Int64 }

func (c *countScripts) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (c *countScripts) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}

func (c *countScripts) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmds)
	}
}

// TestRebuildCostsNothingNormally: with a ledger, a decision on a window
// that needs no rebuild is still one Redis command (the marker is read
// in the decision's own script).
func TestRebuildCostsNothingNormally(t *testing.T) {
	t.Parallel()
	rdb := testdb.Redis(t)
	var c countScripts
	rdb.AddHook(&c)
	ctx := context.Background()
	user := uniqueUser()
	lim := ratelimit.New(rdb).WithLedger(ledgerFunc(func(context.Context, int64, time.Time, bool) (int64, error) { return 0, nil }))
	limit := ratelimit.Limit{Requests: 100, Window: time.Hour}
	if _, err := lim.AllowUser(ctx, user, limit, 1); err != nil { // the first rebuilds (a user never seen)
		t.Fatal(err)
	}
	before := c.n.Load()
	for range 10 {
		if _, err := lim.AllowUser(ctx, user, limit, 1); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.n.Load() - before; n != 10 {
		t.Fatalf("%d Redis commands for 10 decisions, want 10", n)
	}
}
