package ratelimit

import (
	"context"
	_ "embed"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Rebuilding a lost window.
//
// Redis holds the only count of a window's admissions. If it loses its
// data (FLUSHALL, a restart without persistence, a failover to a replica
// that had not received the writes), a user who had used the whole
// window would get it again. The durable ledger (Postgres) holds every
// admitted call, recorded before its response: the window is rebuilt
// from it.
//
// The loss is detected by a marker, not by a missing counter (counters
// are missing at every window start): each user's hash in Redis holds
// the Redis time its marker was created, and disappears with the data.
// window.lua creates a missing marker and, for a window that started
// before the marker and whose counter was not built under it, decides
// nothing and answers "rebuild". The Limiter then reads the units the
// ledger holds since the window started (LedgerSkew earlier, erring
// toward over-counting) and seed.lua sets the counter to the larger of
// its value and the ledger's, marked as built under the marker; the
// decision is taken again. Nothing is read-then-written from Go: the
// seed is a max in Lua, the decision stays in Lua, and rebuilders on
// several instances at once are safe. On the normal path this costs no
// round trip: the marker is read in the decision's own script.
//
// A change of the user's window length (a limit override set or
// cleared) is rebuilt the same way: counters record their window length,
// and a counter of another length whose window overlaps the new one
// counted another span, so the units already admitted in the new window
// are read from the ledger rather than forgotten (or, for windows that
// start at the same second, taken from the old count).
//
// The bound: units admitted in the window before the loss but not yet
// in the ledger when it is read (in flight: admitted in Redis, their
// group-commit write not yet committed) are not counted, so a window
// admits at most its limit plus the units in flight at the loss.

//go:embed seed.lua
var seedLua string

var seedScript = redis.NewScript(seedLua)

// Ledger is the durable record a lost window is rebuilt from;
// *postgres.Store.
type Ledger interface {
	// UnitsSince returns the units user was billed at or after since
	// (the ledger's clock), released calls excluded. eventsOnly counts
	// the events alone (windows shorter than a minute), otherwise whole
	// minutes may come from rollups.
	UnitsSince(ctx context.Context, user int64, since time.Time, eventsOnly bool) (int64, error)
}

// LedgerSkew is how much earlier than the window's start (Redis's clock)
// a rebuild starts counting the ledger (Postgres's clock): it absorbs a
// difference between the two clocks by counting a little more, never
// less. Both are NTP-synchronised Google services in production.
const LedgerSkew = 2 * time.Second

const (
	// maxSeeds bounds the rebuilds of one decision; a second is needed
	// only if Redis loses its data again during the first.
	maxSeeds = 3
	// rebuildTimeout bounds one rebuild (ledger query and seed); it is
	// detached from the caller's context because concurrent callers for
	// the same user wait for the same rebuild.
	rebuildTimeout = 5 * time.Second
)

// WithLedger makes the limiter rebuild a user's window from ledger after
// Redis lost its data (AllowUser), and returns l. Without it a lost
// window starts again from zero.
func (l *Limiter) WithLedger(ledger Ledger) *Limiter {
	l.ledger = ledger
	return l
}

// Rebuilds is the number of windows this limiter has seeded from the
// ledger since it was created.
func (l *Limiter) Rebuilds() int64 { return l.rebuilds.Load() }

// rebuild seeds q's window from the ledger, once at a time per user,
// marker and window on this instance (the callers that asked together
// share it).
func (l *Limiter) rebuild(ctx context.Context, q quota, limit Limit, rep reply) error {
	w := int64(limit.Window / time.Second)
	start := rep.res.WindowStart
	key := fmt.Sprintf("%d/%d/%d/%d", q.user, rep.marker, start.Unix(), w)
	_, err, _ := l.flight.Do(key, func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rebuildTimeout)
		defer cancel()
		units, err := l.ledger.UnitsSince(rctx, q.user, start.Add(-LedgerSkew), limit.Window < time.Minute)
		if err != nil {
			return nil, err
		}
		n, err := seedScript.Run(rctx, l.rdb, []string{q.counter, q.hash}, rep.marker, start.Unix(), w, units).Int64()
		if err != nil {
			return nil, unavailable("seeding rate limit from the ledger", err)
		}
		if n >= 0 { // -1: lost again, or the window is over; the retry sees
			l.rebuilds.Add(1)
		}
		return nil, nil
	})
	return err
}
