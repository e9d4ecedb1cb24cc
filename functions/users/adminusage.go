package users

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/ratebill/platform/shared/history"
	"github.com/ratebill/platform/shared/httpapi"
)

// usageStore reads the minute rollups for the operator; *postgres.Store.
type usageStore interface {
	UsageHistory(ctx context.Context, userID int64, r history.Range) ([]history.Point, error)
	TopCustomers(ctx context.Context, r history.Range, by history.Top, limit int) ([]history.Customer, error)
}

// adminUsage serves the operator's aggregates: GET /admin/usage/history
// (every customer's admitted and denied calls per bucket, or one
// customer's with ?user=) and GET /admin/usage/top (the customers with
// the most requests, units or denials in a range). Any operator scope.
type adminUsage struct {
	store usageStore
	now   func() time.Time
}

func (a *adminUsage) history(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var user int64
	if v, ok := q["user"]; ok {
		id, err := strconv.ParseInt(v[0], 10, 64)
		if len(v) > 1 || err != nil || id < 1 {
			httpapi.Error(w, r, invalid("user", "must be one user id (a positive whole number)"))
			return
		}
		user = id
	}
	rng, err := history.Parse(q, a.now())
	if err != nil {
		httpapi.Error(w, r, err)
		return
	}
	rows, err := a.store.UsageHistory(r.Context(), user, rng)
	if err != nil {
		httpapi.Error(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpapi.JSON(w, http.StatusOK, history.Fill(rng, rows))
}

func (a *adminUsage) top(w http.ResponseWriter, r *http.Request) {
	rng, by, limit, err := history.ParseTop(r.URL.Query(), a.now())
	if err != nil {
		httpapi.Error(w, r, err)
		return
	}
	items, err := a.store.TopCustomers(r.Context(), rng, by, limit)
	if err != nil {
		httpapi.Error(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpapi.JSON(w, http.StatusOK, history.TopCustomers{By: by, From: rng.From, To: rng.To, Items: items})
}
