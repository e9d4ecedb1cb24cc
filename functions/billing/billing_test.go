package billing

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/apikey"
	"github.com/ratebill/platform/shared/deps/depstest"
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
