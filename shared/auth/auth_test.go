package auth_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/apikey"
	"github.com/ratebill/platform/shared/auth"
	"github.com/ratebill/platform/shared/postgres"
	"github.com/ratebill/platform/shared/testdb"
)

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	s := postgres.NewStore(testdb.Pool(t))
	ctx := context.Background()
	key, _ := apikey.Generate(nil)
	u, err := s.CreateUser(ctx, "bob", "bob@example.com", apikey.Hash(key), apikey.Display(key))
	if err != nil {
		t.Fatal(err)
	}
	a := auth.New(s, time.Minute, 100)
	unknown, _ := apikey.Generate(nil)
	typo := []byte(key)
	typo[10] = map[bool]byte{true: 'y', false: 'x'}[typo[10] == 'x'] // always a change
	tests := []struct {
		name     string
		key      string
		wantCode shared.Code
	}{
		{"valid", key, ""},
		{"missing", "", shared.EUnauthorized},
		{"malformed", "sk_nope", shared.EUnauthorized},
		{"typo fails checksum", string(typo), shared.EUnauthorized},
		{"unknown", unknown, shared.EUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := a.Authenticate(ctx, tt.key)
			if shared.ErrorCode(err) != tt.wantCode {
				t.Errorf("%s: err = %v, want code %q", tt.name, err, tt.wantCode)
			}
			if tt.wantCode == "" && p.UserID != u.ID {
				t.Errorf("%s: principal %+v", tt.name, p)
			}
		})
	}
}

// TestRevocationBound: a revoked key keeps working at most AUTH_CACHE_TTL
// on an instance that cached it, and stops right away on one that did not.
func TestRevocationBound(t *testing.T) {
	t.Parallel()
	s := postgres.NewStore(testdb.Pool(t))
	ctx := context.Background()
	key, _ := apikey.Generate(nil)
	if _, err := s.CreateUser(ctx, "eve", "eve@example.com", apikey.Hash(key), apikey.Display(key)); err != nil {
		t.Fatal(err)
	}
	const ttl = 300 * time.Millisecond
	cached := auth.New(s, ttl, 100)
	if _, err := cached.Authenticate(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeKey(ctx, apikey.Hash(key)); err != nil {
		t.Fatal(err)
	}
	revokedAt := time.Now()
	fresh := auth.New(s, ttl, 100)
	if _, err := fresh.Authenticate(ctx, key); shared.ErrorCode(err) != shared.EUnauthorized {
		t.Fatalf("uncached instance accepted a revoked key: %v", err)
	}
	for {
		_, err := cached.Authenticate(ctx, key)
		if shared.ErrorCode(err) == shared.EUnauthorized {
			break
		}
		if time.Since(revokedAt) > ttl+time.Second {
			t.Fatalf("revoked key still accepted %v after revocation, bound is %v", time.Since(revokedAt), ttl)
		}
		time.Sleep(20 * time.Millisecond)
	}
	noCache := auth.New(s, 0, 0)
	if _, err := noCache.Authenticate(ctx, key); shared.ErrorCode(err) != shared.EUnauthorized {
		t.Fatalf("TTL 0: %v", err)
	}
}

func TestDatabaseDownIsUnavailable(t *testing.T) {
	t.Parallel()
	pool := testdb.Pool(t)
	s := postgres.NewStore(pool)
	a := auth.New(s, time.Minute, 10)
	pool.Close()
	key, _ := apikey.Generate(nil)
	if _, err := a.Authenticate(context.Background(), key); shared.ErrorCode(err) != shared.EUnavailable {
		t.Fatalf("err = %v, want unavailable", err)
	}
}

// TestNegativeCache: an unknown well-formed key is looked up once per
// AUTH_NEGATIVE_CACHE_TTL, not once per request; a key signed up after
// another key was refused still works at once.
func TestNegativeCache(t *testing.T) {
	t.Parallel()
	s := &testdb.CountingStore{Store: postgres.NewStore(testdb.Pool(t))}
	ctx := context.Background()
	a := auth.New(s, time.Minute, 100).WithNegativeCache(time.Minute, 100)
	unknown, _ := apikey.Generate(nil)
	for range 50 {
		if _, err := a.Authenticate(ctx, unknown); shared.ErrorCode(err) != shared.EUnauthorized {
			t.Fatalf("unknown key: %v", err)
		}
	}
	if n := s.Lookups.Load(); n != 1 {
		t.Fatalf("%d lookups for 50 attempts with one unknown key, want 1", n)
	}
	key, _ := apikey.Generate(nil)
	if _, err := s.CreateUser(ctx, "late", "late@example.com", apikey.Hash(key), apikey.Display(key)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, key); err != nil {
		t.Fatalf("a new key after refusals: %v", err)
	}
	if _, ok := a.Cached(key); !ok {
		t.Fatal("an authenticated key is not reported as cached")
	}
	if _, ok := a.Cached(unknown); ok {
		t.Fatal("an unknown key is reported as cached")
	}
}

// TestLastUseIsBatched: authentications note the key; nothing is written
// per request, one statement per flush interval, and FlushUse writes the
// rest.
func TestLastUseIsBatched(t *testing.T) {
	t.Parallel()
	pool := testdb.Pool(t)
	s := postgres.NewStore(pool)
	ctx := context.Background()
	key, _ := apikey.Generate(nil)
	u, err := s.CreateUser(ctx, "used", "used@example.com", apikey.Hash(key), apikey.Display(key))
	if err != nil {
		t.Fatal(err)
	}
	counting := &countingToucher{store: s}
	a := auth.New(s, time.Minute, 100).WithUseTracking(counting, time.Hour, nil)
	for range 50 {
		if _, err := a.Authenticate(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	if n := counting.calls.Load(); n != 0 {
		t.Fatalf("%d writes within the flush interval, want 0", n)
	}
	if err := a.FlushUse(ctx); err != nil {
		t.Fatal(err)
	}
	var used *time.Time
	if err := pool.QueryRow(ctx, `SELECT last_used_at FROM api_keys WHERE user_id = $1`, u.ID).Scan(&used); err != nil || used == nil {
		t.Fatalf("last_used_at %v %v", used, err)
	}
	if n := counting.calls.Load(); n != 1 {
		t.Fatalf("%d writes for 50 uses, want 1", n)
	}
}

type countingToucher struct {
	store *postgres.Store
	calls atomic.Int64
}

func (c *countingToucher) TouchKeys(ctx context.Context, ids []int64) error {
	c.calls.Add(1)
	return c.store.TouchKeys(ctx, ids)
}

// TestExpiredKeyIsNotServedFromCache: a cached key past its expiry is
// looked up again (and refused as expired), never served.
func TestExpiredKeyIsNotServedFromCache(t *testing.T) {
	t.Parallel()
	pool := testdb.Pool(t)
	s := postgres.NewStore(pool)
	ctx := context.Background()
	key, _ := apikey.Generate(nil)
	u, err := s.CreateUser(ctx, "expiring", "expiring@example.com", apikey.Hash(key), apikey.Display(key))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE api_keys SET expires_at = now() + interval '300 milliseconds' WHERE user_id = $1`, u.ID); err != nil {
		t.Fatal(err)
	}
	a := auth.New(s, time.Hour, 100)
	p, err := a.Authenticate(ctx, key)
	if err != nil || p.KeyExpiresAt.IsZero() {
		t.Fatalf("%+v %v", p, err)
	}
	for time.Now().Before(p.KeyExpiresAt.Add(50 * time.Millisecond)) {
		time.Sleep(time.Until(p.KeyExpiresAt.Add(50 * time.Millisecond)))
	}
	if _, ok := a.Cached(key); ok {
		t.Fatal("Cached returned an expired key")
	}
	if _, err := a.Authenticate(ctx, key); err != shared.ErrExpiredKey {
		t.Fatalf("expired key: %v, want ErrExpiredKey", err)
	}
}
