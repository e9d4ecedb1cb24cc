// Package group is group commit: items that callers add while a batch is
// being processed wait and are processed together in the next batch, so a
// busy instance pays one round trip for many requests instead of one each.
// The usage recorder (one Postgres statement per batch) and the rate
// limiter (one Redis script call per batch) are both built on it.
//
// The first item to arrive when nothing is in flight is processed at once,
// in the caller's own goroutine: no added latency and no goroutine hand-off
// when idle. If more items queued meanwhile, a new goroutine takes over
// and drains them, so the caller is never held up by other callers' work.
//
// Tally is the approximate cousin: counts by key kept in memory and
// written at most once per interval (key last-use times, denials).
package group

import (
	"context"
	"sync"
)

// Batcher queues items of type T and hands them to run in batches.
type Batcher[T any] struct {
	run         func(batch []T)
	maxBatch    int
	maxInFlight int

	mu       sync.Mutex
	pending  []T
	inFlight int
	running  int // items in batches being run
	closed   bool
	idle     sync.Cond // signalled when nothing is in flight or pending
}

// New returns a Batcher that calls run with at most maxBatch items at a
// time, with at most maxInFlight calls of run at once. run must complete
// every item it is given (each caller waits on its item's own signal).
func New[T any](maxBatch, maxInFlight int, run func(batch []T)) *Batcher[T] {
	b := &Batcher[T]{run: run, maxBatch: max(maxBatch, 1), maxInFlight: max(maxInFlight, 1)}
	b.idle.L = &b.mu
	return b
}

// Add queues item and, when a batch may start, runs it in the calling
// goroutine. It reports false, queuing nothing, after Close. The caller
// then waits for its item to be completed by run.
func (b *Batcher[T]) Add(item T) bool {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return false
	}
	b.pending = append(b.pending, item)
	if b.inFlight >= b.maxInFlight {
		b.mu.Unlock()
		return true
	}
	b.inFlight++
	batch := b.take()
	b.mu.Unlock()
	b.run(batch)
	b.mu.Lock()
	b.running -= len(batch)
	if len(b.pending) > 0 {
		b.mu.Unlock()
		go b.drain()
		return true
	}
	b.done()
	b.mu.Unlock()
	return true
}

// drain runs batches until nothing is pending.
func (b *Batcher[T]) drain() {
	for {
		b.mu.Lock()
		if len(b.pending) == 0 {
			b.done()
			b.mu.Unlock()
			return
		}
		batch := b.take()
		b.mu.Unlock()
		b.run(batch)
		b.mu.Lock()
		b.running -= len(batch)
		b.mu.Unlock()
	}
}

// take removes the next batch from pending; b.mu is held.
func (b *Batcher[T]) take() []T {
	n := min(len(b.pending), b.maxBatch)
	batch := make([]T, n)
	copy(batch, b.pending)
	clear(b.pending[:n])
	b.pending = b.pending[n:]
	if len(b.pending) == 0 {
		b.pending = nil // let the backing array go
	}
	b.running += n
	return batch
}

// done ends one run in flight; b.mu is held.
func (b *Batcher[T]) done() {
	b.inFlight--
	if b.inFlight == 0 {
		b.idle.Broadcast()
	}
}

// Pending returns the items accepted and not yet completed: queued, or
// in a batch being run (a whole batch counts until its run returns).
func (b *Batcher[T]) Pending() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending) + b.running
}

// Close stops accepting items and waits until every accepted item has
// been processed (or ctx ends).
func (b *Batcher[T]) Close(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	drained := make(chan struct{})
	go func() {
		b.mu.Lock()
		for b.inFlight > 0 || len(b.pending) > 0 {
			b.idle.Wait()
		}
		b.mu.Unlock()
		close(drained)
	}()
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
