package usage

import (
	"context"
	"net/http"
	"time"

	"github.com/ratebill/platform/shared/gate"
	"github.com/ratebill/platform/shared/history"
	"github.com/ratebill/platform/shared/httpapi"
)

// historyStore reads the minute rollups; *postgres.Store.
type historyStore interface {
	UsageHistory(ctx context.Context, userID int64, r history.Range) ([]history.Point, error)
}

// historian serves GET /usage/history: the caller's admitted requests,
// units and denials per bucket, from the minute rollups, and the current
// window (read without taking quota). Authenticated, not metered:
// looking never costs quota.
type historian struct {
	store historyStore
	gate  *gate.Gate
	now   func() time.Time
}

// HistoryResponse is the body of GET /usage/history.
type HistoryResponse struct {
	history.Series
	// Window is the current rate-limit window; null when Redis cannot
	// say (the history is still served from Postgres).
	Window *Window `json:"window"`
}

func (h *historian) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rng, err := history.Parse(r.URL.Query(), h.now())
	if err != nil {
		httpapi.Error(w, r, err)
		return
	}
	p, _ := gate.PrincipalFrom(r.Context())
	rows, err := h.store.UsageHistory(r.Context(), p.UserID, rng)
	if err != nil {
		httpapi.Error(w, r, err)
		return
	}
	resp := HistoryResponse{Series: history.Fill(rng, rows)}
	if l, err := h.gate.Window(r.Context(), p); err == nil {
		resp.Window = &Window{Limit: l.Limit.Requests, Used: l.Used, Remaining: l.Remaining,
			WindowSeconds: int64(l.Limit.Window / time.Second), StartedAt: l.WindowStart, ResetsAt: l.ResetAt()}
	}
	w.Header().Set("Cache-Control", "no-store")
	httpapi.JSON(w, http.StatusOK, resp)
}
