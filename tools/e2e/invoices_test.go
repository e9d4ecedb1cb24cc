package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/ratebill/platform/shared/invoicing"
	"github.com/ratebill/platform/shared/postgres"
	"github.com/ratebill/platform/shared/pricing"
)

// TestContractInvoices walks the monthly invoices over HTTP: this
// month's open invoice bills what GET /billing bills, last month's
// closed invoice (stored by the closing run) is served as stored, the
// list pages back to the account's first month, and every bad period,
// cursor or limit is a 422 (a month without an invoice a 404).
func TestContractInvoices(t *testing.T) {
	t.Parallel()
	boot, _ := operatorToken.Generate(nil)
	e := setup(t, options{replicas: 1, env: map[string]string{"BILLING_UNIT_PRICE": "0.015", "OPERATOR_BOOTSTRAP_TOKEN": boot}})
	key := e.signup("invoices")
	for i := 0; i < 3; i++ {
		if r := e.do(req{method: "GET", path: "/usage", key: key}); r.Status != 200 {
			t.Fatalf("usage %d %s", r.Status, r.Body)
		}
	}
	now := time.Now().UTC()
	if now.Day() == 1 && now.Hour() == 0 {
		t.Skip("the last 24 hours straddle two months")
	}
	this := invoicing.PeriodOf(now)
	day := e.do(req{method: "GET", path: "/billing", key: key}).JSON(t)
	inv := e.do(req{method: "GET", path: "/billing?period=" + this.String(), key: key}).JSON(t)
	if inv["status"] != "open" || inv["units"] != float64(3) || inv["total"] != day["amount"] || inv["total"] != "0.05" || inv["plan"] != "default" {
		t.Fatalf("invoice %v, day %v", inv, day)
	}

	// Last month: the account is backdated, 100 units recorded, the
	// month closed by the closing run, then more units arrive late.
	prev := this.Prev()
	user := e.queryInt(`WITH u AS (UPDATE users SET created_at = $1 WHERE username = 'invoices' RETURNING id) SELECT id FROM u`, prev.Start().AddDate(0, -1, 0))
	e.queryInt(`WITH m AS (INSERT INTO usage_minutes (user_id, minute, requests, units) VALUES ($1, $2, 100, 100) RETURNING 1) SELECT count(*) FROM m`, user, prev.Start())
	pool, err := pgxpool.New(context.Background(), e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	svc := &invoicing.Service{Store: postgres.NewStore(pool), Default: pricing.DefaultPlan(1000, 24*time.Hour, decimal.RequireFromString("0.015"), "USD"),
		Now: func() time.Time { return prev.End().Add(2 * time.Hour) }}
	if r, err := svc.Close(context.Background(), prev); err != nil || r.Closed != 1 {
		t.Fatalf("closing %s: %+v %v", prev, r, err)
	}
	e.queryInt(`WITH m AS (UPDATE usage_minutes SET units = units + 20 WHERE user_id = $1 AND minute = $2 RETURNING 1) SELECT count(*) FROM m`, user, prev.Start())
	closed := e.do(req{method: "GET", path: "/billing?period=" + prev.String(), key: key}).JSON(t)
	if closed["status"] != "closed" || closed["units"] != float64(100) || closed["total"] != "1.50" {
		t.Fatalf("closed %v", closed)
	}
	inv = e.do(req{method: "GET", path: "/billing?period=" + this.String(), key: key}).JSON(t)
	if inv["carried_units"] != float64(20) || inv["units"] != float64(23) || inv["total"] != "0.35" {
		t.Fatalf("the late units are not carried: %v", inv)
	}
	list := e.do(req{method: "GET", path: "/billing/invoices?limit=2", key: key}).JSON(t)
	items, _ := list["items"].([]any)
	if len(items) != 2 || list["next_cursor"] != prev.String() {
		t.Fatalf("list %v", list)
	}
	list = e.do(req{method: "GET", path: "/billing/invoices?cursor=" + prev.String(), key: key}).JSON(t)
	if items, _ := list["items"].([]any); len(items) != 1 || list["next_cursor"] != nil {
		t.Fatalf("list %v", list)
	}

	// The operator's export of last month (the users function creates the
	// bootstrap token on its first operator request).
	op := map[string]string{"Authorization": "Bearer " + boot}
	if r := e.do(req{method: "GET", path: "/admin/users", header: op}); r.Status != 200 {
		t.Fatalf("bootstrap %d %s", r.Status, r.Body)
	}
	exp := e.do(req{method: "GET", path: "/admin/invoices?period=" + prev.String(), header: op}).JSON(t)
	if items, _ := exp["items"].([]any); len(items) != 1 || items[0].(map[string]any)["username"] != "invoices" ||
		items[0].(map[string]any)["total"] != "1.50" || items[0].(map[string]any)["status"] != "closed" {
		t.Fatalf("export %v", exp)
	}
	csvResp := e.do(req{method: "GET", path: "/admin/invoices?format=csv&period=" + prev.String(), header: op})
	if lines := strings.Split(strings.TrimSpace(string(csvResp.Body)), "\n"); csvResp.Status != 200 || len(lines) != 2 ||
		!strings.HasPrefix(lines[0], "period,user_id,username") || !strings.HasSuffix(lines[1], ",1.50,1.50,1.50") ||
		!strings.HasPrefix(csvResp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("csv %d %q", csvResp.Status, csvResp.Body)
	}
	expectProblem(t, e.do(req{method: "GET", path: "/admin/invoices?period=" + this.String(), header: op}), 409, "conflict")
	expectProblem(t, e.do(req{method: "GET", path: "/admin/invoices?period=" + prev.String()}), 401, "unauthorized")
	for _, bad := range []string{"", "?period=2026-13", "?period=" + prev.String() + "&format=xml", "?format=csv"} {
		expectProblem(t, e.do(req{method: "GET", path: "/admin/invoices" + bad, header: op}), 422, "validation-failed")
	}

	long := strings.Repeat("7", 4000)
	for _, c := range []struct {
		path   string
		status int
		code   string
	}{
		{"/billing?period=2026-13", 422, "validation-failed"},
		{"/billing?period=26-11", 422, "validation-failed"},
		{"/billing?period=" + long, 422, "validation-failed"},
		{"/billing?period=" + this.Start().AddDate(0, 1, 0).Format("2006-01"), 404, "not-found"},
		{"/billing?period=" + prev.Start().AddDate(0, -3, 0).Format("2006-01"), 404, "not-found"},
		{"/billing/invoices?limit=0", 422, "validation-failed"},
		{"/billing/invoices?limit=37", 422, "validation-failed"},
		{"/billing/invoices?cursor=2026-00", 422, "validation-failed"},
		{"/billing/invoices?cursor=" + long, 422, "validation-failed"},
	} {
		expectProblem(t, e.do(req{method: "GET", path: c.path, key: key}), c.status, c.code)
	}
	expectProblem(t, e.do(req{method: "GET", path: "/billing/invoices"}), 401, "unauthorized")
}
