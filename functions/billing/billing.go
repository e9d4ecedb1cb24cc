// Package billing is the billing function:
//
//   - GET /billing, the caller's bill for the last 24 hours (units × unit
//     price), exact to the cent, as the seed answered it;
//
//   - GET /billing?period=YYYY-MM, the caller's invoice for that month
//     (package invoicing): open while the month runs and until the closing
//     job has stored it, then closed and final;
//
//   - GET /billing/invoices, the caller's months, newest first.
//
//   - GET, PUT and DELETE /billing/cap, the caller's spend cap (cap.go).
//
//   - GET /admin/invoices?period=YYYY-MM&format=csv|json, the operator's
//     export of a month's closed invoices for every customer (operator
//     token, viewer scope is enough).
//
// None of them is metered: looking at a bill never costs quota or money
// (the routing table says so, routes.Table).
package billing

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"github.com/shopspring/decimal"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/deps"
	"github.com/ratebill/platform/shared/gate"
	"github.com/ratebill/platform/shared/httpapi"
	"github.com/ratebill/platform/shared/invoicing"
	"github.com/ratebill/platform/shared/operator"
	"github.com/ratebill/platform/shared/pricing"
	"github.com/ratebill/platform/shared/routes"
	"github.com/ratebill/platform/shared/serve"
)

func init() {
	functions.HTTP("Billing", serve.Lazy(Handler))
}

// Handler returns the billing function's handler on d.
func Handler(d *deps.Deps) (http.Handler, error) {
	s := &server{store: d.Store, unitPrice: d.Config.UnitPrice, currency: d.Config.Currency, invoices: invoicing.New(d.Config, d.Store)}
	opts := serve.OptionsFor(d)
	c := &caps{store: d.Store, versions: d.Limiter, currency: d.Config.Currency, maxBody: d.Config.MaxBodyBytes}
	// Operator routes (GET /admin/invoices) authenticate operator tokens;
	// the bootstrap token is the users function's to create.
	opts.Operators = operator.New(d.Store, "")
	return serve.Router(routes.Billing, d.Gate, serve.Handlers{
		"GET /billing":          http.HandlerFunc(s.bill),
		"GET /billing/invoices": http.HandlerFunc(s.list),
		"GET /admin/invoices":   http.HandlerFunc(s.export),
		"GET /billing/cap":      http.HandlerFunc(c.get),
		"PUT /billing/cap":      http.HandlerFunc(c.put),
		"DELETE /billing/cap":   http.HandlerFunc(c.remove),
	}, opts)
}

// periodStore is the storage the billing function reads; *postgres.Store.
type periodStore interface {
	RequestsInLast(ctx context.Context, userID int64, d time.Duration) (shared.Period, error)
}

type server struct {
	store     periodStore
	unitPrice decimal.Decimal
	currency  string
	invoices  *invoicing.Service
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

// query parses the query string strictly: a malformed one, or a
// parameter given twice, is a 422 naming it.
func query(r *http.Request, names ...string) (map[string]string, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, &shared.Error{Code: shared.EInvalid, Message: "the query string is malformed",
			Fields: []shared.FieldError{{Field: "query", Detail: "is not a valid query string"}}}
	}
	out := map[string]string{}
	for _, n := range names {
		switch v := q[n]; len(v) {
		case 0:
		case 1:
			out[n] = v[0]
		default:
			return nil, &shared.Error{Code: shared.EInvalid, Message: n + " is given more than once",
				Fields: []shared.FieldError{{Field: n, Detail: "is given more than once"}}}
		}
	}
	return out, nil
}

func (s *server) bill(w http.ResponseWriter, r *http.Request) {
	p, _ := gate.PrincipalFrom(r.Context())
	q, err := query(r, "period")
	if err != nil {
		httpapi.Error(w, r, err)
		return
	}
	if v, ok := q["period"]; ok {
		s.invoice(w, r, p.UserID, v)
		return
	}
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

// Invoice is the body of GET /billing?period=YYYY-MM.
type Invoice = invoicing.Document

func (s *server) invoice(w http.ResponseWriter, r *http.Request, userID int64, v string) {
	p, err := invoicing.ParsePeriod("period", v)
	if err != nil {
		httpapi.Error(w, r, err)
		return
	}
	inv, err := s.invoices.Invoice(r.Context(), userID, p)
	if err != nil {
		httpapi.Error(w, r, err)
		return
	}
	httpapi.JSON(w, http.StatusOK, invoicing.NewDocument(inv))
}

// List is the body of GET /billing/invoices.
type List struct {
	Items      []Summary `json:"items"`
	NextCursor *string   `json:"next_cursor"`
}

// Summary is one period of the list.
type Summary struct {
	Period   string `json:"period"`
	Status   string `json:"status"`
	Currency string `json:"currency"`
	Units    int64  `json:"units"`
	Total    string `json:"total"`
}

// Page sizes of GET /billing/invoices.
const (
	defaultPage = 12
	maxPage     = 36
)

func (s *server) list(w http.ResponseWriter, r *http.Request) {
	p, _ := gate.PrincipalFrom(r.Context())
	q, err := query(r, "cursor", "limit")
	if err != nil {
		httpapi.Error(w, r, err)
		return
	}
	limit := defaultPage
	if v, ok := q["limit"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPage || len(v) > 3 {
			httpapi.Error(w, r, &shared.Error{Code: shared.EInvalid, Message: "limit must be 1 to " + strconv.Itoa(maxPage),
				Fields: []shared.FieldError{{Field: "limit", Detail: "must be an integer from 1 to " + strconv.Itoa(maxPage)}}})
			return
		}
		limit = n
	}
	var before *invoicing.Period
	if v, ok := q["cursor"]; ok {
		c, err := invoicing.ParsePeriod("cursor", v)
		if err != nil {
			httpapi.Error(w, r, err)
			return
		}
		before = &c
	}
	items, next, err := s.invoices.List(r.Context(), p.UserID, before, limit)
	if err != nil {
		httpapi.Error(w, r, err)
		return
	}
	out := List{Items: make([]Summary, len(items))}
	for i, it := range items {
		out.Items[i] = Summary(it)
	}
	if next != "" {
		out.NextCursor = &next
	}
	httpapi.JSON(w, http.StatusOK, out)
}

// export is GET /admin/invoices: a month's closed invoices, every
// customer, as CSV or JSON (the house list shape). The export is built in
// memory before the first byte is sent, so a failure half-way is a clean
// 503, never a truncated file; a very large month is better exported
// with the exportinvoices command.
func (s *server) export(w http.ResponseWriter, r *http.Request) {
	q, err := query(r, "period", "format")
	if err != nil {
		httpapi.Error(w, r, err)
		return
	}
	v, ok := q["period"]
	if !ok {
		httpapi.Error(w, r, &shared.Error{Code: shared.EInvalid, Message: "period is required",
			Fields: []shared.FieldError{{Field: "period", Detail: "is required (YYYY-MM)"}}})
		return
	}
	p, err := invoicing.ParsePeriod("period", v)
	if err != nil {
		httpapi.Error(w, r, err)
		return
	}
	format, ok := q["format"]
	if !ok {
		format = invoicing.JSON
	}
	var buf bytes.Buffer
	if _, err := s.invoices.Export(r.Context(), p, format, &buf); err != nil {
		httpapi.Error(w, r, err)
		return
	}
	h := w.Header()
	if format == invoicing.CSV {
		h.Set("Content-Type", "text/csv; charset=utf-8")
		h.Set("Content-Disposition", `attachment; filename="invoices-`+p.String()+`.csv"`)
	} else {
		h.Set("Content-Type", "application/json")
	}
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
}
