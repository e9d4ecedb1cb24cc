package postgres_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/apikey"
	"github.com/ratebill/platform/shared/postgres"
	"github.com/ratebill/platform/shared/testdb"
)

func userActor(id int64) postgres.AuditEntry {
	return postgres.AuditEntry{ActorType: postgres.ActorUser, ActorID: id, RemoteAddr: "203.0.113.7", RequestID: "test-request-1"}
}

// TestKeyLifecycle: issue, list, rotate with grace, rotate now, revoke;
// each change's audit row and version, and what LookupKey says after.
func TestKeyLifecycle(t *testing.T) {
	t.Parallel()
	pool := testdb.Pool(t)
	s := postgres.NewStore(pool)
	ctx := context.Background()
	uid, first := newUser(t, s, "keyowner")
	other, _ := newUser(t, s, "stranger")

	k, err := s.IssueKey(ctx, uid, "ci", time.Hour, userActor(uid))
	if err != nil {
		t.Fatal(err)
	}
	if k.Name != "ci" || k.UserID != uid || k.ExpiresAt == nil || time.Until(*k.ExpiresAt) < 59*time.Minute || apikey.Validate(k.APIKey) != nil || k.Prefix != apikey.Display(k.APIKey) {
		t.Fatalf("issued %+v", k)
	}
	p, err := s.LookupKey(ctx, apikey.Hash(k.APIKey))
	if err != nil || p.UserID != uid || p.KeyID != k.ID || p.KeyExpiresAt.IsZero() || p.Version != 0 {
		t.Fatalf("lookup of the new key: %+v %v", p, err)
	}
	keys, err := s.ListKeys(ctx, uid)
	if err != nil || len(keys) != 2 || keys[0].ID != k.ID || keys[1].Prefix != apikey.Display(first) {
		t.Fatalf("list: %+v %v", keys, err)
	}

	// Rotation with grace: the old key keeps working until then.
	nk, old, err := s.RotateKey(ctx, uid, k.ID, 10*time.Minute, userActor(uid))
	if err != nil {
		t.Fatal(err)
	}
	if nk.Name != "ci" || nk.ExpiresAt != nil || old.Version != 1 || old.Key.ExpiresAt == nil || time.Until(*old.Key.ExpiresAt) > 11*time.Minute || old.Key.RevokedAt != nil {
		t.Fatalf("rotated: new %+v old %+v", nk, old)
	}
	if p, err := s.LookupKey(ctx, apikey.Hash(k.APIKey)); err != nil || p.Version != 1 {
		t.Fatalf("old key in its grace period: %+v %v", p, err)
	}
	// A longer grace never extends an expiry.
	_, old2, err := s.RotateKey(ctx, uid, k.ID, 7*24*time.Hour, userActor(uid))
	if err != nil || !old2.Key.ExpiresAt.Equal(*old.Key.ExpiresAt) {
		t.Fatalf("second rotation: %+v %v", old2, err)
	}
	// Grace 0: revoked now.
	_, now, err := s.RotateKey(ctx, uid, nk.ID, 0, userActor(uid))
	if err != nil || now.Key.RevokedAt == nil || now.Version != 3 {
		t.Fatalf("rotation without grace: %+v %v", now, err)
	}
	if _, err := s.LookupKey(ctx, apikey.Hash(nk.APIKey)); err != shared.ErrRevokedKey {
		t.Fatalf("key rotated without grace: %v", err)
	}

	// Another user's key, a missing one, a revoked one: one answer.
	for name, id := range map[string]int64{"missing": 1 << 40, "revoked": nk.ID} {
		if _, err := s.RevokeKeyByID(ctx, uid, id, userActor(uid)); shared.ErrorCode(err) != shared.ENotFound || err.(*shared.Error).Message != "no such key" {
			t.Errorf("revoke %s: %v", name, err)
		}
		if _, _, err := s.RotateKey(ctx, uid, id, 0, userActor(uid)); shared.ErrorCode(err) != shared.ENotFound || err.(*shared.Error).Message != "no such key" {
			t.Errorf("rotate %s: %v", name, err)
		}
	}
	if _, err := s.RevokeKeyByID(ctx, other, k.ID, userActor(other)); shared.ErrorCode(err) != shared.ENotFound {
		t.Errorf("revoke another user's key: %v", err)
	}
	if _, _, err := s.RotateKey(ctx, other, k.ID, 0, userActor(other)); shared.ErrorCode(err) != shared.ENotFound {
		t.Errorf("rotate another user's key: %v", err)
	}

	// The operator's form: any user's key.
	ch, err := s.RevokeKeyByID(ctx, 0, k.ID, postgres.AuditEntry{ActorType: postgres.ActorOperator, ActorID: 1, ActorName: "ops"})
	if err != nil || ch.Key.RevokedAt == nil || ch.Key.UserID != uid || ch.Version != 4 {
		t.Fatalf("operator revoke: %+v %v", ch, err)
	}
	if _, err := s.LookupKey(ctx, apikey.Hash(k.APIKey)); err != shared.ErrRevokedKey {
		t.Fatalf("revoked key: %v", err)
	}
	if _, err := s.IssueKey(ctx, 1<<40, "", 0, userActor(0)); shared.ErrorCode(err) != shared.ENotFound {
		t.Fatalf("key for a missing user: %v", err)
	}

	// The audit log: one row per change, actor and target, in order; the
	// same transaction (the failed changes above wrote nothing).
	rows, err := pool.Query(ctx, `SELECT action, actor_type, coalesce(actor_id, 0), user_id, target, request_id FROM audit_log ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var action, typ, target, rid string
		var actor, user int64
		if err := rows.Scan(&action, &typ, &actor, &user, &target, &rid); err != nil {
			t.Fatal(err)
		}
		if user != uid {
			t.Errorf("audit row %s for user %d, want %d", action, user, uid)
		}
		got = append(got, action+" "+typ+" "+target)
	}
	want := []string{
		"key.create user key:" + itoa(k.ID),
		"key.rotate user key:" + itoa(k.ID),
		"key.rotate user key:" + itoa(k.ID),
		"key.rotate user key:" + itoa(nk.ID),
		"key.revoke operator key:" + itoa(k.ID),
	}
	if len(got) != len(want) {
		t.Fatalf("audit rows %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("audit row %d: %q, want %q", i, got[i], want[i])
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestKeyCap: at most the cap of active keys, under concurrency too;
// revoked and expired keys leave the count, grace keys stay in it.
func TestKeyCap(t *testing.T) {
	t.Parallel()
	pool := testdb.Pool(t)
	s := postgres.NewStore(pool).WithKeyCap(3)
	ctx := context.Background()
	uid, _ := newUser(t, s, "capped") // one key already

	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() { _, errs[i] = s.IssueKey(ctx, uid, "k", 0, userActor(uid)) })
	}
	wg.Wait()
	ok, conflicts := 0, 0
	for _, err := range errs {
		switch shared.ErrorCode(err) {
		case "":
			ok++
		case shared.EConflict:
			conflicts++
		default:
			t.Fatal(err)
		}
	}
	if ok != 2 || conflicts != 4 {
		t.Fatalf("%d issued, %d conflicts; want 2 and 4 (cap 3, one key at sign-up)", ok, conflicts)
	}
	keys, _ := s.ListKeys(ctx, uid)
	// A rotation with grace needs room for the new key; without grace the
	// old one leaves the count.
	if _, _, err := s.RotateKey(ctx, uid, keys[0].ID, time.Hour, userActor(uid)); shared.ErrorCode(err) != shared.EConflict {
		t.Fatalf("rotation with grace at the cap: %v", err)
	}
	if _, _, err := s.RotateKey(ctx, uid, keys[0].ID, 0, userActor(uid)); err != nil {
		t.Fatalf("rotation without grace at the cap: %v", err)
	}
	// An expired key leaves the count.
	if _, err := pool.Exec(ctx, `UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1`, keys[1].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.IssueKey(ctx, uid, "after expiry", 0, userActor(uid)); err != nil {
		t.Fatalf("issue after one expired: %v", err)
	}
}

// TestLookupKeyStates: expiry, suspension, limit override and version
// as LookupKey reports them.
func TestLookupKeyStates(t *testing.T) {
	t.Parallel()
	pool := testdb.Pool(t)
	s := postgres.NewStore(pool)
	ctx := context.Background()
	uid, key := newUser(t, s, "states")
	if _, err := pool.Exec(ctx, `UPDATE users SET suspended_at = now(), suspended_reason = 'abuse', limit_units = 5, limit_window_seconds = 60, version = 7 WHERE id = $1`, uid); err != nil {
		t.Fatal(err)
	}
	p, err := s.LookupKey(ctx, apikey.Hash(key))
	if err != nil || !p.Suspended || p.LimitUnits != 5 || p.LimitWindow != time.Minute || p.Version != 7 || p.KeyDigest != apikey.Hash(key) {
		t.Fatalf("lookup %+v %v", p, err)
	}
	if _, err := pool.Exec(ctx, `UPDATE api_keys SET expires_at = now() WHERE user_id = $1`, uid); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupKey(ctx, apikey.Hash(key)); err != shared.ErrExpiredKey {
		t.Fatalf("expired key: %v, want ErrExpiredKey", err)
	}
}

// TestTouchKeys: one statement sets last_used_at, never backwards.
func TestTouchKeys(t *testing.T) {
	t.Parallel()
	s := postgres.NewStore(testdb.Pool(t))
	ctx := context.Background()
	uid, _ := newUser(t, s, "toucher")
	keys, _ := s.ListKeys(ctx, uid)
	if keys[0].LastUsedAt != nil {
		t.Fatalf("new key used at %v", keys[0].LastUsedAt)
	}
	if err := s.TouchKeys(ctx, []int64{keys[0].ID, keys[0].ID, 1 << 40}); err != nil {
		t.Fatal(err)
	}
	keys, _ = s.ListKeys(ctx, uid)
	if keys[0].LastUsedAt == nil || time.Since(*keys[0].LastUsedAt) > time.Minute {
		t.Fatalf("last used %v", keys[0].LastUsedAt)
	}
}
