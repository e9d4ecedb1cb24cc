// Package billing is the billing function: GET /billing, the caller's
// bill for the last 24 hours, exact to the cent. It is not metered.
package billing

import (
	"net/http"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"github.com/ratebill/platform/shared"
	bill "github.com/ratebill/platform/shared/billing"
	"github.com/ratebill/platform/shared/httpapi"
	"github.com/ratebill/platform/shared/instance"
)

func init() {
	functions.HTTP("Billing", instance.Lazy(NewHandler))
}

// NewHandler returns the billing function's handler on inst.
func NewHandler(inst *instance.Instance) http.Handler {
	s := &server{inst: inst}
	h := inst.Authenticated(http.HandlerFunc(s.bill))
	return inst.Handler(instance.Routes{
		"/billing": {http.MethodGet: h},
		"/":        {http.MethodGet: h},
	})
}

type server struct {
	inst *instance.Instance
}

// Response is the body of GET /billing. Money is sent as decimal strings.
type Response struct {
	UserID      int64     `json:"user_id"`
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
	Requests    int64     `json:"requests"`
	UnitPrice   string    `json:"unit_price"`
	Amount      string    `json:"amount"`
	Currency    string    `json:"currency"`
}

func (s *server) bill(w http.ResponseWriter, r *http.Request) {
	p, _ := instance.PrincipalFrom(r.Context())
	store, err := s.inst.Store(r.Context())
	if err != nil {
		httpapi.Error(w, r, shared.Unavailable("postgres", err))
		return
	}
	period, err := store.RequestsInLast(r.Context(), p.UserID, bill.Period)
	if err != nil {
		httpapi.Error(w, r, shared.Unavailable("postgres", err))
		return
	}
	st := bill.NewStatement(period.Start, period.End, period.Requests, s.inst.Config.UnitPrice, s.inst.Config.Currency)
	httpapi.JSON(w, http.StatusOK, Response{
		UserID:      p.UserID,
		PeriodStart: st.Start,
		PeriodEnd:   st.End,
		Requests:    st.Requests,
		UnitPrice:   bill.FormatUnitPrice(st.UnitPrice),
		Amount:      bill.FormatAmount(st.Amount),
		Currency:    st.Currency,
	})
}
