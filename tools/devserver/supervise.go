package devserver

import (
	"context"
	"sync"
	"time"
)

// Server is a running private server: Done is closed when its process
// exits, Stop shuts it down.
type Server interface {
	Done() <-chan struct{}
	Stop() error
}

// Supervised keeps a server running for `make run`: when its process
// exits without Stop (killed, crashed, out of memory), it is started
// again on the same port and data, after a backoff that doubles from
// 100 ms up to 5 s while starts keep failing, and resets after a start
// that succeeds. The functions reconnect by themselves (their pools and
// clients retry), so the platform heals without a restart.
type Supervised struct {
	name  string
	start func(context.Context) (Server, error)
	logf  func(format string, args ...any)

	mu       sync.Mutex
	cur      Server
	stopping bool
	cancel   context.CancelFunc
	done     chan struct{} // closed when the supervising goroutine ends
	restarts int
}

// Supervise starts a server with start and keeps it running until Stop.
// logf reports each restart (log.Printf fits).
func Supervise(ctx context.Context, name string, start func(context.Context) (Server, error), logf func(string, ...any)) (*Supervised, error) {
	first, err := start(ctx)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	s := &Supervised{name: name, start: start, logf: logf, cur: first, cancel: cancel, done: make(chan struct{})}
	go s.watch(sctx)
	return s, nil
}

func (s *Supervised) watch(ctx context.Context) {
	defer close(s.done)
	backoff := 100 * time.Millisecond
	for {
		s.mu.Lock()
		cur := s.cur
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-cur.Done():
		}
		for {
			s.mu.Lock()
			stopping := s.stopping
			s.mu.Unlock()
			if stopping {
				return
			}
			s.logf("%s exited unexpectedly; starting it again in %v", s.name, backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			next, err := s.start(ctx)
			if err != nil {
				s.logf("%s did not start: %v", s.name, err)
				backoff = min(2*backoff, 5*time.Second)
				continue
			}
			s.mu.Lock()
			s.cur, s.restarts = next, s.restarts+1
			s.mu.Unlock()
			s.logf("%s is running again", s.name)
			backoff = 100 * time.Millisecond
			break
		}
	}
}

// Restarts returns how many times the server was started again.
func (s *Supervised) Restarts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restarts
}

// Current returns the server process running now.
func (s *Supervised) Current() Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// Stop ends the supervision and stops the server.
func (s *Supervised) Stop() error {
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	s.cancel()
	<-s.done
	return s.Current().Stop()
}
