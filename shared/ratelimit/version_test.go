package ratelimit_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratebill/platform/shared/ratelimit"
	"github.com/ratebill/platform/shared/testdb"
)

// uniqueUser returns a user id no other test uses (tests share Redis).
func uniqueUser() int64 {
	var b [8]byte
	rand.Read(b[:])
	return int64(binary.BigEndian.Uint64(b[:])>>2) + 1
}

// versionClients are the three ways a limiter meets Redis: miniredis,
// a single real Redis (batches are one batch.lua call), and a ring (a
// pipeline of window.lua calls).
func versionClients() []struct {
	name string
	rdb  func(t *testing.T) redis.UniversalClient
} {
	return []struct {
		name string
		rdb  func(t *testing.T) redis.UniversalClient
	}{
		{"miniredis", func(t *testing.T) redis.UniversalClient {
			_, mr := miniLimiter(t)
			mr.SetTime(time.Date(2026, 11, 26, 10, 0, 45, 0, time.UTC))
			c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
			t.Cleanup(func() { c.Close() })
			return c
		}},
		{"real redis", func(t *testing.T) redis.UniversalClient { return testdb.Redis(t) }},
		{"real redis, ring", func(t *testing.T) redis.UniversalClient {
			opt, err := redis.ParseURL(testdb.RedisURL(t))
			if err != nil {
				t.Fatal(err)
			}
			ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"one": opt.Addr}})
			t.Cleanup(func() { ring.Close() })
			return ring
		}},
	}
}

// TestUserVersion: a user's decision reports the version published for
// that user, read in the same script; publishing never lowers it; other
// users and quotas that are not a user's report 0.
func TestUserVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range versionClients() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lim := ratelimit.New(tc.rdb(t))
			ctx := context.Background()
			user, other := uniqueUser(), uniqueUser()
			limit := ratelimit.Limit{Requests: 10, Window: time.Hour}
			version := func(n int64) int64 {
				t.Helper()
				r, err := lim.AllowUser(ctx, user, limit, n)
				if err != nil {
					t.Fatal(err)
				}
				return r.Version
			}
			if v := version(1); v != 0 {
				t.Fatalf("version before any publish: %d, want 0", v)
			}
			steps := []struct {
				publish, want int64
			}{{5, 5}, {3, 5}, {5, 5}, {7, 7}}
			for _, s := range steps {
				if err := lim.PublishVersion(ctx, user, s.publish); err != nil {
					t.Fatal(err)
				}
				if v := version(0); v != s.want {
					t.Fatalf("after publishing %d: version %d (peek), want %d", s.publish, v, s.want)
				}
				if v := version(1); v != s.want {
					t.Fatalf("after publishing %d: version %d (take), want %d", s.publish, v, s.want)
				}
			}
			if r, err := lim.AllowUser(ctx, other, limit, 1); err != nil || r.Version != 0 {
				t.Fatalf("another user: %+v %v, want version 0", r, err)
			}
			// A user's quota is its own counter: AllowN on "user:ID" is not it.
			r, err := lim.AllowN(ctx, fmt.Sprint("user:", user), limit, 0)
			if err != nil || r.Version != 0 || r.Used != 0 {
				t.Fatalf("AllowN(user:%d): %+v %v, want an untouched counter of version 0", user, r, err)
			}
			if r, err := lim.AllowUser(ctx, user, limit, 0); err != nil || r.Used != 5 {
				t.Fatalf("user's own counter: %+v %v, want 5 used", r, err)
			}
		})
	}
}

// TestUserVersionBatched: concurrent decisions, batched (batch.lua on a
// single Redis, a pipeline on a ring), on two users and on keys that are
// not users': every user decision reports its own user's version, every
// other one 0, and each quota stays exact.
func TestUserVersionBatched(t *testing.T) {
	t.Parallel()
	for _, tc := range versionClients() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lim := ratelimit.New(tc.rdb(t))
			ctx := context.Background()
			users := []int64{uniqueUser(), uniqueUser()}
			key := testdb.UniqueKey(t)
			for i, u := range users {
				if err := lim.PublishVersion(ctx, u, int64(10*(i+1))); err != nil {
					t.Fatal(err)
				}
			}
			limit := ratelimit.Limit{Requests: 25, Window: time.Hour}
			var (
				mu       sync.Mutex
				admitted = map[int64]int64{}
				wg       sync.WaitGroup
				start    = make(chan struct{})
			)
			for i := range 300 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					if i%3 == 2 {
						r, err := lim.AllowN(ctx, key, limit, 1)
						if err != nil || r.Version != 0 {
							t.Errorf("AllowN: %+v %v, want version 0", r, err)
						}
						return
					}
					u := users[i%3]
					r, err := lim.AllowUser(ctx, u, limit, 1)
					if err != nil {
						t.Error(err)
						return
					}
					if want := int64(10 * (i%3 + 1)); r.Version != want {
						t.Errorf("user %d: version %d, want %d", i%3, r.Version, want)
					}
					if r.Allowed {
						mu.Lock()
						admitted[u]++
						mu.Unlock()
					}
				}()
			}
			close(start)
			wg.Wait()
			for _, u := range users {
				if admitted[u] != limit.Requests {
					t.Fatalf("user %d: admitted %d, want %d", u, admitted[u], limit.Requests)
				}
			}
		})
	}
}

// TestPublishVersionConcurrent: racing publishers leave the highest
// version, whatever their order.
func TestPublishVersionConcurrent(t *testing.T) {
	t.Parallel()
	lim := ratelimit.New(testdb.Redis(t))
	ctx := context.Background()
	user := uniqueUser()
	var wg sync.WaitGroup
	for v := range int64(100) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := lim.PublishVersion(ctx, user, 100-v); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	r, err := lim.AllowUser(ctx, user, ratelimit.Limit{Requests: 1, Window: time.Second}, 0)
	if err != nil || r.Version != 100 {
		t.Fatalf("%+v %v, want version 100", r, err)
	}
}

// TestPublishVersions: publishing many users at once (a plan change)
// sets each one's version, over more than one pipeline, and never lowers
// one already higher; on every kind of client.
func TestPublishVersions(t *testing.T) {
	t.Parallel()
	for _, c := range versionClients() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			lim := ratelimit.New(c.rdb(t))
			ctx := context.Background()
			const n = 1203 // three pipelines of at most 500
			versions := make(map[int64]int64, n)
			users := make([]int64, 0, n)
			for i := range int64(n) {
				u := uniqueUser()
				users = append(users, u)
				versions[u] = 10 + i
			}
			higher := users[7]
			if err := lim.PublishVersion(ctx, higher, 1_000_000); err != nil {
				t.Fatal(err)
			}
			if err := lim.PublishVersions(ctx, versions); err != nil {
				t.Fatal(err)
			}
			for i, u := range users {
				want := 10 + int64(i)
				if u == higher {
					want = 1_000_000
				}
				r, err := lim.AllowUser(ctx, u, ratelimit.Limit{Requests: 1000, Window: time.Minute}, 0)
				if err != nil || r.Version != want {
					t.Fatalf("user %d (#%d): %+v %v, want version %d", u, i, r, err, want)
				}
			}
		})
	}
}
