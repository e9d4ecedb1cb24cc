package main

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ratebill/platform/shared/apikey"
	"github.com/ratebill/platform/shared/postgres"
	"github.com/ratebill/platform/shared/testdb"
)

// TestCloseTwice: the command closes a month once; a second run stores
// nothing and changes nothing; a bad month is refused.
func TestCloseTwice(t *testing.T) {
	url := testdb.DatabaseURL(t)
	t.Setenv("DATABASE_URL", url)
	t.Setenv("INIT_DB", "false")
	t.Setenv("BILLING_UNIT_PRICE", "0.02")
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store := postgres.NewStore(pool)
	for _, name := range []string{"alice", "bob"} {
		key, _ := apikey.Generate(nil)
		u, err := store.CreateUser(ctx, name, name+"@example.com", apikey.Hash(key), apikey.Display(key))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `UPDATE users SET created_at = '2026-09-15Z' WHERE id = $1;`, u.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO usage_minutes (user_id, minute, requests, units) VALUES ($1, '2026-10-10 10:10Z', 7, 70)`, u.ID); err != nil {
			t.Fatal(err)
		}
	}
	total := func() (n int, sum string) {
		if err := pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(total), 0)::text FROM invoices WHERE period = '2026-10'`).Scan(&n, &sum); err != nil {
			t.Fatal(err)
		}
		return
	}
	for i := 0; i < 2; i++ {
		if err := run([]string{"-period", "2026-10"}); err != nil {
			t.Fatal(err)
		}
		if n, sum := total(); n != 2 || sum != "2.80" {
			t.Fatalf("run %d: %d invoices, %s", i, n, sum)
		}
	}
	for _, bad := range [][]string{{"-period", "2026-13"}, {"-period", "26-10"}, {"-nope"}} {
		if err := run(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
