package usage_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratebill/platform/shared/apikey"
	"github.com/ratebill/platform/shared/postgres"
	"github.com/ratebill/platform/shared/testenv"
	"github.com/ratebill/platform/shared/usage"
)

func newStoreUser(t testing.TB) (*postgres.Store, int64) {
	t.Helper()
	s := postgres.NewStore(testenv.Pool(t))
	k, _ := apikey.Generate(nil)
	u, err := s.CreateUser(context.Background(), "u", "u@example.com", apikey.Hash(k), apikey.Display(k))
	if err != nil {
		t.Fatal(err)
	}
	return s, u.ID
}

func TestGroupCommitRealPostgres(t *testing.T) {
	t.Parallel()
	s, user := newStoreUser(t)
	rec := usage.New(s, usage.Options{})
	const n = 300
	totals := make([]int64, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := rec.Record(context.Background(), usage.Event{UserID: user, RequestID: fmt.Sprint("req-", i), Endpoint: "/usage"})
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
	s.Pool().QueryRow(context.Background(), "SELECT count(*) FROM usage_events").Scan(&rows)
	if rows != n {
		t.Fatalf("%d rows, want %d", rows, n)
	}
}

func TestCancelledRequestStillWrites(t *testing.T) {
	t.Parallel()
	s, user := newStoreUser(t)
	rec := usage.New(s, usage.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := rec.Record(ctx, usage.Event{UserID: user, RequestID: "c1", Endpoint: "/usage"}); err != nil {
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

func (f *fakeWriter) WriteUsage(ctx context.Context, events []usage.Event) ([]usage.Result, error) {
	f.writes.Add(1)
	if f.block != nil {
		<-f.block
	}
	if f.failures.Add(-1) >= 0 {
		return nil, fmt.Errorf("write: %w", postgres.ErrUnavailable)
	}
	out := make([]usage.Result, len(events))
	for i := range out {
		out[i].Total = int64(i + 1)
	}
	return out, nil
}

func TestRetryOnceThenFail(t *testing.T) {
	t.Parallel()
	f := &fakeWriter{}
	f.failures.Store(1)
	rec := usage.New(f, usage.Options{})
	if _, err := rec.Record(context.Background(), usage.Event{UserID: 1, RequestID: "a"}); err != nil {
		t.Fatalf("one transient failure must be retried: %v", err)
	}
	f.failures.Store(2)
	_, err := rec.Record(context.Background(), usage.Event{UserID: 1, RequestID: "b"})
	if !errors.Is(err, postgres.ErrUnavailable) {
		t.Fatalf("two failures: err = %v, want ErrUnavailable", err)
	}
	if st := rec.Stats(); st.Failures != 1 || st.Retries != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCloseFlushesPending(t *testing.T) {
	t.Parallel()
	f := &fakeWriter{block: make(chan struct{})}
	rec := usage.New(f, usage.Options{MaxInFlight: 1})
	var done atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := rec.Record(context.Background(), usage.Event{UserID: 1, RequestID: fmt.Sprint(i)}); err == nil {
				done.Add(1)
			}
		}()
	}
	time.Sleep(50 * time.Millisecond) // let them queue behind the blocked write
	closed := make(chan error)
	go func() { closed <- rec.Close(context.Background()) }()
	select {
	case <-closed:
		t.Fatal("Close returned while writes were pending")
	case <-time.After(50 * time.Millisecond):
	}
	close(f.block)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if done.Load() != 20 {
		t.Fatalf("%d of 20 accepted events written before Close returned", done.Load())
	}
	if _, err := rec.Record(context.Background(), usage.Event{UserID: 1, RequestID: "late"}); !errors.Is(err, usage.ErrClosed) {
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
				if _, err := s.WriteUsage(context.Background(), []usage.Event{{UserID: user, RequestID: id, Endpoint: "/usage"}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("grouped", func(b *testing.B) {
		s, user := newStoreUser(b)
		rec := usage.New(s, usage.Options{})
		var seq atomic.Int64
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				id := fmt.Sprint(seq.Add(1))
				if _, err := rec.Record(context.Background(), usage.Event{UserID: user, RequestID: id, Endpoint: "/usage"}); err != nil {
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
	rec := usage.New(s, usage.Options{MaxInFlight: 1})
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
			_, errs[i] = rec.Record(context.Background(), usage.Event{UserID: user, RequestID: id, Endpoint: "/usage"})
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
