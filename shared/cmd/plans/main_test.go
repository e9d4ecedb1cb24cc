package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ratebill/platform/shared/apikey"
	"github.com/ratebill/platform/shared/postgres"
	"github.com/ratebill/platform/shared/testdb"
)

const growth = `{"name": "growth", "currency": "USD", "fixed_fee": "49.00", "included_units": 10000,
 "price": {"kind": "graduated", "tiers": [{"up_to": 100000, "unit_price": "0.002"}, {"up_to": null, "unit_price": "0.001"}]},
 "limits": [{"name": "default", "units": 5000, "window_seconds": 60, "algorithm": "sliding"}]}`

func TestPlansCommand(t *testing.T) {
	url := testdb.DatabaseURL(t)
	t.Setenv("DATABASE_URL", url)
	t.Setenv("INIT_DB", "false")
	t.Setenv("BILLING_UNIT_PRICE", "0.03")
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	key, _ := apikey.Generate(nil)
	u, err := postgres.NewStore(pool).CreateUser(ctx, "planned", "planned@example.com", apikey.Hash(key), apikey.Display(key))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("growth.json", growth)
	var out bytes.Buffer
	if err := run([]string{"create", "-file", good}, &out); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"twice":          {[]string{"create", "-file", good}, "exists"},
		"no file":        {[]string{"create"}, "-file is required"},
		"missing file":   {[]string{"create", "-file", filepath.Join(dir, "nope.json")}, "no such file"},
		"bad tiers":      {[]string{"create", "-file", write("bad.json", strings.Replace(growth, `"up_to": 100000`, `"up_to": -5`, 1))}, "price.tiers[0].up_to"},
		"unknown field":  {[]string{"create", "-file", write("unk.json", strings.Replace(growth, `"name"`, `"tax": 1, "name"`, 1))}, "unknown field"},
		"huge file":      {[]string{"create", "-file", write("huge.json", strings.Repeat(" ", maxPlanFile+1))}, "larger than"},
		"currency":       {[]string{"create", "-file", write("eur.json", strings.Replace(strings.Replace(growth, "USD", "EUR", 1), "growth", "euro", 1))}, "bills in USD"},
		"default":        {[]string{"update", "-file", write("def.json", strings.Replace(growth, `"growth"`, `"default"`, 1))}, "follows the configuration"},
		"update unknown": {[]string{"update", "-file", write("other.json", strings.Replace(growth, `"growth"`, `"other"`, 1))}, "no plan named"},
		"unknown plan":   {[]string{"assign", "-user", "1", "-plan", "nope"}, "no plan"},
		"unknown user":   {[]string{"assign", "-user", "999999", "-plan", "growth"}, "no user"},
		"no user":        {[]string{"assign", "-plan", "growth"}, "needs -user"},
		"bad from":       {[]string{"assign", "-user", "1", "-plan", "growth", "-from", "yesterday"}, "-from"},
		"no command":     {nil, "usage"},
		"bad command":    {[]string{"delete"}, "usage"},
	} {
		if err := run(c.args, &out); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
	if err := run([]string{"update", "-file", write("g2.json", strings.Replace(growth, `"49.00"`, `"59.00"`, 1))}, &out); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"assign", "-user", strconv.FormatInt(u.ID, 10), "-plan", "growth", "-from", "2026-11-16T10:20:30Z"}, &out); err != nil {
		t.Fatal(err)
	}
	var plan, from string
	if err := pool.QueryRow(ctx, `SELECT plan_name, to_char(effective_from AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM plan_assignments WHERE user_id = $1`, u.ID).Scan(&plan, &from); err != nil {
		t.Fatal(err)
	}
	if plan != "growth" || from != "2026-11-16 10:20:00" {
		t.Fatalf("%s from %s", plan, from)
	}
	out.Reset()
	if err := run([]string{"list"}, &out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.Contains(got, `"name":"default"`) || !strings.Contains(got, `"unit_price":"0.03"`) || !strings.Contains(got, `"fixed_fee":"59"`) {
		t.Fatalf("list:\n%s", got)
	}
}
