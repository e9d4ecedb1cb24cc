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
package auth

import (
	"context"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/sync/singleflight"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/apikey"
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
	unknown *expirable.LRU[apikey.Digest, *shared.Error]    // nil: no negative cache; ErrUnknownKey or ErrRevokedKey
	group   singleflight.Group
}

// New returns an Authenticator caching up to size principals for ttl.
func New(store lookuper, ttl time.Duration, size int) *Authenticator {
	a := &Authenticator{store: store}
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

// Cached returns the principal of key when this instance has it cached,
// without I/O. Callers use it to skip checks that only guard lookups.
func (a *Authenticator) Cached(key string) (shared.Principal, bool) {
	if a.cache == nil || apikey.Validate(key) != nil {
		return shared.Principal{}, false
	}
	return a.cache.Get(apikey.Hash(key))
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
			return p, nil
		}
	}
	if a.unknown != nil {
		if err, ok := a.unknown.Get(digest); ok {
			return shared.Principal{}, err
		}
	}
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
		if err != shared.ErrRevokedKey {
			err = shared.ErrUnknownKey
		}
		if a.unknown != nil {
			a.unknown.Add(digest, err.(*shared.Error))
		}
		return shared.Principal{}, err
	default:
		return shared.Principal{}, err // EUnavailable from the store
	}
	p := v.(shared.Principal)
	if a.cache != nil {
		a.cache.Add(digest, p)
	}
	return p, nil
}
