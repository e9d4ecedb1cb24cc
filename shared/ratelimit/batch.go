package ratelimit

import (
	"context"
	_ "embed"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// pipeliner is the Redis method batching needs; *redis.Client,
// *redis.ClusterClient and *redis.Ring have it.
type pipeliner interface {
	Pipeline() redis.Pipeliner
}

//go:embed batch.lua
var batchLua string

var batchScript = redis.NewScript(batchLua)

// Batching: concurrent Allow calls of one Limiter share Redis round trips.
// The first decision to arrive is sent at once (no added latency when
// idle); decisions arriving while up to maxInFlight pipelines are in
// flight wait and go together in the next one, each still its own atomic
// EVALSHA, so every decision is exactly what it would have been alone.
// This is group commit, as in the usage recorder, applied to Redis: a
// busy instance pays one round trip (two syscalls on each side) for many
// decisions instead of one each.
//
// On a single Redis (*redis.Client, as Memorystore's basic and standard
// tiers are) a batch is one call of batch.lua, which takes the decisions
// in order inside one atomic script: the per-call cost of a script (and
// of reading the clock) is paid once per batch. On a cluster or ring,
// whose keys may live on different nodes, a batch is a pipeline of
// window.lua calls instead.
const (
	maxInFlight = 1
	maxBatch    = 256
	// batchTimeout bounds one pipeline, retries included; it is detached
	// from the callers' contexts so that a caller hanging up cannot leave
	// its neighbours without an answer.
	batchTimeout = 3 * time.Second
)

type decision struct {
	key   string
	limit Limit
	res   Result
	err   error
	done  chan struct{}
}

type batcher struct {
	mu       sync.Mutex
	pending  []*decision
	inFlight int
}

func (l *Limiter) allowBatched(ctx context.Context, p pipeliner, key string, limit Limit) (Result, error) {
	d := &decision{key: keyPrefix + key, limit: limit, done: make(chan struct{})}
	b := &l.batch
	b.mu.Lock()
	b.pending = append(b.pending, d)
	if b.inFlight < maxInFlight {
		// Lead: send what is pending (this decision included) from this
		// goroutine, and hand whatever arrived meanwhile to a flusher.
		b.inFlight++
		batch := b.take()
		b.mu.Unlock()
		l.decide(p, batch)
		b.mu.Lock()
		if len(b.pending) > 0 {
			go l.flush(p)
		} else {
			b.inFlight--
		}
		b.mu.Unlock()
		return d.res, d.err
	}
	b.mu.Unlock()
	// Wait for the decision even if ctx ends: once queued it will be
	// taken, and a caller that left early could not give back quota that
	// was taken for it. The wait is bounded by batchTimeout.
	<-d.done
	return d.res, d.err
}

func (l *Limiter) flush(p pipeliner) {
	b := &l.batch
	for {
		b.mu.Lock()
		if len(b.pending) == 0 {
			b.inFlight--
			b.mu.Unlock()
			return
		}
		batch := b.take()
		b.mu.Unlock()
		l.decide(p, batch)
	}
}

// take removes up to maxBatch pending decisions, oldest first; b.mu held.
func (b *batcher) take() []*decision {
	n := min(len(b.pending), maxBatch)
	batch := make([]*decision, n)
	copy(batch, b.pending)
	clear(b.pending[:n])
	b.pending = b.pending[n:]
	if len(b.pending) == 0 {
		b.pending = nil
	}
	return batch
}

// decide sends the batch's decisions in one pipeline of EVALSHAs; those
// that find the script missing (after SCRIPT FLUSH or a failover) are
// retried one by one with EVALSHA-then-EVAL.
func (l *Limiter) decide(p pipeliner, batch []*decision) {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	if len(batch) == 1 {
		d := batch[0]
		d.res, d.err = l.run(ctx, d.key, d.limit, 1)
		close(d.done)
		return
	}
	if _, single := l.rdb.(*redis.Client); single {
		l.decideInScript(ctx, batch)
		return
	}
	pipe := p.Pipeline()
	cmds := make([]*redis.Cmd, len(batch))
	for i, d := range batch {
		cmds[i] = windowScript.EvalSha(ctx, pipe, []string{d.key}, d.limit.Requests, int64(d.limit.Window/time.Second), 1)
	}
	pipe.Exec(ctx) // errors are per command
	for i, d := range batch {
		v, err := cmds[i].Slice()
		switch {
		case err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT"):
			d.res, d.err = l.run(ctx, d.key, d.limit, 1)
		case err != nil:
			d.err = fmt.Errorf("deciding rate limit: %w", err)
		default:
			d.res, d.err = parse(v, d.limit)
		}
		close(d.done)
	}
}

// run is one unbatched decision on a prefixed key.
func (l *Limiter) run(ctx context.Context, key string, limit Limit, n int64) (Result, error) {
	v, err := windowScript.Run(ctx, l.rdb, []string{key}, limit.Requests, int64(limit.Window/time.Second), n).Slice()
	if err != nil {
		return Result{}, fmt.Errorf("deciding rate limit: %w", err)
	}
	return parse(v, limit)
}

// decideInScript takes the batch's decisions in one call of batch.lua.
func (l *Limiter) decideInScript(ctx context.Context, batch []*decision) {
	keys := make([]string, len(batch))
	args := make([]any, 0, 2*len(batch))
	for i, d := range batch {
		keys[i] = d.key
		args = append(args, d.limit.Requests, int64(d.limit.Window/time.Second))
	}
	v, err := batchScript.Run(ctx, l.rdb, keys, args...).Slice()
	if err == nil && len(v) != 2+3*len(batch) {
		err = fmt.Errorf("unexpected reply of %d values for %d decisions", len(v), len(batch))
	}
	for i, d := range batch {
		if err != nil {
			d.err = fmt.Errorf("deciding rate limit: %w", err)
		} else {
			d.res, d.err = parse([]any{v[2+3*i], v[3+3*i], v[4+3*i], v[0], v[1]}, d.limit)
		}
		close(d.done)
	}
}
