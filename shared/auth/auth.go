// Package auth authenticates API keys.
//
// A malformed key (wrong format or checksum) is rejected before any I/O.
// A well-formed key is hashed and looked up; a found principal is cached
// per instance for at most TTL, so a revoked key stops working within TTL
// (AUTH_CACHE_TTL, 10 s by default; 0 disables the cache). Unknown keys are
// never cached, so a key works the moment its sign-up returns. Concurrent
// misses for one key share one lookup.
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
	store lookuper
	cache *expirable.LRU[apikey.Digest, shared.Principal] // nil: no cache
	group singleflight.Group
}

// New returns an Authenticator caching up to size principals for ttl.
func New(store lookuper, ttl time.Duration, size int) *Authenticator {
	a := &Authenticator{store: store}
	if ttl > 0 && size > 0 {
		a.cache = expirable.NewLRU[apikey.Digest, shared.Principal](size, nil, ttl)
	}
	return a
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
	v, err, _ := a.group.Do(string(digest[:]), func() (any, error) {
		// Detached from the first caller: its cancellation must not fail
		// the others sharing the lookup.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return a.store.LookupKey(lctx, digest)
	})
	switch shared.ErrorCode(err) {
	case "":
	case shared.ENotFound:
		return shared.Principal{}, shared.Errorf(shared.EUnauthorized, "unknown or revoked API key")
	default:
		return shared.Principal{}, err // EUnavailable from the store
	}
	p := v.(shared.Principal)
	if a.cache != nil {
		a.cache.Add(digest, p)
	}
	return p, nil
}
