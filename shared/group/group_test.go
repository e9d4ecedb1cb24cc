package group

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type item struct {
	n    int
	done chan struct{}
}

func TestEveryItemOnceInFewBatches(t *testing.T) {
	t.Parallel()
	var batches, seen atomic.Int64
	var mu sync.Mutex
	counted := map[int]int{}
	b := New(50, 1, func(batch []*item) {
		batches.Add(1)
		time.Sleep(time.Millisecond) // a round trip
		mu.Lock()
		for _, it := range batch {
			counted[it.n]++
			seen.Add(1)
			close(it.done)
		}
		mu.Unlock()
	})
	var wg sync.WaitGroup
	for i := 0; i < 500; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			it := &item{n: i, done: make(chan struct{})}
			if !b.Add(it) {
				t.Error("Add refused before Close")
				return
			}
			<-it.done
		}()
	}
	wg.Wait()
	if seen.Load() != 500 || len(counted) != 500 {
		t.Fatalf("%d items processed, %d distinct", seen.Load(), len(counted))
	}
	for n, c := range counted {
		if c != 1 {
			t.Fatalf("item %d processed %d times", n, c)
		}
	}
	if batches.Load() >= 500 || batches.Load() < 10 {
		t.Fatalf("%d batches for 500 items of at most 50", batches.Load())
	}
}

func TestIdleRunsInCaller(t *testing.T) {
	t.Parallel()
	var ran bool
	b := New(10, 1, func(batch []*item) { ran = true; close(batch[0].done) })
	it := &item{done: make(chan struct{})}
	b.Add(it)
	// The batch ran before Add returned, in this goroutine.
	if !ran {
		t.Fatal("an idle Add did not run its batch before returning")
	}
}

func TestCloseDrainsThenRefuses(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var processed atomic.Int64
	b := New(100, 1, func(batch []*item) {
		<-release
		for _, it := range batch {
			processed.Add(1)
			close(it.done)
		}
	})
	for i := 0; i < 10; i++ {
		go b.Add(&item{done: make(chan struct{})})
	}
	// All ten accepted: one batch blocked on release, the rest queued.
	for b.Pending() < 10 {
		runtime.Gosched()
	}
	// A Close that may not wait reports the pending items.
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Close(ended); err != context.Canceled {
		t.Fatalf("Close with items pending and an ended context: %v, want context.Canceled", err)
	}
	if b.Add(&item{done: make(chan struct{})}) {
		t.Fatal("Add accepted an item after Close")
	}
	closed := make(chan error, 1)
	go func() { closed <- b.Close(context.Background()) }()
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if processed.Load() != 10 || b.Pending() != 0 {
		t.Fatalf("%d of 10 accepted items processed before Close returned (%d pending)", processed.Load(), b.Pending())
	}
}
