package billing

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/ratebill/platform/shared/apikey"
	"github.com/ratebill/platform/shared/config"
	"github.com/ratebill/platform/shared/instance"
	"github.com/ratebill/platform/shared/testenv"
	"github.com/ratebill/platform/shared/usage"
)

// TestBillingHandler calls the handler the way golang-samples' function
// tests do, against a real database: three requests at a sub-cent price
// are billed exactly, rounded half up to the cent.
func TestBillingHandler(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(func(k string) string {
		return map[string]string{
			"DATABASE_URL":       testenv.DatabaseURL(t),
			"REDIS_URL":          testenv.RedisURL(t),
			"BILLING_UNIT_PRICE": "0.015",
			"BILLING_CURRENCY":   "EUR",
			"INIT_DB":            "false",
		}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	inst := instance.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { inst.Close(context.Background()) })
	ctx := context.Background()
	store, err := inst.Store(ctx)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := apikey.Generate(nil)
	u, err := store.CreateUser(ctx, "payer", "payer@example.com", apikey.Hash(key), apikey.Display(key))
	if err != nil {
		t.Fatal(err)
	}
	rec := usage.New(store, usage.Options{})
	for _, id := range []string{"a1234567", "b1234567", "c1234567"} {
		if _, err := rec.Record(ctx, usage.Event{UserID: u.ID, RequestID: id, Endpoint: "/usage"}); err != nil {
			t.Fatal(err)
		}
	}

	h := NewHandler(inst)
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
		// 3 × 0.015 = 0.045 → 0.05
		if resp.Requests != 3 || resp.Amount != "0.05" || resp.UnitPrice != "0.015" || resp.Currency != "EUR" || resp.UserID != u.ID {
			t.Fatalf("%s: %+v", path, resp)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/billing", nil))
	if w.Code != 401 {
		t.Fatalf("no key: %d", w.Code)
	}
}
