package ratelimit

import (
	"context"
	_ "embed"
	"fmt"
	"strings"
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

// Batching: concurrent Allow and AllowN calls of one Limiter share Redis round trips,
// by group commit (package group, as the usage recorder): the first
// decision to arrive is sent at once, in its caller's goroutine, and
// decisions arriving while a batch is in flight go together in the next.
// Every decision is still exactly what it would have been alone.
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
	// batchTimeout bounds one batch, retries included; it is detached
	// from the callers' contexts so that a caller hanging up cannot leave
	// its neighbours without an answer.
	batchTimeout = 3 * time.Second
)

// decision is one queued Allow or AllowN call.
type decision struct {
	q     quota
	limit Limit
	n     int64 // cost in units, at least 1
	rep   reply
	err   error
	done  chan struct{}
}

// allowBatched queues one decision and waits for it, even if ctx ends:
// once queued it will be taken, and a caller that left early could not
// give back quota that was taken for it. The wait is bounded by
// batchTimeout.
func (l *Limiter) allowBatched(q quota, limit Limit, n int64) (reply, error) {
	d := &decision{q: q, limit: limit, n: n, done: make(chan struct{})}
	l.batch.Add(d) // never closed
	<-d.done
	return d.rep, d.err
}

// decide sends the batch's decisions in one pipeline of EVALSHAs; those
// that find the script missing (after SCRIPT FLUSH or a failover) are
// retried one by one with EVALSHA-then-EVAL.
func (l *Limiter) decide(p pipeliner, batch []*decision) {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	if len(batch) == 1 {
		d := batch[0]
		d.rep, d.err = l.run(ctx, d.q, d.limit, d.n)
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
		cmds[i] = windowScript.EvalSha(ctx, pipe, d.q.keys(), d.q.args(d.limit, d.n)...)
	}
	pipe.Exec(ctx) // errors are per command
	for i, d := range batch {
		v, err := cmds[i].Slice()
		switch {
		case err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT"):
			d.rep, d.err = l.run(ctx, d.q, d.limit, d.n)
		case err != nil:
			d.err = unavailable("deciding rate limit", err)
		default:
			d.rep, d.err = parse(v, d.limit)
		}
		close(d.done)
	}
}

// keys are window.lua's KEYS for q.
func (q quota) keys() []string {
	if q.hash == "" {
		return []string{q.counter}
	}
	return []string{q.counter, q.hash}
}

// args are window.lua's ARGV for q.
func (q quota) args(limit Limit, n int64) []any {
	w := int64(limit.Window / time.Second)
	if q.kind == kindRebuild {
		return []any{limit.Requests, w, n, 1}
	}
	return []any{limit.Requests, w, n}
}

// run is one unbatched decision.
func (l *Limiter) run(ctx context.Context, q quota, limit Limit, n int64) (reply, error) {
	v, err := windowScript.Run(ctx, l.rdb, q.keys(), q.args(limit, n)...).Slice()
	if err != nil {
		return reply{}, unavailable("deciding rate limit", err)
	}
	return parse(v, limit)
}

// decideInScript takes the batch's decisions in one call of batch.lua.
func (l *Limiter) decideInScript(ctx context.Context, batch []*decision) {
	keys := make([]string, 0, 2*len(batch))
	args := make([]any, 0, 4*len(batch))
	for _, d := range batch {
		hash := d.q.hash
		if hash == "" {
			hash = d.q.counter // a placeholder, never read
		}
		keys = append(keys, d.q.counter, hash)
		args = append(args, d.limit.Requests, int64(d.limit.Window/time.Second), d.n, d.q.kind)
	}
	v, err := batchScript.Run(ctx, l.rdb, keys, args...).Slice()
	if err == nil && len(v) != 2+5*len(batch) {
		err = fmt.Errorf("unexpected reply of %d values for %d decisions", len(v), len(batch))
	}
	for i, d := range batch {
		if err != nil {
			d.err = unavailable("deciding rate limit", err)
		} else {
			d.rep, d.err = parse([]any{v[2+5*i], v[3+5*i], v[4+5*i], v[0], v[1], v[5+5*i], v[6+5*i]}, d.limit)
		}
		close(d.done)
	}
}
