package ratelimit_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratebill/platform/shared/ratelimit"
	"github.com/ratebill/platform/shared/testdb"
)

// concurrentDecisions fires n concurrent Allow calls spread over keys and
// returns, per key, the Used values of the admitted ones and the number
// denied.
func concurrentDecisions(t *testing.T, lim *ratelimit.Limiter, keys []string, n int, limit ratelimit.Limit) (map[string][]int64, map[string]int) {
	t.Helper()
	var (
		mu     sync.Mutex
		used   = map[string][]int64{}
		denied = map[string]int{}
		wg     sync.WaitGroup
		start  = make(chan struct{})
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			k := keys[i%len(keys)]
			r, err := lim.Allow(context.Background(), k, limit)
			if err != nil {
				t.Error(err)
				return
			}
			if r.Limit != limit || r.Remaining != max(limit.Requests-r.Used, 0) || r.ResetAfter <= 0 || r.ResetAfter > limit.Window {
				t.Errorf("inconsistent result %+v", r)
			}
			mu.Lock()
			defer mu.Unlock()
			if r.Allowed {
				used[k] = append(used[k], r.Used)
			} else {
				denied[k]++
				if r.RetryAfter != r.ResetAfter || r.Used != limit.Requests {
					t.Errorf("denial %+v: want RetryAfter = ResetAfter and Used = limit", r)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	return used, denied
}

// checkExact asserts that every key admitted exactly the limit, numbered
// 1..limit without gaps or repeats, and denied the rest.
func checkExact(t *testing.T, keys []string, n int, limit int64, used map[string][]int64, denied map[string]int) {
	t.Helper()
	per := n / len(keys)
	for _, k := range keys {
		u := used[k]
		sort.Slice(u, func(a, b int) bool { return u[a] < u[b] })
		if int64(len(u)) != limit || denied[k] != per-int(limit) {
			t.Fatalf("%s: admitted %d denied %d, want %d and %d", k, len(u), denied[k], limit, per-int(limit))
		}
		for i, v := range u {
			if v != int64(i+1) {
				t.Fatalf("%s: used counts %v, want 1..%d", k, u, limit)
			}
		}
	}
}

// TestBatchedDecisionsExact drives many concurrent decisions over several
// keys, so that they are batched (one script call per batch on a single
// Redis), and checks every key's admissions are exact, on miniredis with
// a fixed clock and on the real Redis.
func TestBatchedDecisionsExact(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		rdb  func(t *testing.T) (*redis.Client, string)
	}{
		{"miniredis", func(t *testing.T) (*redis.Client, string) {
			_, mr := miniLimiter(t)
			mr.SetTime(time.Date(2026, 11, 26, 10, 0, 45, 0, time.UTC))
			c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
			t.Cleanup(func() { c.Close() })
			return c, "k"
		}},
		{"real redis", func(t *testing.T) (*redis.Client, string) {
			return testdb.Redis(t), testdb.UniqueKey(t)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rdb, prefix := tc.rdb(t)
			lim := ratelimit.New(rdb)
			keys := make([]string, 7)
			for i := range keys {
				keys[i] = fmt.Sprintf("%s:%d", prefix, i)
			}
			limit := ratelimit.Limit{Requests: 30, Window: time.Hour}
			used, denied := concurrentDecisions(t, lim, keys, 7*50, limit)
			checkExact(t, keys, 7*50, 30, used, denied)
			// The state in Redis agrees with the answers.
			for _, k := range keys {
				if r, err := lim.AllowN(context.Background(), k, limit, 0); err != nil || r.Used != 30 {
					t.Fatalf("%s after the burst: %+v %v", k, r, err)
				}
			}
		})
	}
}

// TestBatchedDecisionsPipelined covers the cluster-safe path: a client
// that is not a single-node *redis.Client (here a Ring of one shard)
// batches as a pipeline of single-key scripts, exact all the same, and
// survives SCRIPT FLUSH.
func TestBatchedDecisionsPipelined(t *testing.T) {
	t.Parallel()
	opt, err := redis.ParseURL(testdb.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"one": opt.Addr}})
	t.Cleanup(func() { ring.Close() })
	lim := ratelimit.New(ring)
	prefix := testdb.UniqueKey(t)
	keys := []string{prefix + ":a", prefix + ":b", prefix + ":c"}
	limit := ratelimit.Limit{Requests: 20, Window: time.Hour}
	used, denied := concurrentDecisions(t, lim, keys, 3*40, limit)
	checkExact(t, keys, 3*40, 20, used, denied)
	if err := ring.ForEachShard(context.Background(), func(ctx context.Context, c *redis.Client) error {
		return c.ScriptFlush(ctx).Err()
	}); err != nil {
		t.Fatal(err)
	}
	keys2 := []string{prefix + ":d", prefix + ":e"}
	used, denied = concurrentDecisions(t, lim, keys2, 2*40, limit)
	checkExact(t, keys2, 2*40, 20, used, denied)
}
