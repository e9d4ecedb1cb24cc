package shared

import (
	"time"

	"github.com/shopspring/decimal"

	"github.com/ratebill/platform/shared/pricing"
)

// User is a registered user.
type User struct {
	ID        int64
	Username  string
	Email     string
	KeyPrefix string // display prefix of the current API key, e.g. "sk_AbCd1234"
	CreatedAt time.Time
}

// Principal is the authenticated caller of a request: the key and its
// user as looked up (and possibly cached) at one moment.
type Principal struct {
	UserID    int64
	KeyID     int64
	Username  string
	Email     string
	KeyPrefix string
	CreatedAt time.Time // the user's
	// KeyDigest is the SHA-256 of the key, kept so that the principal can
	// be looked up again (revalidated); never logged or encoded.
	KeyDigest [32]byte
	// KeyExpiresAt is when the key stops working (its expiry, or the end
	// of a rotation's grace period); zero: never.
	KeyExpiresAt time.Time
	// Suspended reports a suspended user: every key is refused (403).
	Suspended bool
	// LimitUnits and LimitWindow are the user's limit override (units per
	// window); zero: the default limit applies.
	LimitUnits  int64
	LimitWindow time.Duration
	// Plan names the user's plan in effect at lookup ("default" without
	// an assignment), and PlanDef is its definition (limits, price); nil
	// for a plan that follows the configuration (the default plan:
	// API_RATE_LIMIT per API_RATE_WINDOW, BILLING_UNIT_PRICE). Cached
	// with the principal, so the hot path reads no plan from Postgres.
	Plan    string
	PlanDef *pricing.Plan
	// SpendCap is the most the user's calendar month may cost (the
	// deployment's currency); nil: no cap.
	SpendCap *decimal.Decimal
	// Version is users.version at lookup: every change that must reach
	// cached principals (revocation, expiry, suspension, limit) raises it
	// and publishes it to Redis; a cached principal with an older version
	// is looked up again.
	Version int64
}

// Expired reports whether the key has expired at now.
func (p Principal) Expired(now time.Time) bool {
	return !p.KeyExpiresAt.IsZero() && !now.Before(p.KeyExpiresAt)
}

// UsageEvent is one metered request to record.
type UsageEvent struct {
	UserID    int64
	RequestID string // unique per user; a repeated id is not counted again
	Endpoint  string // the route's label, e.g. "/usage"
	// Units is the call's cost in units; 0 means 1 (a call without a
	// cost). Limits, usage and bills count units.
	Units int64
	// ReleaseHash is the SHA-256 of the call's release token, or nil when
	// the call cannot be released.
	ReleaseHash []byte
}

// UsageResult is the outcome of recording one UsageEvent.
type UsageResult struct {
	// Total is the user's metered requests so far, this one included.
	Total int64
	// TotalUnits is the user's metered units so far, this one included.
	TotalUnits int64
	// Duplicate reports that the request id had already been recorded:
	// nothing was added (Total and TotalUnits are the current totals).
	Duplicate bool
	// For a Duplicate, what the ledger holds of the first record:
	// Replays counts the times the id came again (this one included), Age
	// is the time since the first record (database clock), FirstUnits its
	// units, and Released whether it was released.
	Replays    int
	Age        time.Duration
	FirstUnits int64
	Released   bool
}

// Release is the outcome of releasing a call by its token.
type Release struct {
	UserID    int64
	RequestID string
	Units     int64
	// RecordedAt is when the call was recorded (database clock).
	RecordedAt time.Time
}

// Period is a billed span on the database clock, with the metered
// requests (admitted calls) and units it holds.
type Period struct {
	Start, End time.Time
	Requests   int64
	Units      int64
}

// Denial is a count of calls refused by one user's rate limit within one
// minute (approximate: see meter.Denials).
type Denial struct {
	UserID int64
	Minute time.Time // whole minute, UTC
	Count  int64
}
