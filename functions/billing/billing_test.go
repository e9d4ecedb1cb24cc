package billing

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/apikey"
	"github.com/ratebill/platform/shared/deps"
	"github.com/ratebill/platform/shared/deps/depstest"
	"github.com/ratebill/platform/shared/invoicing"
	"github.com/ratebill/platform/shared/testdb"
)

// TestBillingHandler calls the handler the way golang-samples' function
// tests do, against a real database: three requests of no cost and one of
// cost 4 at a sub-cent price are billed by units, exactly, rounded half up
// to the cent.
func TestBillingHandler(t *testing.T) {
	t.Parallel()
	d := depstest.New(t, map[string]string{"BILLING_UNIT_PRICE": "0.015", "BILLING_CURRENCY": "EUR"})
	ctx := context.Background()
	key, _ := apikey.Generate(nil)
	u, err := d.Store.CreateUser(ctx, "payer", "payer@example.com", apikey.Hash(key), apikey.Display(key))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a1234567", "b1234567", "c1234567"} {
		if _, err := d.Recorder.Record(ctx, shared.UsageEvent{UserID: u.ID, RequestID: id, Endpoint: "/usage"}); err != nil {
			t.Fatal(err)
		}
	}
	// One call of cost 4: four units, one request.
	if _, err := d.Recorder.Record(ctx, shared.UsageEvent{UserID: u.ID, RequestID: "d1234567", Endpoint: "GET /forecast", Units: 4}); err != nil {
		t.Fatal(err)
	}

	h, err := Handler(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/billing", "/"} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("X-API-Key", key)
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("%s: %d %s", path, w.Code, w.Body)
		}
		var resp Response
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
			t.Fatal(err)
		}
		// 7 units × 0.015 = 0.105 → 0.11 (half up); 4 requests.
		if resp.Requests != 4 || resp.Units != 7 || resp.Amount != "0.11" || resp.UnitPrice != "0.015" || resp.Currency != "EUR" || resp.UserID != u.ID {
			t.Fatalf("%s: %+v", path, resp)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/billing", nil))
	if w.Code != 401 {
		t.Fatalf("no key: %d", w.Code)
	}
}

// invoiceEnv is a billing handler on its own database, a user whose
// account is three months old with calls this month, and SQL access for
// what the API cannot do (backdating, the closing job's rows).
type invoiceEnv struct {
	h    http.Handler
	key  string
	user int64
	db   *pgxpool.Pool
	d    *deps.Deps
}

func newInvoiceEnv(t *testing.T) *invoiceEnv {
	t.Helper()
	url := testdb.DatabaseURL(t)
	d := depstest.New(t, map[string]string{"DATABASE_URL": url, "BILLING_UNIT_PRICE": "0.015"})
	db, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	key, _ := apikey.Generate(nil)
	u, err := d.Store.CreateUser(context.Background(), "inv", "inv@example.com", apikey.Hash(key), apikey.Display(key))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(context.Background(), `UPDATE users SET created_at = now() - interval '3 months' WHERE id = $1`, u.ID); err != nil {
		t.Fatal(err)
	}
	h, err := Handler(d)
	if err != nil {
		t.Fatal(err)
	}
	return &invoiceEnv{h: h, key: key, user: u.ID, db: db, d: d}
}

func (e *invoiceEnv) get(t *testing.T, target string, into any) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/", nil)
	r.URL.RawPath = ""
	r.RequestURI = target
	u, err := url.ParseRequestURI(target)
	if err != nil {
		t.Fatal(err)
	}
	r.URL = u
	r.Header.Set("X-API-Key", e.key)
	e.h.ServeHTTP(w, r)
	if into != nil && w.Code == 200 {
		if err := json.Unmarshal(w.Body.Bytes(), into); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// TestInvoiceOfThisMonth: the open invoice of the current month bills
// by the default plan exactly what GET /billing bills for the same calls.
func TestInvoiceOfThisMonth(t *testing.T) {
	t.Parallel()
	e := newInvoiceEnv(t)
	ctx := context.Background()
	for i, units := range []int64{1, 1, 4, 30} {
		if _, err := e.d.Recorder.Record(ctx, shared.UsageEvent{UserID: e.user, RequestID: fmt.Sprintf("inv-%05d", i), Endpoint: "/usage", Units: units}); err != nil {
			t.Fatal(err)
		}
	}
	var day Response
	if w := e.get(t, "/billing", &day); w.Code != 200 {
		t.Fatal(w.Code, w.Body)
	}
	now := time.Now().UTC()
	if now.Day() == 1 && now.Hour() == 0 {
		t.Skip("the last 24 hours straddle two months")
	}
	var inv Invoice
	if w := e.get(t, "/billing?period="+now.Format("2006-01"), &inv); w.Code != 200 {
		t.Fatal(w.Code, w.Body)
	}
	if inv.Status != "open" || inv.Units != 36 || inv.Requests != 4 || inv.Total != day.Amount || inv.Total != "0.54" || inv.Subtotal != "0.54" ||
		inv.Plan != "default" || len(inv.Lines) != 1 || inv.Lines[0].Units != 36 || inv.Currency != "USD" || inv.UserID != e.user {
		t.Fatalf("invoice %+v, day %+v", inv, day)
	}
	// Not metered: looking cost nothing.
	if w := e.get(t, "/billing", &day); day.Requests != 4 {
		t.Fatalf("billing counted itself: %s", w.Body)
	}
	var list List
	if w := e.get(t, "/billing/invoices", &list); w.Code != 200 || len(list.Items) != 4 || list.Items[0].Period != now.Format("2006-01") ||
		list.Items[0].Total != "0.54" || list.Items[3].Total != "0.00" || list.NextCursor != nil {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if w := e.get(t, "/billing/invoices?limit=2", &list); w.Code != 200 || len(list.Items) != 2 || list.NextCursor == nil {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	cursor := *list.NextCursor
	if w := e.get(t, "/billing/invoices?limit=2&cursor="+cursor, &list); w.Code != 200 || len(list.Items) != 2 || list.NextCursor != nil ||
		list.Items[0].Period >= cursor {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

// TestClosedInvoiceIsServedAsStored: a closed month answers the stored
// invoice, whatever the rollups say now.
func TestClosedInvoiceIsServedAsStored(t *testing.T) {
	t.Parallel()
	e := newInvoiceEnv(t)
	ctx := context.Background()
	prev := invoicing.PeriodOf(time.Now().UTC()).Prev()
	svc := invoicing.New(e.d.Config, e.d.Store)
	svc.Now = func() time.Time { return prev.End().Add(2 * time.Hour) }
	if _, err := e.db.Exec(ctx, `INSERT INTO usage_minutes (user_id, minute, requests, units) VALUES ($1, $2, 10, 100)`, e.user, prev.Start().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if r, err := svc.Close(ctx, prev); err != nil || r.Closed != 1 {
		t.Fatalf("%+v %v", r, err)
	}
	if _, err := e.db.Exec(ctx, `UPDATE usage_minutes SET units = 1000 WHERE user_id = $1`, e.user); err != nil {
		t.Fatal(err)
	}
	var inv Invoice
	if w := e.get(t, "/billing?period="+prev.String(), &inv); w.Code != 200 || inv.Status != "closed" || inv.Units != 100 || inv.Total != "1.50" {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	var list List
	if w := e.get(t, "/billing/invoices", &list); w.Code != 200 || list.Items[1].Status != "closed" || list.Items[1].Total != "1.50" ||
		list.Items[0].Status != "open" || list.Items[0].Units != 900 { // the late 900 units carried into this month
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

// TestInvoiceHostileInput: every bad period, cursor or limit is a 422
// problem naming the field; a month after the current one or before the
// account is a 404; no key is a 401.
func TestInvoiceHostileInput(t *testing.T) {
	t.Parallel()
	e := newInvoiceEnv(t)
	now := time.Now().UTC()
	long := strings.Repeat("9", 5000)
	for _, c := range []struct {
		target string
		status int
		field  string
	}{
		{"/billing?period=2026-13", 422, "period"},
		{"/billing?period=2026-00", 422, "period"},
		{"/billing?period=26-11", 422, "period"},
		{"/billing?period=", 422, "period"},
		{"/billing?period=2026-11&period=2026-10", 422, "period"},
		{"/billing?period=" + long, 422, "period"},
		{"/billing?period=%zz", 422, "query"},
		{"/billing?period=2026-11%00", 422, "period"},
		{"/billing?period=1999-12", 422, "period"},
		{"/billing?period=" + now.AddDate(0, 1, 0).Format("2006-01"), 404, ""},
		{"/billing?period=9999-12", 404, ""},
		{"/billing?period=" + now.AddDate(0, -5, 0).Format("2006-01"), 404, ""},
		{"/billing/invoices?limit=0", 422, "limit"},
		{"/billing/invoices?limit=37", 422, "limit"},
		{"/billing/invoices?limit=abc", 422, "limit"},
		{"/billing/invoices?limit=" + long, 422, "limit"},
		{"/billing/invoices?cursor=2026-13", 422, "cursor"},
		{"/billing/invoices?cursor=" + long, 422, "cursor"},
	} {
		w := e.get(t, c.target, nil)
		var p struct {
			Status int                 `json:"status"`
			Errors []shared.FieldError `json:"errors"`
		}
		json.Unmarshal(w.Body.Bytes(), &p)
		if w.Code != c.status || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/problem+json") {
			t.Errorf("%.80s: %d %s", c.target, w.Code, w.Body)
			continue
		}
		if c.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != c.field) {
			t.Errorf("%.80s: %s", c.target, w.Body)
		}
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, httptest.NewRequest("GET", "/billing/invoices", nil))
	if w.Code != 401 {
		t.Fatalf("no key: %d", w.Code)
	}
}
