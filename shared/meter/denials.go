package meter

import (
	"context"
	"log/slog"
	"time"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/group"
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
// Approximate by design (group.Tally): counts not yet written are lost if
// the instance crashes (Flush writes them on a clean shutdown), a failed
// flush drops its counts (logged), and a minute's count may be written up
// to an interval late. The minute is the instance's clock. There is no
// timer: the gate calls MaybeFlush on every call it sees.
type Denials struct {
	t *group.Tally[denialKey]
}

type denialKey struct {
	user   int64
	minute int64 // Unix seconds of the minute
}

// NewDenials returns a counter writing through w at most once per every
// (at least one second).
func NewDenials(w denialWriter, every time.Duration, log *slog.Logger) *Denials {
	return &Denials{t: group.NewTally(every, "denials", log, func(ctx context.Context, counts map[denialKey]int64) error {
		ds := make([]shared.Denial, 0, len(counts))
		for k, n := range counts {
			ds = append(ds, shared.Denial{UserID: k.user, Minute: time.Unix(k.minute, 0).UTC(), Count: n})
		}
		return w.AddDenials(ctx, ds)
	})}
}

// Note counts one denial of user now.
func (d *Denials) Note(user int64) {
	d.t.Add(denialKey{user: user, minute: time.Now().Unix() / 60 * 60})
}

// MaybeFlush starts a flush in the background when denials are pending
// and the interval has passed. It costs two atomic loads otherwise, so
// the gate calls it on every request.
func (d *Denials) MaybeFlush() { d.t.MaybeFlush() }

// Flush writes the pending counts now (at shutdown).
func (d *Denials) Flush(ctx context.Context) error { return d.t.Flush(ctx) }
