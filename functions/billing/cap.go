package billing

import (
	"context"
	"net/http"

	"github.com/shopspring/decimal"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/gate"
	"github.com/ratebill/platform/shared/httpapi"
	"github.com/ratebill/platform/shared/postgres"
	"github.com/ratebill/platform/shared/pricing"
)

// Spend caps: GET, PUT and DELETE /billing/cap. The cap is the most the
// caller's calendar month (UTC) may cost; the gate refuses, before
// serving, a call whose cost would take the month over it (402
// spend-cap-exceeded), and GET /usage and POST /verify report what
// remains (docs/plans-and-invoices.md).

// capStore reads and writes spend caps; *postgres.Store.
type capStore interface {
	SpendCap(ctx context.Context, id int64) (*decimal.Decimal, error)
	SetSpendCap(ctx context.Context, actor postgres.Actor, id int64, amount *decimal.Decimal) (int64, error)
}

// versionPublisher makes cached keys see a change on their next call;
// *ratelimit.Limiter.
type versionPublisher interface {
	PublishVersion(ctx context.Context, user int64, v int64) error
}

// Cap is the body of GET and PUT /billing/cap.
type Cap struct {
	// Amount is the cap, a decimal string with two places; null: no cap.
	Amount   *string `json:"amount"`
	Currency string  `json:"currency"`
}

type capRequest struct {
	Amount *string `json:"amount"`
}

type caps struct {
	store    capStore
	versions versionPublisher
	currency string
	maxBody  int64
}

func (c *caps) get(w http.ResponseWriter, r *http.Request) {
	p, _ := gate.PrincipalFrom(r.Context())
	a, err := c.store.SpendCap(r.Context(), p.UserID)
	if err != nil {
		httpapi.Error(w, r, err)
		return
	}
	httpapi.JSON(w, http.StatusOK, c.body(a))
}

func (c *caps) body(a *decimal.Decimal) Cap {
	out := Cap{Currency: c.currency}
	if a != nil {
		s := a.StringFixed(2)
		out.Amount = &s
	}
	return out
}

// ParseCapRequest decodes {"amount": "50.00"}: a missing, null or
// malformed amount is a 422 naming the field.
func ParseCapRequest(w http.ResponseWriter, r *http.Request, maxBody int64) (decimal.Decimal, error) {
	var req capRequest
	if err := httpapi.DecodeJSON(w, r, maxBody, &req); err != nil {
		return decimal.Zero, err
	}
	if req.Amount == nil {
		return decimal.Zero, &shared.Error{Code: shared.EInvalid, Message: "invalid spend cap: see errors",
			Fields: []shared.FieldError{{Field: "amount", Detail: "is required: a decimal string, e.g. \"50.00\""}}}
	}
	a, err := pricing.ParseCap(*req.Amount)
	if err != nil {
		return decimal.Zero, &shared.Error{Code: shared.EInvalid, Message: "invalid spend cap: see errors",
			Fields: []shared.FieldError{{Field: "amount", Detail: err.Error()}}}
	}
	return a, nil
}

func (c *caps) put(w http.ResponseWriter, r *http.Request) {
	p, _ := gate.PrincipalFrom(r.Context())
	a, err := ParseCapRequest(w, r, c.maxBody)
	if err != nil {
		httpapi.Error(w, r, err)
		return
	}
	if !c.set(w, r, p.UserID, &a) {
		return
	}
	httpapi.JSON(w, http.StatusOK, c.body(&a))
}

func (c *caps) remove(w http.ResponseWriter, r *http.Request) {
	p, _ := gate.PrincipalFrom(r.Context())
	if c.set(w, r, p.UserID, nil) {
		w.WriteHeader(http.StatusNoContent)
	}
}

// set stores the caller's cap (nil clears it) and publishes the user's
// version, so that every instance's cached key sees it on its next call.
// A failed publication is logged: the cap then applies within
// AUTH_CACHE_TTL.
func (c *caps) set(w http.ResponseWriter, r *http.Request, user int64, a *decimal.Decimal) bool {
	ctx := r.Context()
	actor := postgres.Actor{Type: postgres.ActorUser, ID: user, RemoteAddr: r.RemoteAddr, RequestID: httpapi.RequestID(ctx)}
	v, err := c.store.SetSpendCap(ctx, actor, user, a)
	if err != nil {
		httpapi.Error(w, r, err)
		return false
	}
	if err := c.versions.PublishVersion(ctx, user, v); err != nil {
		httpapi.Logger(ctx).WarnContext(ctx, "spend cap version not published", "error", err.Error())
	}
	return true
}
