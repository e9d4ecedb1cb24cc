package group

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Tally counts occurrences by key in memory and hands the counts to write
// in one call at most once per interval: for figures that are approximate
// by design (key last-use times, rate-limit denials), whose every
// occurrence must not cost a write of its own.
//
// Cloud Run gives an instance CPU only while it serves requests, so there
// is no timer: Add, and MaybeFlush, which callers may call on requests
// that add nothing, start a flush in the background when counts are
// pending and the interval has passed since the last one. A flush that
// fails is logged and its counts dropped; counts not yet written are lost
// if the instance crashes (Flush writes them on a clean shutdown).
type Tally[K comparable] struct {
	write func(ctx context.Context, counts map[K]int64) error
	every time.Duration
	log   *slog.Logger
	what  string // what is written, for the log line

	pending   atomic.Int64 // counts added since the last take
	lastFlush atomic.Int64 // Unix nanoseconds of the last take

	mu       sync.Mutex
	counts   map[K]int64
	flushing bool
}

// NewTally returns a tally writing through write at most once per every
// (at least one second); what names the counts in the log line of a
// failed flush.
func NewTally[K comparable](every time.Duration, what string, log *slog.Logger, write func(ctx context.Context, counts map[K]int64) error) *Tally[K] {
	if every < time.Second {
		every = time.Second
	}
	if log == nil {
		log = slog.Default()
	}
	t := &Tally[K]{write: write, every: every, log: log, what: what, counts: map[K]int64{}}
	t.lastFlush.Store(time.Now().UnixNano())
	return t
}

// Add counts one occurrence of k, then flushes if it is time to.
func (t *Tally[K]) Add(k K) {
	t.mu.Lock()
	t.counts[k]++
	t.mu.Unlock()
	t.pending.Add(1)
	t.MaybeFlush()
}

// MaybeFlush starts a flush in the background when counts are pending and
// the interval has passed since the last one. Otherwise it costs two
// atomic loads.
func (t *Tally[K]) MaybeFlush() {
	if t.pending.Load() == 0 || time.Now().UnixNano()-t.lastFlush.Load() < int64(t.every) {
		return
	}
	t.mu.Lock()
	if t.flushing {
		t.mu.Unlock()
		return
	}
	counts := t.take()
	t.flushing = true
	t.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := t.write(ctx, counts); err != nil {
			t.log.Warn("recording "+t.what+" failed; they are approximate and dropped", "rows", len(counts), "error", err.Error())
		}
		t.mu.Lock()
		t.flushing = false
		t.mu.Unlock()
	}()
}

// Flush writes the pending counts now (at shutdown).
func (t *Tally[K]) Flush(ctx context.Context) error {
	t.mu.Lock()
	counts := t.take()
	t.mu.Unlock()
	return t.write(ctx, counts)
}

// take returns the pending counts and starts a new interval; t.mu is
// held.
func (t *Tally[K]) take() map[K]int64 {
	counts := t.counts
	t.counts = make(map[K]int64, len(counts))
	t.pending.Store(0)
	t.lastFlush.Store(time.Now().UnixNano())
	return counts
}
