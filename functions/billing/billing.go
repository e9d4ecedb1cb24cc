// Package billing is the billing function: GET /billing, the caller's
// bill for the last 24 hours (units × unit price), exact to the cent. It
// is not metered.
package billing

import (
	"context"
	"net/http"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"github.com/shopspring/decimal"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/deps"
	"github.com/ratebill/platform/shared/gate"
	"github.com/ratebill/platform/shared/httpapi"
	"github.com/ratebill/platform/shared/pricing"
	"github.com/ratebill/platform/shared/routes"
	"github.com/ratebill/platform/shared/serve"
)

func init() {
	functions.HTTP("Billing", serve.Lazy(Handler))
}

// Handler returns the billing function's handler on d.
func Handler(d *deps.Deps) (http.Handler, error) {
	s := &server{store: d.Store, unitPrice: d.Config.UnitPrice, currency: d.Config.Currency}
	return serve.Router(routes.Billing, d.Gate, serve.Handlers{
		"GET /billing": http.HandlerFunc(s.bill),
	}, serve.OptionsFor(d))
}

// periodStore is the storage the billing function reads; *postgres.Store.
type periodStore interface {
	RequestsInLast(ctx context.Context, userID int64, d time.Duration) (shared.Period, error)
}

type server struct {
	store     periodStore
	unitPrice decimal.Decimal
	currency  string
}

// Response is the body of GET /billing. Money is sent as decimal strings.
type Response struct {
	UserID      int64     `json:"user_id"`
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
	Requests    int64     `json:"requests"` // admitted calls
	Units       int64     `json:"units"`    // their cost in units; Amount is Units × UnitPrice
	UnitPrice   string    `json:"unit_price"`
	Amount      string    `json:"amount"`
	Currency    string    `json:"currency"`
}

func (s *server) bill(w http.ResponseWriter, r *http.Request) {
	p, _ := gate.PrincipalFrom(r.Context())
	period, err := s.store.RequestsInLast(r.Context(), p.UserID, pricing.Period)
	if err != nil {
		httpapi.Error(w, r, err)
		return
	}
	st := pricing.NewStatement(period.Start, period.End, period.Requests, period.Units, s.unitPrice, s.currency)
	httpapi.JSON(w, http.StatusOK, Response{
		UserID:      p.UserID,
		PeriodStart: st.Start,
		PeriodEnd:   st.End,
		Requests:    st.Requests,
		Units:       st.Units,
		UnitPrice:   pricing.FormatUnitPrice(st.UnitPrice),
		Amount:      pricing.FormatAmount(st.Amount),
		Currency:    st.Currency,
	})
}
