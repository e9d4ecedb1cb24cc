package ratelimit_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/ratebill/platform/shared/ratelimit"
	"github.com/ratebill/platform/shared/testdb"
)

// fakeClock runs the scripts on miniredis with a controlled clock.
func miniLimiter(t *testing.T) (*ratelimit.Limiter, *miniredis.Miniredis) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	return ratelimit.New(rdb), mr
}

// allow takes one request, failing the test if Redis did not decide.
func allow(t *testing.T, lim *ratelimit.Limiter, key string, limit ratelimit.Limit) ratelimit.Result {
	t.Helper()
	r, err := lim.Allow(context.Background(), key, limit)
	if err != nil {
		t.Fatalf("Allow(%s): %v", key, err)
	}
	return r
}

// peek reports key's window without taking from it.
func peek(t *testing.T, lim *ratelimit.Limiter, key string, limit ratelimit.Limit) ratelimit.Result {
	t.Helper()
	r, err := lim.AllowN(context.Background(), key, limit, 0)
	if err != nil {
		t.Fatalf("AllowN(%s, 0): %v", key, err)
	}
	return r
}

func TestWindowArithmetic(t *testing.T) {
	t.Parallel()
	lim, mr := miniLimiter(t)
	ctx := context.Background()
	limit := ratelimit.Limit{Requests: 3, Window: 60 * time.Second}
	// 10:00:45 UTC: the minute window started at 10:00:00 and resets in 15 s.
	mr.SetTime(time.Date(2026, 11, 26, 10, 0, 45, 250_000_000, time.UTC))

	tests := []struct {
		name          string
		wantAllowed   bool
		wantUsed      int64
		wantRemaining int64
	}{
		{"first", true, 1, 2},
		{"second", true, 2, 1},
		{"third uses the last", true, 3, 0},
		{"fourth denied", false, 3, 0},
		{"fifth denied, consumes nothing", false, 3, 0},
	}
	// Sequential subtests: each decision depends on the ones before.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := allow(t, lim, "u:1", limit)
			if r.Allowed != tt.wantAllowed || r.Used != tt.wantUsed || r.Remaining != tt.wantRemaining {
				t.Fatalf("got allowed=%v used=%d remaining=%d", r.Allowed, r.Used, r.Remaining)
			}
			if want := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC); !r.WindowStart.Equal(want) {
				t.Fatalf("window start %v, want %v", r.WindowStart, want)
			}
			if r.ResetAfter != 14750*time.Millisecond {
				t.Fatalf("reset after %v, want 14.75s", r.ResetAfter)
			}
			if tt.wantAllowed && r.RetryAfter != 0 || !tt.wantAllowed && r.RetryAfter != r.ResetAfter {
				t.Fatalf("retry after %v", r.RetryAfter)
			}
		})
	}

	// Another key has its own quota.
	if r := allow(t, lim, "u:2", limit); !r.Allowed || r.Used != 1 {
		t.Fatalf("independent key: %+v", r)
	}

	// The next window refills.
	mr.SetTime(time.Date(2026, 11, 26, 10, 1, 0, 0, time.UTC))
	r, err := lim.Allow(ctx, "u:1", limit)
	if err != nil || !r.Allowed || r.Used != 1 || r.ResetAfter != time.Minute {
		t.Fatalf("new window: %+v %v", r, err)
	}
}

func TestPeekDoesNotConsume(t *testing.T) {
	t.Parallel()
	lim, mr := miniLimiter(t)
	mr.SetTime(time.Unix(1_800_000_000, 0))
	ctx := context.Background()
	limit := ratelimit.Limit{Requests: 1, Window: time.Hour}
	for i := 0; i < 3; i++ {
		r, err := lim.AllowN(ctx, "k", limit, 0)
		if err != nil || !r.Allowed || r.Used != 0 || r.Remaining != 1 {
			t.Fatalf("peek %d: %+v %v", i, r, err)
		}
	}
	if r := allow(t, lim, "k", limit); !r.Allowed {
		t.Fatal("quota consumed by peeks")
	}
}

func TestRefund(t *testing.T) {
	t.Parallel()
	lim, mr := miniLimiter(t)
	ctx := context.Background()
	mr.SetTime(time.Unix(1_800_000_000, 0))
	limit := ratelimit.Limit{Requests: 2, Window: time.Hour}
	r1 := allow(t, lim, "k", limit)
	allow(t, lim, "k", limit)
	if r := allow(t, lim, "k", limit); r.Allowed {
		t.Fatal("third request admitted over a limit of 2")
	}
	if err := lim.Refund(ctx, "k", r1.WindowStart, 1); err != nil {
		t.Fatal(err)
	}
	if r := allow(t, lim, "k", limit); !r.Allowed || r.Used != 2 {
		t.Fatalf("after refund: %+v", r)
	}
	// A refund for a past window changes nothing.
	mr.SetTime(time.Unix(1_800_000_000+3600, 0))
	allow(t, lim, "k", limit)
	if err := lim.Refund(ctx, "k", r1.WindowStart, 5); err != nil {
		t.Fatal(err)
	}
	if r := peek(t, lim, "k", limit); r.Used != 1 {
		t.Fatalf("stale refund changed the new window: %+v", r)
	}
}

func TestInvalidLimit(t *testing.T) {
	t.Parallel()
	lim, _ := miniLimiter(t)
	for _, l := range []ratelimit.Limit{{Requests: 0, Window: time.Second}, {Requests: 1}, {Requests: 1, Window: 1500 * time.Millisecond}, {Requests: 1, Window: time.Second, Algorithm: ratelimit.Sliding}} {
		if _, err := lim.Allow(context.Background(), "k", l); err != ratelimit.ErrInvalidLimit {
			t.Errorf("%v: err = %v", l, err)
		}
	}
}

func TestRedisDown(t *testing.T) {
	t.Parallel()
	lim, mr := miniLimiter(t)
	mr.Close()
	if _, err := lim.Allow(context.Background(), "k", ratelimit.Limit{Requests: 1, Window: time.Second}); err == nil {
		t.Fatal("want an error when Redis is down")
	}
}

// TestConcurrentExactRealRedis is the property the product sells: N
// concurrent requests against a limit L admit exactly L, on a real Redis.
func TestConcurrentExactRealRedis(t *testing.T) {
	t.Parallel()
	rdb := testdb.Redis(t)
	lim := ratelimit.New(rdb)
	key := testdb.UniqueKey(t)
	limit := ratelimit.Limit{Requests: 50, Window: time.Hour}
	var admitted, denied atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 400; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := lim.Allow(context.Background(), key, limit)
			if err != nil {
				t.Error(err)
				return
			}
			if r.Allowed {
				admitted.Add(1)
			} else {
				denied.Add(1)
			}
		}()
	}
	wg.Wait()
	if admitted.Load() != 50 || denied.Load() != 350 {
		t.Fatalf("admitted %d denied %d, want 50 and 350", admitted.Load(), denied.Load())
	}
	// The script survives SCRIPT FLUSH (EVALSHA falls back to EVAL).
	if err := rdb.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	if r, err := lim.AllowN(context.Background(), key, limit, 0); err != nil || r.Used != 50 {
		t.Fatalf("after SCRIPT FLUSH: %+v %v", r, err)
	}
	ttl := rdb.TTL(context.Background(), "rl:v1:"+key).Val()
	if ttl <= 0 || ttl > time.Hour+time.Second {
		t.Fatalf("counter TTL %v, want within the window", ttl)
	}
}

func BenchmarkAllowRealRedis(b *testing.B) {
	rdb := testdb.Redis(b)
	lim := ratelimit.New(rdb)
	key := testdb.UniqueKey(b)
	limit := ratelimit.Limit{Requests: 1 << 40, Window: time.Hour}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := lim.Allow(context.Background(), key, limit); err != nil {
				b.Fatal(err)
			}
		}
	})
}
