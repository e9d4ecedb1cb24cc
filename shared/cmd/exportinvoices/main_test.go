package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/ratebill/platform/shared/apikey"
	"github.com/ratebill/platform/shared/invoicing"
	"github.com/ratebill/platform/shared/postgres"
	"github.com/ratebill/platform/shared/pricing"
	"github.com/ratebill/platform/shared/testdb"
)

// TestExport: the closed invoices of a month as CSV (one row per line,
// formulas defused) and JSON; both add up to the stored totals; an open
// month, a bad format or month is refused.
func TestExport(t *testing.T) {
	url := testdb.DatabaseURL(t)
	t.Setenv("DATABASE_URL", url)
	t.Setenv("INIT_DB", "false")
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store := postgres.NewStore(pool)
	growth, err := pricing.ParsePlan([]byte(`{"name":"growth","currency":"USD","fixed_fee":"49","included_units":100,
		"price":{"kind":"graduated","tiers":[{"up_to":1000,"unit_price":"0.002"},{"up_to":null,"unit_price":"0.001"}]},
		"limits":[{"name":"default","units":100,"window_seconds":60,"algorithm":"fixed"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CreatePlan(ctx, growth); err != nil {
		t.Fatal(err)
	}
	p, _ := invoicing.ParsePeriod("period", "2026-10")
	for i, name := range []string{"alice", "=HYPERLINK(\"x\")", "carol"} {
		key, _ := apikey.Generate(nil)
		u, err := store.CreateUser(ctx, name, "u"+string(rune('a'+i))+"@example.com", apikey.Hash(key), apikey.Display(key))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `UPDATE users SET created_at = '2026-09-01Z' WHERE id = $1`, u.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO usage_minutes (user_id, minute, requests, units) VALUES ($1, '2026-10-20 08:00Z', 5, $2)`, u.ID, 700*(i+1)); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if _, err := pool.Exec(ctx, `INSERT INTO plan_assignments (user_id, effective_from, plan_name) VALUES ($1, '2026-09-01Z', 'growth')`, u.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	svc := &invoicing.Service{Store: store, Default: pricing.DefaultPlan(1000, 24*time.Hour, decimal.RequireFromString("0.01"), "USD"),
		Now: func() time.Time { return p.End().Add(2 * time.Hour) }}
	if r, err := svc.Close(ctx, p); err != nil || r.Closed != 3 {
		t.Fatalf("%+v %v", r, err)
	}
	var want string
	if err := pool.QueryRow(ctx, `SELECT sum(total)::text FROM invoices WHERE period = '2026-10'`).Scan(&want); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	if err := run([]string{"-period", "2026-10", "-format", "csv"}, &out); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	// alice: fee, included, a tier; the others one line each.
	if len(rows) != 1+3+1+1 || strings.Join(rows[0], ",") != strings.Join(invoicing.CSVHeader, ",") {
		t.Fatalf("%q", rows)
	}
	sum := decimal.Zero
	for _, r := range rows[1:] {
		sum = sum.Add(decimal.RequireFromString(r[13]))
		if strings.HasPrefix(r[2], "=") {
			t.Fatalf("formula not defused: %q", r)
		}
	}
	// alice: 49 + 0 + 600 x 0.002 = 50.20; 1400 x 0.01 = 14.00; 21.00.
	if sum.StringFixed(2) != want || want != "85.20" || rows[1][14] != "50.20" {
		t.Fatalf("lines add up to %s, stored %s\n%q", sum, want, rows)
	}

	out.Reset()
	if err := run([]string{"-period", "2026-10", "-format", "json"}, &out); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Items []struct {
			Username string `json:"username"`
			Total    string `json:"total"`
			Status   string `json:"status"`
			Lines    []any  `json:"lines"`
		} `json:"items"`
		NextCursor *string `json:"next_cursor"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("%v: %s", err, out.Bytes())
	}
	if len(doc.Items) != 3 || doc.Items[0].Total != "50.20" || doc.Items[0].Status != "closed" || len(doc.Items[0].Lines) != 3 || doc.NextCursor != nil {
		t.Fatalf("%s", out.Bytes())
	}

	for _, bad := range [][]string{
		{"-period", time.Now().UTC().Format("2006-01"), "-format", "csv"},
		{"-period", "2026-10", "-format", "xml"},
		{"-period", "2026-13"},
		{},
	} {
		if err := run(bad, &out); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
