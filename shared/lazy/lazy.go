// Package lazy holds a value that is built on first use, once, safely
// under concurrency. A failed build is returned to its caller and not
// remembered: the next caller tries again (say, migrations while Postgres
// is still starting). After Close every Get fails with
// shared.ErrShuttingDown.
//
// Reads after the build take no lock: the value sits behind an atomic
// pointer. Builds hold the holder's own mutex only, so a slow dependency
// never delays requests that need another one.
package lazy

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/ratebill/platform/shared"
)

// Value is a T built on first use by its build function.
type Value[T any] struct {
	build  func(context.Context) (T, error)
	mu     sync.Mutex // serialises builds and Close
	v      atomic.Pointer[T]
	closed atomic.Bool
}

// New returns a Value that build fills on first use.
func New[T any](build func(context.Context) (T, error)) *Value[T] {
	return &Value[T]{build: build}
}

// Get returns the value, building it first if needed.
func (l *Value[T]) Get(ctx context.Context) (T, error) {
	if p := l.v.Load(); p != nil && !l.closed.Load() {
		return *p, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var zero T
	if l.closed.Load() {
		return zero, shared.ErrShuttingDown
	}
	if p := l.v.Load(); p != nil {
		return *p, nil
	}
	v, err := l.build(ctx)
	if err != nil {
		return zero, err
	}
	l.v.Store(&v)
	return v, nil
}

// Close makes every later Get fail with shared.ErrShuttingDown and returns
// the value if one was built, for the caller to release. A build in
// progress finishes first, so what it built is returned here too.
func (l *Value[T]) Close() (T, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed.Store(true)
	if p := l.v.Load(); p != nil {
		return *p, true
	}
	var zero T
	return zero, false
}
