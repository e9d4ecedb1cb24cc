package ratelimit_test

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratebill/platform/shared/ratelimit"
	"github.com/ratebill/platform/shared/testdb"
)

// decide is AllowUserLimits, failing the test if Redis did not decide.
func decide(t *testing.T, lim *ratelimit.Limiter, user int64, limits []ratelimit.Limit, n int64) ratelimit.Decision {
	t.Helper()
	d, err := lim.AllowUserLimits(context.Background(), user, limits, n)
	if err != nil {
		t.Fatalf("AllowUserLimits: %v", err)
	}
	if len(d.Results) != len(limits) {
		t.Fatalf("%d results for %d limits", len(d.Results), len(limits))
	}
	return d
}

func used(d ratelimit.Decision) []int64 {
	out := make([]int64, len(d.Results))
	for i, r := range d.Results {
		out[i] = r.Used
	}
	return out
}

// TestDeniedByOneLimitConsumesNoneOfTheOthers: a request that does not
// fit limit B takes nothing from limit A, whatever their algorithms, on
// miniredis and on a real Redis.
func TestDeniedByOneLimitConsumesNoneOfTheOthers(t *testing.T) {
	t.Parallel()
	mini, _ := miniLimiter(t)
	for name, lim := range map[string]*ratelimit.Limiter{"miniredis": mini, "redis": ratelimit.New(testdb.Redis(t))} {
		for _, alg := range []ratelimit.Algorithm{ratelimit.Fixed, ratelimit.Sliding} {
			t.Run(name+"/"+ratelimit.Limit{Algorithm: alg}.String(), func(t *testing.T) {
				user := uniqueUser()
				limits := []ratelimit.Limit{
					{Name: "daily", Requests: 100, Window: time.Hour, Algorithm: alg},
					{Name: "burst", Requests: 5, Window: time.Minute, Algorithm: ratelimit.Sliding},
				}
				if d := decide(t, lim, user, limits, 4); !d.Allowed || used(d)[0] != 4 || used(d)[1] != 4 {
					t.Fatalf("first: %+v", d)
				}
				d := decide(t, lim, user, limits, 2) // fits daily, not burst
				if d.Allowed || used(d)[0] != 4 || used(d)[1] != 4 {
					t.Fatalf("denied by burst: allowed=%v used=%v", d.Allowed, used(d))
				}
				if h := d.Headline(); h.Limit.Name != "burst" || h.RetryAfter <= 0 || h.Allowed {
					t.Fatalf("headline of a denial: %+v", h)
				}
				if d := decide(t, lim, user, limits, 0); used(d)[0] != 4 || used(d)[1] != 4 {
					t.Fatalf("after the denial: used %v, want [4 4]", used(d))
				}
				// A cost that fits both is still admitted after the denial.
				d = decide(t, lim, user, limits, 1)
				if !d.Allowed || used(d)[0] != 5 || used(d)[1] != 5 {
					t.Fatalf("last unit: %+v", used(d))
				}
				if h := d.Headline(); h.Limit.Name != "burst" || h.Remaining != 0 {
					t.Fatalf("headline: %s remaining %d, want burst 0", h.Limit.Name, h.Remaining)
				}
				// Refunded, both limits get it back.
				if err := lim.RefundUserLimits(context.Background(), user, d, 1); err != nil {
					t.Fatal(err)
				}
				if d := decide(t, lim, user, limits, 0); used(d)[0] != 4 || used(d)[1] != 4 {
					t.Fatalf("after the refund: used %v, want [4 4]", used(d))
				}
			})
		}
	}
}

// TestDefaultLimitSharesTheDefaultCounter: a plan's fixed limit named
// "default" is the counter AllowUser (the default plan) uses, so a user
// moved between plans keeps the window's count.
func TestDefaultLimitSharesTheDefaultCounter(t *testing.T) {
	t.Parallel()
	lim, _ := miniLimiter(t)
	user := uniqueUser()
	def := ratelimit.Limit{Requests: 10, Window: time.Hour}
	if _, err := lim.AllowUser(context.Background(), user, def, 3); err != nil {
		t.Fatal(err)
	}
	d := decide(t, lim, user, []ratelimit.Limit{def, {Name: "burst", Requests: 5, Window: time.Second, Algorithm: ratelimit.Sliding}}, 1)
	if !d.Allowed || used(d)[0] != 4 || used(d)[1] != 1 {
		t.Fatalf("used %v, want [4 1]", used(d))
	}
}

func TestInvalidLimits(t *testing.T) {
	t.Parallel()
	lim, _ := miniLimiter(t)
	ok := ratelimit.Limit{Requests: 1, Window: time.Second}
	for name, ls := range map[string][]ratelimit.Limit{
		"none":      nil,
		"duplicate": {ok, {Name: "default", Requests: 2, Window: time.Minute}},
		"invalid":   {ok, {Name: "x", Requests: 0, Window: time.Second}},
		"too many":  make([]ratelimit.Limit, ratelimit.MaxLimits+1),
	} {
		if _, err := lim.AllowUserLimits(context.Background(), 1, ls, 1); err != ratelimit.ErrInvalidLimit {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// greedy plays a client that, every step of the clock, takes as many
// single units as the limit admits, from..to; it returns the admission
// times.
func greedy(t *testing.T, lim *ratelimit.Limiter, set func(time.Time), user int64, limit ratelimit.Limit, from, to time.Time, step time.Duration) []time.Time {
	t.Helper()
	var at []time.Time
	for now := from; now.Before(to); now = now.Add(step) {
		set(now)
		for decide(t, lim, user, []ratelimit.Limit{limit, {Name: "wide", Requests: 1 << 40, Window: time.Hour}}, 1).Allowed {
			at = append(at, now)
		}
	}
	return at
}

// worst is the most admissions in any interval [s, s + window), s an
// admission time (the densest interval starts at one).
func worst(at []time.Time, window time.Duration) int {
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	best, j := 0, 0
	for i := range at {
		for j < len(at) && at[j].Before(at[i].Add(window)) {
			j++
		}
		best = max(best, j-i)
	}
	return best
}

// TestBoundaryBurst measures, on miniredis's controlled clock, the most a
// greedy client gets in any interval of one window's length when it
// bursts at the end of a window and again at the start of the next:
// twice the limit under a fixed window, the limit under a sliding one.
// The measured numbers are the ones docs/plans-and-invoices.md states.
func TestBoundaryBurst(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		alg       ratelimit.Algorithm
		window    time.Duration
		wantWorst int
	}{
		{ratelimit.Fixed, time.Minute, 200},
		{ratelimit.Sliding, time.Minute, 100},
		{ratelimit.Fixed, time.Second, 200},
		{ratelimit.Sliding, time.Second, 100},
	} {
		limit := ratelimit.Limit{Name: "burst", Requests: 100, Window: tt.window, Algorithm: tt.alg}
		t.Run(limit.String(), func(t *testing.T) {
			t.Parallel()
			lim, mr := miniLimiter(t)
			user := uniqueUser()
			boundary := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
			step := tt.window / 100
			// Quiet until just before the boundary, then greedy for three
			// windows: the first burst lands at the window's last step.
			at := greedy(t, lim, mr.SetTime, user, limit, boundary.Add(-step), boundary.Add(3*tt.window), step)
			got := worst(at, tt.window)
			t.Logf("%s: at most %d units in any %v (limit %d), %d admitted over 3 windows", limit, got, tt.window, limit.Requests, len(at))
			if got != tt.wantWorst {
				t.Fatalf("worst case %d, want %d", got, tt.wantWorst)
			}
			// The sliding window gives the units back no later than
			// window + 2 buckets after they were taken.
			if tt.alg == ratelimit.Sliding {
				if len(at) < 300-10 {
					t.Fatalf("sliding window admitted %d over 3 windows, want about 300", len(at))
				}
			}
		})
	}
}

// TestBoundaryBurstRealRedis bursts across a real fixed-window boundary
// on a real Redis's clock: 100 units in the last moments of a 2 s window
// and 100 right after it. A fixed window admits both bursts (200 within
// well under a window); a sliding window admits the first only.
func TestBoundaryBurstRealRedis(t *testing.T) {
	t.Parallel()
	rdb := testdb.Redis(t)
	for _, alg := range []ratelimit.Algorithm{ratelimit.Fixed, ratelimit.Sliding} {
		limit := ratelimit.Limit{Name: "burst", Requests: 100, Window: 2 * time.Second, Algorithm: alg}
		t.Run(limit.String(), func(t *testing.T) {
			lim := ratelimit.New(rdb)
			user := uniqueUser()
			limits := []ratelimit.Limit{limit, {Name: "wide", Requests: 1 << 40, Window: time.Hour}}
			ctx := context.Background()
			now := func() time.Time {
				t.Helper()
				tm, err := rdb.Time(ctx).Result()
				if err != nil {
					t.Fatal(err)
				}
				return tm
			}
			// Wait (polling Redis's clock) for the last 400 ms of a 2 s window.
			deadline := time.Now().Add(10 * time.Second)
			for now().UnixMilli()%2000 < 1600 {
				if time.Now().After(deadline) {
					t.Fatal("Redis clock did not move")
				}
			}
			first, firstAt := burst(t, lim, user, limits, 100)
			boundary := time.UnixMilli(firstAt.UnixMilli()/2000*2000 + 2000)
			for now().Before(boundary) {
				if time.Now().After(deadline) {
					t.Fatal("Redis clock did not move")
				}
			}
			second, secondAt := burst(t, lim, user, limits, 100)
			t.Logf("%s: %d admitted before the boundary, %d after it, %v apart", limit, first, second, secondAt.Sub(firstAt))
			if secondAt.Sub(firstAt) >= limit.Window {
				t.Skip("the bursts were a whole window apart (a slow machine): nothing measured")
			}
			want := 0
			if alg == ratelimit.Fixed {
				want = 100
			}
			if first != 100 || second != want {
				t.Fatalf("admitted %d then %d, want 100 then %d", first, second, want)
			}
		})
	}
}

// burst takes up to n single units one after another and returns how
// many were admitted and the Redis time of the last decision.
func burst(t *testing.T, lim *ratelimit.Limiter, user int64, limits []ratelimit.Limit, n int) (int, time.Time) {
	t.Helper()
	admitted := 0
	var at time.Time
	for range n {
		d := decide(t, lim, user, limits, 1)
		if d.Allowed {
			admitted++
		}
		r := d.Results[1] // the wide fixed limit: its reset is exact
		at = r.ResetAt().Add(-r.ResetAfter)
	}
	return admitted, at
}

// TestSeveralLimitsExactAcrossReplicas: 400 concurrent decisions from two
// limiters (two replicas, each with its own client) on one real Redis
// admit exactly the binding limit, and every limit counts exactly what
// was admitted.
func TestSeveralLimitsExactAcrossReplicas(t *testing.T) {
	t.Parallel()
	rdb := testdb.Redis(t)
	other := redis.NewClient(rdb.Options())
	t.Cleanup(func() { other.Close() })
	replicas := []*ratelimit.Limiter{ratelimit.New(rdb), ratelimit.New(other)}
	for _, binding := range []ratelimit.Algorithm{ratelimit.Fixed, ratelimit.Sliding} {
		t.Run("binding "+ratelimit.Limit{Algorithm: binding}.String(), func(t *testing.T) {
			user := uniqueUser()
			limits := []ratelimit.Limit{
				{Name: "hourly", Requests: 120, Window: time.Hour, Algorithm: ratelimit.Sliding},
				{Name: "minute", Requests: 90, Window: time.Hour, Algorithm: ratelimit.Fixed},
				{Name: "tight", Requests: 50, Window: time.Hour, Algorithm: binding},
			}
			var admitted atomic.Int64
			var wg sync.WaitGroup
			for i := range 400 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					d, err := replicas[i%2].AllowUserLimits(context.Background(), user, limits, 1)
					if err != nil {
						t.Error(err)
						return
					}
					if d.Allowed {
						admitted.Add(1)
					}
				}()
			}
			wg.Wait()
			d := decide(t, replicas[0], user, limits, 0)
			if admitted.Load() != 50 || used(d)[0] != 50 || used(d)[1] != 50 || used(d)[2] != 50 {
				t.Fatalf("admitted %d, limits count %v, want 50 everywhere", admitted.Load(), used(d))
			}
		})
	}
}

// TestSeveralLimitsRebuilt: after the user's data is lost, every limit
// (fixed and sliding) is seeded from the ledger before the next decision,
// and later decisions need no ledger.
func TestSeveralLimitsRebuilt(t *testing.T) {
	t.Parallel()
	rdb := testdb.Redis(t)
	var reads atomic.Int64
	ledger := ledgerFunc(func(ctx context.Context, user int64, since time.Time, eventsOnly bool) (int64, error) {
		reads.Add(1)
		return 7, nil
	})
	lim := ratelimit.New(rdb).WithLedger(ledger)
	user := uniqueUser()
	limits := []ratelimit.Limit{
		{Name: "daily", Requests: 10, Window: time.Hour},
		{Name: "burst", Requests: 9, Window: time.Minute, Algorithm: ratelimit.Sliding},
	}
	if d := decide(t, lim, user, limits, 1); !d.Allowed {
		t.Fatalf("first: %+v", d)
	}
	before := lim.Rebuilds() // a new user's first decision finds no marker either
	loseUser(t, rdb, user)
	reads.Store(0)
	d := decide(t, lim, user, limits, 1)
	if !d.Allowed || used(d)[0] != 8 || used(d)[1] != 8 || reads.Load() != 2 {
		t.Fatalf("after the loss: allowed=%v used=%v ledger reads=%d, want [8 8] from 2 reads", d.Allowed, used(d), reads.Load())
	}
	d = decide(t, lim, user, limits, 2) // 10 > 9: the sliding limit denies
	if d.Allowed || used(d)[0] != 8 || used(d)[1] != 8 || reads.Load() != 2 {
		t.Fatalf("next: allowed=%v used=%v ledger reads=%d", d.Allowed, used(d), reads.Load())
	}
	if lim.Rebuilds()-before != 2 {
		t.Fatalf("rebuilds %d, want 2", lim.Rebuilds()-before)
	}
}

// TestPeriodLimitIsTheCalendarMonth: a Period limit counts the calendar
// month of Redis's clock (leap February, December into January), starts
// again at the next month, and admits nothing when its units are 0.
func TestPeriodLimitIsTheCalendarMonth(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		now, start, end time.Time
	}{
		{time.Date(2028, 2, 29, 23, 59, 59, 0, time.UTC), time.Date(2028, 2, 1, 0, 0, 0, 0, time.UTC), time.Date(2028, 3, 1, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 12, 31, 12, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)},
		{time.Date(1999, 3, 15, 7, 0, 0, 0, time.UTC), time.Date(1999, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(1999, 4, 1, 0, 0, 0, 0, time.UTC)},
		{time.Date(2100, 2, 28, 7, 0, 0, 0, time.UTC), time.Date(2100, 2, 1, 0, 0, 0, 0, time.UTC), time.Date(2100, 3, 1, 0, 0, 0, 0, time.UTC)},
	} {
		t.Run(tt.now.Format(time.RFC3339), func(t *testing.T) {
			t.Parallel()
			lim, mr := miniLimiter(t)
			mr.SetTime(tt.now)
			user := uniqueUser()
			limits := []ratelimit.Limit{{Name: "spend-cap", Requests: 5, Algorithm: ratelimit.Period}}
			d := decide(t, lim, user, limits, 5)
			r := d.Results[0]
			if !d.Allowed || r.Used != 5 || !r.WindowStart.Equal(tt.start) || !r.ResetAt().Equal(tt.end) {
				t.Fatalf("allowed=%v used=%d month %v to %v, want %v to %v", d.Allowed, r.Used, r.WindowStart, r.ResetAt(), tt.start, tt.end)
			}
			if d := decide(t, lim, user, limits, 1); d.Allowed || d.Results[0].RetryAfter != tt.end.Sub(tt.now) {
				t.Fatalf("over the month's units: allowed=%v retry %v", d.Allowed, d.Results[0].RetryAfter)
			}
			mr.SetTime(tt.end)
			if d := decide(t, lim, user, limits, 5); !d.Allowed || d.Results[0].Used != 5 {
				t.Fatalf("next month: %+v", d.Results[0])
			}
			if d := decide(t, lim, user, []ratelimit.Limit{{Name: "spend-cap", Requests: 0, Algorithm: ratelimit.Period}}, 1); d.Allowed {
				t.Fatal("a period of 0 units admitted a call")
			}
		})
	}
}

// TestPeriodLimitSeededFromTheLedger: a period counter's first decision
// counts what the ledger holds for the month (a cap set in the middle of
// a month), from the month's start exactly; later decisions read no
// ledger.
func TestPeriodLimitSeededFromTheLedger(t *testing.T) {
	t.Parallel()
	rdb := testdb.Redis(t)
	var reads atomic.Int64
	var since atomic.Value
	lim := ratelimit.New(rdb).WithLedger(ledgerFunc(func(ctx context.Context, user int64, s time.Time, eventsOnly bool) (int64, error) {
		reads.Add(1)
		since.Store(s)
		return 40, nil
	}))
	user := uniqueUser()
	limits := []ratelimit.Limit{{Name: "spend-cap", Requests: 42, Algorithm: ratelimit.Period}}
	d := decide(t, lim, user, limits, 3)
	if d.Allowed || d.Results[0].Used != 40 || reads.Load() != 1 {
		t.Fatalf("cost 3 over 40 of 42: allowed=%v used=%d reads=%d", d.Allowed, d.Results[0].Used, reads.Load())
	}
	y, m, _ := d.Results[0].WindowStart.Date()
	if got := since.Load().(time.Time); !got.Equal(time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("ledger read since %v, want the month's start", got)
	}
	if d := decide(t, lim, user, limits, 2); !d.Allowed || d.Results[0].Used != 42 || reads.Load() != 1 {
		t.Fatalf("cost 2: allowed=%v used=%d reads=%d", d.Allowed, d.Results[0].Used, reads.Load())
	}
}
