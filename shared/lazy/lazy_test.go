package lazy

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ratebill/platform/shared"
)

func TestBuildsOnceUnderConcurrency(t *testing.T) {
	t.Parallel()
	var builds atomic.Int32
	release := make(chan struct{})
	v := New(func(context.Context) (int, error) {
		<-release
		builds.Add(1)
		return 42, nil
	})
	var wg sync.WaitGroup
	got := make([]int, 16)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := v.Get(context.Background())
			if err != nil {
				t.Error(err)
			}
			got[i] = n
		}()
	}
	close(release)
	wg.Wait()
	if builds.Load() != 1 {
		t.Fatalf("built %d times, want 1", builds.Load())
	}
	for i, n := range got {
		if n != 42 {
			t.Fatalf("caller %d got %d", i, n)
		}
	}
}

func TestFailureIsRetried(t *testing.T) {
	t.Parallel()
	calls := 0
	v := New(func(context.Context) (string, error) {
		calls++
		if calls == 1 {
			return "", errors.New("not yet")
		}
		return "ok", nil
	})
	if _, err := v.Get(context.Background()); err == nil {
		t.Fatal("first Get: want the build's error")
	}
	if s, err := v.Get(context.Background()); err != nil || s != "ok" {
		t.Fatalf("second Get: %q, %v", s, err)
	}
	if calls != 2 {
		t.Fatalf("calls = %d, want 2", calls)
	}
}

func TestClose(t *testing.T) {
	t.Parallel()
	v := New(func(context.Context) (int, error) { return 7, nil })
	if _, ok := (New(func(context.Context) (int, error) { return 1, nil })).Close(); ok {
		t.Fatal("Close of an unbuilt value reported a value")
	}
	if _, err := v.Get(context.Background()); err != nil {
		t.Fatal(err)
	}
	n, ok := v.Close()
	if !ok || n != 7 {
		t.Fatalf("Close = %d, %v", n, ok)
	}
	if _, err := v.Get(context.Background()); !errors.Is(err, shared.ErrShuttingDown) {
		t.Fatalf("Get after Close: %v", err)
	}
}
