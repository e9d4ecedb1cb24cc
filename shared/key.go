package shared

import "time"

// Key is one of a user's API keys, as its owner and the operator see it:
// never the key itself, which is shown once when it is created.
type Key struct {
	ID     int64
	UserID int64
	Name   string
	// Prefix is the display prefix, e.g. "sk_AbCd1234".
	Prefix    string
	CreatedAt time.Time
	// ExpiresAt is when the key stops working (set at creation, or by a
	// rotation's grace period); nil: never.
	ExpiresAt *time.Time
	// RevokedAt is when the key was revoked; nil: not revoked.
	RevokedAt *time.Time
	// LastUsedAt is approximate: instances write the keys they saw used
	// in batches (KEYS_LAST_USED_FLUSH); nil: not used since tracking
	// began.
	LastUsedAt *time.Time
}

// NewKey is a key just created: the key itself (APIKey), shown once.
type NewKey struct {
	Key
	APIKey string
}

// KeyChange is the outcome of a change to a key that cached principals
// must see (revocation, rotation): the key after the change and the
// user's new version, to publish once the change is committed.
type KeyChange struct {
	Key     Key
	Version int64
}
