package meter_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/apikey"
	"github.com/ratebill/platform/shared/meter"
	"github.com/ratebill/platform/shared/postgres"
	"github.com/ratebill/platform/shared/testdb"
)

func newStoreUser(t testing.TB) (*postgres.Store, int64) {
	s, _, user := newStorePoolUser(t)
	return s, user
}

func newStorePoolUser(t testing.TB) (*postgres.Store, *pgxpool.Pool, int64) {
	t.Helper()
	pool := testdb.Pool(t)
	s := postgres.NewStore(pool)
	k, _ := apikey.Generate(nil)
	u, err := s.CreateUser(context.Background(), "u", "u@example.com", apikey.Hash(k), apikey.Display(k))
	if err != nil {
		t.Fatal(err)
	}
	return s, pool, u.ID
}

func TestGroupCommitRealPostgres(t *testing.T) {
	t.Parallel()
	s, pool, user := newStorePoolUser(t)
	rec := meter.New(s, meter.Options{})
	const n = 300
	totals := make([]int64, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := rec.Record(context.Background(), meter.Event{UserID: user, RequestID: fmt.Sprint("req-", i), Endpoint: "/usage"})
			if err != nil {
				t.Error(err)
				return
			}
			totals[i] = res.Total
		}()
	}
	wg.Wait()
	// Every request saw a distinct running total 1..n: none lost, none twice.
	seen := make(map[int64]bool)
	for _, v := range totals {
		if v < 1 || v > n || seen[v] {
			t.Fatalf("totals are not a permutation of 1..%d: %v", n, totals)
		}
		seen[v] = true
	}
	st := rec.Stats()
	if st.Events != n || st.Writes >= n {
		t.Fatalf("stats %+v: want %d events in fewer than %d writes", st, n, n)
	}
	t.Logf("%d events in %d writes", st.Events, st.Writes)
	var rows int64
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM usage_events").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != n {
		t.Fatalf("%d rows, want %d", rows, n)
	}
}

func TestCancelledRequestStillWrites(t *testing.T) {
	t.Parallel()
	s, user := newStoreUser(t)
	rec := meter.New(s, meter.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := rec.Record(ctx, meter.Event{UserID: user, RequestID: "c1", Endpoint: "/usage"}); err != nil {
		t.Fatalf("a cancelled context must not abandon the write: %v", err)
	}
	if n, _ := s.TotalRequests(context.Background(), user); n != 1 {
		t.Fatalf("total %d, want 1", n)
	}
}

// fakeWriter fails a set number of writes, then succeeds; it stands in for
// Postgres only to script failures the group-commit logic must survive.
type fakeWriter struct {
	failures atomic.Int64
	writes   atomic.Int64
	block    chan struct{}
}

func (f *fakeWriter) WriteUsage(ctx context.Context, events []meter.Event) ([]meter.Result, error) {
	f.writes.Add(1)
	if f.block != nil {
		<-f.block
	}
	if f.failures.Add(-1) >= 0 {
		return nil, shared.Unavailable("postgres", errors.New("write failed"))
	}
	out := make([]meter.Result, len(events))
	for i := range out {
		out[i].Total = int64(i + 1)
	}
	return out, nil
}

func TestRetryOnceThenFail(t *testing.T) {
	t.Parallel()
	f := &fakeWriter{}
	f.failures.Store(1)
	rec := meter.New(f, meter.Options{})
	if _, err := rec.Record(context.Background(), meter.Event{UserID: 1, RequestID: "a"}); err != nil {
		t.Fatalf("one transient failure must be retried: %v", err)
	}
	f.failures.Store(2)
	_, err := rec.Record(context.Background(), meter.Event{UserID: 1, RequestID: "b"})
	if shared.ErrorCode(err) != shared.EUnavailable {
		t.Fatalf("two failures: err = %v, want EUnavailable", err)
	}
	if st := rec.Stats(); st.Failures != 1 || st.Retries != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCloseFlushesPending(t *testing.T) {
	t.Parallel()
	f := &fakeWriter{block: make(chan struct{})}
	rec := meter.New(f, meter.Options{MaxInFlight: 1})
	var done atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := rec.Record(context.Background(), meter.Event{UserID: 1, RequestID: fmt.Sprint(i)}); err == nil {
				done.Add(1)
			}
		}()
	}
	// Wait until all 20 are accepted: one write blocked, the rest queued.
	for rec.Pending() < 20 {
		runtime.Gosched()
	}
	// A Close that may not wait must report that writes are pending.
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := rec.Close(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close with writes pending and no time to wait: %v, want context.Canceled", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- rec.Close(context.Background()) }()
	close(f.block)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if done.Load() != 20 {
		t.Fatalf("%d of 20 accepted events written before Close returned", done.Load())
	}
	if _, err := rec.Record(context.Background(), meter.Event{UserID: 1, RequestID: "late"}); !errors.Is(err, shared.ErrShuttingDown) {
		t.Fatalf("after Close: %v", err)
	}
	if w := f.writes.Load(); w > 3 {
		t.Fatalf("%d writes for 20 queued events: not grouped", w)
	}
}

// BenchmarkRecord compares one INSERT per request with the grouped write,
// both against the real Postgres server, with the same parallelism.
func BenchmarkRecord(b *testing.B) {
	b.Run("per-request", func(b *testing.B) {
		s, user := newStoreUser(b)
		var seq atomic.Int64
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				id := fmt.Sprint(seq.Add(1))
				if _, err := s.WriteUsage(context.Background(), []meter.Event{{UserID: user, RequestID: id, Endpoint: "/usage"}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("grouped", func(b *testing.B) {
		s, user := newStoreUser(b)
		rec := meter.New(s, meter.Options{})
		var seq atomic.Int64
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				id := fmt.Sprint(seq.Add(1))
				if _, err := rec.Record(context.Background(), meter.Event{UserID: user, RequestID: id, Endpoint: "/usage"}); err != nil {
					b.Fatal(err)
				}
			}
		})
		st := rec.Stats()
		b.ReportMetric(float64(st.Events)/float64(max(st.Writes, 1)), "events/write")
	})
}

// TestBadEventDoesNotFailItsNeighbours: a data error in one event of a
// grouped write (here an empty request id, refused by a CHECK) fails that
// event alone; the others are written one by one.
func TestBadEventDoesNotFailItsNeighbours(t *testing.T) {
	t.Parallel()
	s, user := newStoreUser(t)
	rec := meter.New(s, meter.Options{MaxInFlight: 1})
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint("ok-", i)
			if i == 3 {
				id = ""
			}
			_, errs[i] = rec.Record(context.Background(), meter.Event{UserID: user, RequestID: id, Endpoint: "/usage"})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if (err != nil) != (i == 3) {
			t.Fatalf("event %d: err = %v", i, err)
		}
	}
	if n, _ := s.TotalRequests(context.Background(), user); n != 5 {
		t.Fatalf("total %d, want 5", n)
	}
}
