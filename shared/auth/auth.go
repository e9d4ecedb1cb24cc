// Package auth authenticates API keys.
//
// A malformed key (wrong format or checksum) is rejected before any I/O.
// A well-formed key is hashed and looked up; a found principal is cached
// per instance for at most TTL, so a revoked key stops working within TTL
// (AUTH_CACHE_TTL, 10 s by default; 0 disables the cache). A well-formed
// key that is not found is remembered as unknown for NegativeTTL
// (AUTH_NEGATIVE_CACHE_TTL, 30 s), so repeating it costs no lookup; a key
// issued later cannot be among them, since keys are 256 random bits, so a
// key still works the moment its sign-up returns. Concurrent misses for
// one key share one lookup.
//
// A key with an expiry (POST /keys {"expires_in"}, a rotation's grace
// period) is never served from the cache past its expiry: the cached
// principal carries it and is checked on every hit. A change that cached
// principals must see (revocation, suspension, a limit) is noticed by the
// gate, which compares the user's version in Redis with the principal's
// and calls Revalidate.
//
// Every successful authentication notes the key's id; the ids are written
// to api_keys.last_used_at in one statement at most once per flush
// interval (WithUseTracking), so last use is approximate and costs no
// write per request.
package auth

import (
	"context"
	"log/slog"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/sync/singleflight"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/apikey"
	"github.com/ratebill/platform/shared/group"
	"github.com/ratebill/platform/shared/telemetry"
)

// Header carries the API key.
const Header = "X-API-Key"

// lookuper is the storage auth needs; *postgres.Store implements it.
type lookuper interface {
	LookupKey(ctx context.Context, digest apikey.Digest) (shared.Principal, error)
}

// Authenticator checks keys against the store, with a bounded cache.
type Authenticator struct {
	store   lookuper
	cache   *expirable.LRU[apikey.Digest, shared.Principal] // nil: no cache
	unknown *expirable.LRU[apikey.Digest, *shared.Error]    // nil: no negative cache; ErrUnknownKey, ErrRevokedKey or ErrExpiredKey
	group   singleflight.Group
	used    *group.Tally[int64]  // nil: last use not tracked
	tel     *telemetry.Telemetry // nil: off
	now     func() time.Time
}

// WithTelemetry counts cache hits and misses and Postgres lookup
// failures through t, and returns a.
func (a *Authenticator) WithTelemetry(t *telemetry.Telemetry) *Authenticator {
	a.tel = t
	return a
}

// New returns an Authenticator caching up to size principals for ttl.
func New(store lookuper, ttl time.Duration, size int) *Authenticator {
	a := &Authenticator{store: store, now: time.Now}
	if ttl > 0 && size > 0 {
		a.cache = expirable.NewLRU[apikey.Digest, shared.Principal](size, nil, ttl)
	}
	return a
}

// WithNegativeCache makes a remember up to size unknown keys for ttl
// (0 disables) and returns a.
func (a *Authenticator) WithNegativeCache(ttl time.Duration, size int) *Authenticator {
	if ttl > 0 && size > 0 {
		a.unknown = expirable.NewLRU[apikey.Digest, *shared.Error](size, nil, ttl)
	}
	return a
}

// Cached returns the principal of key when this instance has it cached
// (and it has not expired), without I/O. Callers use it to skip checks
// that only guard lookups.
func (a *Authenticator) Cached(key string) (shared.Principal, bool) {
	if a.cache == nil || apikey.Validate(key) != nil {
		return shared.Principal{}, false
	}
	p, ok := a.cache.Get(apikey.Hash(key))
	if !ok || p.Expired(a.now()) {
		return shared.Principal{}, false // Authenticate follows and counts the miss
	}
	a.tel.AuthCache(context.Background(), telemetry.CacheHit)
	a.noteUse(p.KeyID)
	return p, true
}

// Revalidate drops the cached principal of the key with digest and looks
// the key up again (the gate calls it when the user's version moved).
// Errors as Authenticate's.
func (a *Authenticator) Revalidate(ctx context.Context, digest [32]byte) (shared.Principal, error) {
	if a.cache != nil {
		a.cache.Remove(digest)
	}
	return a.lookup(ctx, digest)
}

// Authenticate returns the principal owning key. Errors are *shared.Error:
// EUnauthorized for a missing, malformed, unknown or revoked key;
// EUnavailable when Postgres cannot answer.
func (a *Authenticator) Authenticate(ctx context.Context, key string) (shared.Principal, error) {
	if key == "" {
		return shared.Principal{}, shared.Errorf(shared.EUnauthorized, "missing API key: send it in the %s header", Header)
	}
	if err := apikey.Validate(key); err != nil {
		return shared.Principal{}, shared.Errorf(shared.EUnauthorized, "malformed API key: check that it was copied whole")
	}
	digest := apikey.Hash(key)
	if a.cache != nil {
		if p, ok := a.cache.Get(digest); ok {
			if !p.Expired(a.now()) {
				a.tel.AuthCache(ctx, telemetry.CacheHit)
				a.noteUse(p.KeyID)
				return p, nil
			}
			a.cache.Remove(digest) // expired: the lookup below says so
		}
	}
	if a.unknown != nil {
		if err, ok := a.unknown.Get(digest); ok {
			a.tel.AuthCache(ctx, telemetry.CacheNegativeHit)
			return shared.Principal{}, err
		}
	}
	a.tel.AuthCache(ctx, telemetry.CacheMiss)
	return a.lookup(ctx, digest)
}

// lookup asks the store for the key with digest (one lookup shared by
// concurrent callers) and caches the answer.
func (a *Authenticator) lookup(ctx context.Context, digest apikey.Digest) (shared.Principal, error) {
	v, err, _ := a.group.Do(string(digest[:]), func() (any, error) {
		// Detached from the first caller: its cancellation must not fail
		// the others sharing the lookup.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return a.store.LookupKey(lctx, digest)
	})
	switch shared.ErrorCode(err) {
	case "":
	case shared.ENotFound, shared.EUnauthorized:
		if err != shared.ErrRevokedKey && err != shared.ErrExpiredKey {
			err = shared.ErrUnknownKey
		}
		if a.unknown != nil {
			a.unknown.Add(digest, err.(*shared.Error))
		}
		return shared.Principal{}, err
	default:
		a.tel.DependencyError(ctx, telemetry.Postgres)
		return shared.Principal{}, err // EUnavailable from the store
	}
	p := v.(shared.Principal)
	if a.cache != nil {
		a.cache.Add(digest, p)
	}
	a.noteUse(p.KeyID)
	return p, nil
}

// toucher records key use; *postgres.Store.
type toucher interface {
	TouchKeys(ctx context.Context, ids []int64) error
}

// WithUseTracking makes a note the id of every key it authenticates and
// write them to the store's last_used_at in one statement, at most once
// per every (KEYS_LAST_USED_FLUSH; group.Tally): the flush starts on the
// first authentication after every has passed since the last one (Cloud
// Run gives an instance CPU only while it serves requests, so there is no
// timer), and FlushUse writes what is left at shutdown. It returns a.
func (a *Authenticator) WithUseTracking(store toucher, every time.Duration, log *slog.Logger) *Authenticator {
	if every > 0 {
		a.used = group.NewTally(every, "key uses", log, func(ctx context.Context, counts map[int64]int64) error {
			ids := make([]int64, 0, len(counts))
			for id := range counts {
				ids = append(ids, id)
			}
			return store.TouchKeys(ctx, ids)
		})
	}
	return a
}

// FlushUse writes the key uses noted since the last flush now (at
// shutdown).
func (a *Authenticator) FlushUse(ctx context.Context) error {
	if a.used == nil {
		return nil
	}
	return a.used.Flush(ctx)
}

func (a *Authenticator) noteUse(id int64) {
	if a.used != nil {
		a.used.Add(id)
	}
}
