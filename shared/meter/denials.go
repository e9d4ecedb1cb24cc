package meter

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ratebill/platform/shared"
)

// denialWriter adds denial counts to the rollups; *postgres.Store.
type denialWriter interface {
	AddDenials(ctx context.Context, ds []shared.Denial) error
}

// Denials counts the calls refused by a user's rate limit, per user and
// minute, in memory, and adds the counts to the minute rollups in one
// statement at most once per flush interval (USAGE_DENIED_FLUSH). A
// denial is never billed, so it is never a write of its own: an abuser
// hammering a key that is over its limit costs Postgres one statement per
// interval per instance, whatever the rate.
//
// Approximate by design: counts not yet written are lost if the instance
// crashes (Close writes them on a clean shutdown), a failed flush drops
// its counts (logged), and a minute's count may be written up to an
// interval late. The minute is the instance's clock.
//
// Cloud Run gives an instance CPU only while it serves requests, so there
// is no timer: the gate calls MaybeFlush on every call it sees, and a
// flush starts when counts are pending and the interval has passed.
type Denials struct {
	w     denialWriter
	every time.Duration
	log   *slog.Logger
	now   func() time.Time

	pending   atomic.Int64 // counts noted since the last take
	lastFlush atomic.Int64 // Unix nanoseconds of the last take

	mu       sync.Mutex
	counts   map[denialKey]int64
	flushing bool
}

type denialKey struct {
	user   int64
	minute int64 // Unix seconds of the minute
}

// NewDenials returns a counter writing through w at most once per every
// (at least one second).
func NewDenials(w denialWriter, every time.Duration, log *slog.Logger) *Denials {
	if every < time.Second {
		every = time.Second
	}
	if log == nil {
		log = slog.Default()
	}
	d := &Denials{w: w, every: every, log: log, now: time.Now, counts: map[denialKey]int64{}}
	d.lastFlush.Store(d.now().UnixNano())
	return d
}

// Note counts one denial of user now.
func (d *Denials) Note(user int64) {
	now := d.now()
	k := denialKey{user: user, minute: now.Unix() / 60 * 60}
	d.mu.Lock()
	d.counts[k]++
	d.mu.Unlock()
	d.pending.Add(1)
	d.MaybeFlush()
}

// MaybeFlush starts a flush in the background when counts are pending
// and the interval has passed since the last one. It costs two atomic
// loads otherwise, so the gate calls it on every request.
func (d *Denials) MaybeFlush() {
	if d.pending.Load() == 0 {
		return
	}
	now := d.now()
	if now.UnixNano()-d.lastFlush.Load() < int64(d.every) {
		return
	}
	d.mu.Lock()
	if d.flushing {
		d.mu.Unlock()
		return
	}
	ds := d.take(now)
	d.flushing = true
	d.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.w.AddDenials(ctx, ds); err != nil {
			d.log.Warn("recording denials failed; they are not billed and are dropped", "rows", len(ds), "error", err.Error())
		}
		d.mu.Lock()
		d.flushing = false
		d.mu.Unlock()
	}()
}

// Flush writes the pending counts now (at shutdown).
func (d *Denials) Flush(ctx context.Context) error {
	d.mu.Lock()
	ds := d.take(d.now())
	d.mu.Unlock()
	return d.w.AddDenials(ctx, ds)
}

// take returns the pending counts and starts a new interval; d.mu is
// held.
func (d *Denials) take(now time.Time) []shared.Denial {
	ds := make([]shared.Denial, 0, len(d.counts))
	for k, n := range d.counts {
		ds = append(ds, shared.Denial{UserID: k.user, Minute: time.Unix(k.minute, 0).UTC(), Count: n})
	}
	clear(d.counts)
	d.pending.Store(0)
	d.lastFlush.Store(now.UnixNano())
	return ds
}
