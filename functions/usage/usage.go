// Package usage is the usage function: GET /usage, the metered,
// rate-limited endpoint that reports the caller's running total and the
// current window.
package usage

import (
	"net/http"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"github.com/ratebill/platform/shared/httpapi"
	"github.com/ratebill/platform/shared/instance"
)

func init() {
	functions.HTTP("Usage", instance.Lazy(NewHandler))
}

// NewHandler returns the usage function's handler on inst. It answers at
// /usage behind the gateway and at / on its own Cloud Run URL.
func NewHandler(inst *instance.Instance) http.Handler {
	h := inst.Metered("/usage", http.HandlerFunc(serveUsage))
	return inst.Handler(instance.Routes{
		"/usage": {http.MethodGet: h},
		"/":      {http.MethodGet: h},
	})
}

// Window is the current rate-limit window.
type Window struct {
	Limit         int64     `json:"limit"`
	Used          int64     `json:"used"`
	Remaining     int64     `json:"remaining"`
	WindowSeconds int64     `json:"window_seconds"`
	StartedAt     time.Time `json:"started_at"`
	ResetsAt      time.Time `json:"resets_at"`
}

// Response is the body of GET /usage.
type Response struct {
	UserID        int64  `json:"user_id"`
	Username      string `json:"username"`
	TotalRequests int64  `json:"total_requests"`
	// Window is null only while the limit is not enforced (Redis down with
	// RATE_LIMIT_FAIL_OPEN=true).
	Window *Window `json:"window"`
}

func serveUsage(w http.ResponseWriter, r *http.Request) {
	p, _ := instance.PrincipalFrom(r.Context())
	m, _ := instance.MeteringFrom(r.Context())
	resp := Response{UserID: p.UserID, Username: p.Username, TotalRequests: m.Usage.Total}
	if m.Limited {
		l := m.Limit
		resp.Window = &Window{
			Limit:         l.Limit.Requests,
			Used:          l.Used,
			Remaining:     l.Remaining,
			WindowSeconds: int64(l.Limit.Window / time.Second),
			StartedAt:     l.WindowStart,
			ResetsAt:      l.ResetAt(),
		}
	}
	httpapi.JSON(w, http.StatusOK, resp)
}
