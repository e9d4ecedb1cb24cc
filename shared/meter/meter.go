// Package meter records metered requests durably with group commit.
//
// Cloud Run gives an instance CPU only while it serves requests, so a
// usage event must be in Postgres before its response is written. Writing
// one row per request would cost a transaction each; instead, concurrent
// requests of an instance share one write: the first request to arrive
// starts a write at once (no added latency when idle), and every request
// that arrives while a write is in flight joins the next one. Throughput
// then scales with batch size, not with transactions.
//
// A write runs on a context detached from the requests (WithoutCancel
// semantics plus its own timeout): a client that hangs up cannot abandon
// a batch halfway, so billed always equals admitted. Writes are idempotent
// per (user, request id), so a failed batch is retried once.
package meter

import (
	"context"
	"sync"
	"time"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/group"
	"github.com/ratebill/platform/shared/telemetry"
)

// Event is one metered request.
type Event = shared.UsageEvent

// Result is the outcome of recording one Event.
type Result = shared.UsageResult

// writer is the storage the Recorder needs; *postgres.Store implements it.
type writer interface {
	WriteUsage(ctx context.Context, events []Event) ([]Result, error)
}

// Options tune a Recorder. Zero values take the defaults.
type Options struct {
	// MaxBatch bounds the events of one write (default 1000).
	MaxBatch int
	// MaxInFlight bounds concurrent writes per instance (default 1).
	// One is enough for group commit: the next batch fills while a write
	// is in flight, and is written the moment it ends. More writes in
	// flight split the same arrivals into smaller batches, which costs
	// Postgres more per event (measured in BENCHMARKS.md).
	MaxInFlight int
	// Timeout bounds one write, retry included (default 5 s).
	Timeout time.Duration
	// Telemetry records each write's size, duration and failure; nil: off.
	Telemetry *telemetry.Telemetry
}

// Recorder groups concurrent Record calls into shared writes.
type Recorder struct {
	w     writer
	opts  Options
	group *group.Batcher[*call]

	mu    sync.Mutex // guards stats
	stats Stats
}

// Stats counts what a Recorder did, for tests and benchmarks.
type Stats struct {
	Writes, Events, Retries, Failures int64
}

type call struct {
	ev   Event
	res  Result
	err  error
	done chan struct{}
}

// New returns a Recorder writing through w.
func New(w writer, opts Options) *Recorder {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1000
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 1
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	r := &Recorder{w: w, opts: opts}
	r.group = group.New(opts.MaxBatch, opts.MaxInFlight, r.write)
	return r
}

// Record stores ev durably and returns the user's new total. After Close
// it fails with shared.ErrShuttingDown. It returns
// only when the write has committed or failed; ctx is deliberately not
// used to abandon the write (see the package doc).
func (r *Recorder) Record(_ context.Context, ev Event) (Result, error) {
	c := &call{ev: ev, done: make(chan struct{})}
	if !r.group.Add(c) {
		return Result{}, shared.ErrShuttingDown
	}
	<-c.done
	return c.res, c.err
}

func (r *Recorder) write(batch []*call) {
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.Timeout)
	defer cancel()
	events := make([]Event, len(batch))
	for i, c := range batch {
		events[i] = c.ev
	}
	start := time.Now()
	res, err := r.w.WriteUsage(ctx, events)
	retried := false
	if err != nil && ctx.Err() == nil {
		// Idempotent per request id: retrying cannot double-count.
		retried = true
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
		}
		if ctx.Err() == nil {
			res, err = r.w.WriteUsage(ctx, events)
		}
	}
	if err != nil && len(batch) > 1 && shared.ErrorCode(err) != shared.EUnavailable && ctx.Err() == nil {
		// A data error (say, an event of a user deleted meanwhile) must
		// not fail its neighbours: write them one by one.
		r.opts.Telemetry.UsageWrite(ctx, len(batch), time.Since(start), err)
		r.writeEach(ctx, batch)
		return
	}
	r.opts.Telemetry.UsageWrite(ctx, len(batch), time.Since(start), err)
	r.mu.Lock()
	r.stats.Writes++
	r.stats.Events += int64(len(batch))
	if retried {
		r.stats.Retries++
	}
	if err != nil {
		r.stats.Failures++
	}
	r.mu.Unlock()
	for i, c := range batch {
		if err != nil {
			c.err = err
		} else {
			c.res = res[i]
		}
		close(c.done)
	}
}

func (r *Recorder) writeEach(ctx context.Context, batch []*call) {
	for _, c := range batch {
		start := time.Now()
		res, err := r.w.WriteUsage(ctx, []Event{c.ev})
		r.opts.Telemetry.UsageWrite(ctx, 1, time.Since(start), err)
		if err != nil {
			c.err = err
		} else {
			c.res = res[0]
		}
		close(c.done)
	}
}

// Stats returns counters of the writes so far.
func (r *Recorder) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Pending returns the events accepted and not yet written (queued or in
// the write in flight).
func (r *Recorder) Pending() int { return r.group.Pending() }

// Close stops accepting events and waits until every accepted event has
// been written (or ctx ends). Use it on SIGTERM before closing the pool.
func (r *Recorder) Close(ctx context.Context) error { return r.group.Close(ctx) }
