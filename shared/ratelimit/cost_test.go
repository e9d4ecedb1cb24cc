package ratelimit_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratebill/platform/shared/ratelimit"
	"github.com/ratebill/platform/shared/testdb"
)

// TestCostArithmetic: a call takes its whole cost or nothing; a call that
// does not fit leaves room for a cheaper one; Refund gives back n.
func TestCostArithmetic(t *testing.T) {
	t.Parallel()
	lim, mr := miniLimiter(t)
	ctx := context.Background()
	mr.SetTime(time.Date(2026, 11, 26, 10, 0, 45, 0, time.UTC))
	limit := ratelimit.Limit{Requests: 10, Window: time.Minute}
	tests := []struct {
		name        string
		cost        int64
		wantAllowed bool
		wantUsed    int64
	}{
		{"takes 4", 4, true, 4},
		{"7 does not fit", 7, false, 4},
		{"6 fits exactly", 6, true, 10},
		{"1 does not fit", 1, false, 10},
	}
	for _, tt := range tests {
		r, err := lim.AllowN(ctx, "c", limit, tt.cost)
		if err != nil {
			t.Fatal(err)
		}
		if r.Allowed != tt.wantAllowed || r.Used != tt.wantUsed || r.Remaining != 10-tt.wantUsed {
			t.Fatalf("%s: %+v", tt.name, r)
		}
		if !r.Allowed && r.RetryAfter != 15*time.Second {
			t.Fatalf("%s: retry after %v", tt.name, r.RetryAfter)
		}
	}
	if err := lim.Refund(ctx, "c", time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC), 6); err != nil {
		t.Fatal(err)
	}
	if r, _ := lim.AllowN(ctx, "c", limit, 0); r.Used != 4 {
		t.Fatalf("after refunding 6: used %d, want 4", r.Used)
	}
	// A cost above the limit never fits and takes nothing.
	if r, _ := lim.AllowN(ctx, "big", limit, 11); r.Allowed || r.Used != 0 {
		t.Fatalf("cost 11 of 10: %+v", r)
	}
	if _, err := lim.AllowN(ctx, "c", limit, -1); err != ratelimit.ErrInvalidLimit {
		t.Fatalf("negative cost: %v", err)
	}
}

// TestMixedCostsExactUnderConcurrency: concurrent calls of cost 1..5 on
// one key, batched (batch.lua on a single Redis, a pipeline of window.lua
// on a ring): admitted units never exceed the limit, equal what Redis
// holds, and every refusal is of a cost that did not fit at its turn.
func TestMixedCostsExactUnderConcurrency(t *testing.T) {
	t.Parallel()
	type client interface {
		redis.Scripter
		Pipeline() redis.Pipeliner
	}
	for _, tc := range []struct {
		name string
		rdb  func(t *testing.T) (client, string)
	}{
		{"miniredis", func(t *testing.T) (client, string) {
			_, mr := miniLimiter(t)
			mr.SetTime(time.Date(2026, 11, 26, 10, 0, 45, 0, time.UTC))
			c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
			t.Cleanup(func() { c.Close() })
			return c, "k"
		}},
		{"real redis", func(t *testing.T) (client, string) {
			return testdb.Redis(t), testdb.UniqueKey(t)
		}},
		{"real redis, ring", func(t *testing.T) (client, string) {
			opt, err := redis.ParseURL(testdb.RedisURL(t))
			if err != nil {
				t.Fatal(err)
			}
			ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"one": opt.Addr}})
			t.Cleanup(func() { ring.Close() })
			return ring, testdb.UniqueKey(t)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rdb, prefix := tc.rdb(t)
			lim := ratelimit.New(rdb)
			limit := ratelimit.Limit{Requests: 50, Window: time.Hour}
			keys := []string{prefix + ":a", prefix + ":b"}
			var (
				mu       sync.Mutex
				admitted = map[string]int64{}
				wg       sync.WaitGroup
				start    = make(chan struct{})
			)
			for i := range 200 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					k, cost := keys[i%2], int64(1+i%5)
					r, err := lim.AllowN(context.Background(), k, limit, cost)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					defer mu.Unlock()
					switch {
					case r.Allowed:
						admitted[k] += cost
						if r.Used > limit.Requests || r.Used < cost {
							t.Errorf("admitted cost %d with used %d", cost, r.Used)
						}
					case r.Used+cost <= limit.Requests:
						t.Errorf("refused cost %d with %d used of %d: it fitted", cost, r.Used, limit.Requests)
					}
				}()
			}
			close(start)
			wg.Wait()
			for _, k := range keys {
				r, err := lim.AllowN(context.Background(), k, limit, 0)
				if err != nil {
					t.Fatal(err)
				}
				if admitted[k] > limit.Requests || admitted[k] != r.Used {
					t.Fatalf("%s: admitted %d units, Redis holds %d, limit %d", k, admitted[k], r.Used, limit.Requests)
				}
				// 100 calls of average cost 3 ask for 300, so some were
				// refused, each when at most limit-cost was free: the window
				// ends less than the largest cost (5) short of full.
				if r.Used < limit.Requests-4 {
					t.Fatalf("%s: only %d of %d used at the end, yet calls were refused", k, r.Used, limit.Requests)
				}
			}
		})
	}
}
