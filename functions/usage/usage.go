// Package usage is the usage function: GET /usage, the metered,
// rate-limited endpoint that reports the caller's running total and the
// current window, and POST /verify, which meters a call of another API
// whose key (and cost) travel in the body.
package usage

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"github.com/ratebill/platform/shared/deps"
	"github.com/ratebill/platform/shared/gate"
	"github.com/ratebill/platform/shared/httpapi"
	"github.com/ratebill/platform/shared/ratelimit"
	"github.com/ratebill/platform/shared/routes"
	"github.com/ratebill/platform/shared/serve"
	"github.com/ratebill/platform/shared/webui"
)

func init() {
	functions.HTTP("Usage", serve.Lazy(Handler))
}

// Handler returns the usage function's handler on d: its routes, wired
// from the routing table (GET /usage is metered there; POST /verify
// calls the gate itself).
func Handler(d *deps.Deps) (http.Handler, error) {
	return serve.Router(routes.Usage, d.Gate, serve.Handlers{
		"GET /usage":           http.HandlerFunc(serveUsage),
		"GET /usage/history":   &historian{store: d.Store, gate: d.Gate, now: time.Now},
		"GET /dashboard":       webui.Dashboard(),
		"POST /verify":         &verifier{gate: d.Gate, maxBody: d.Config.MaxBodyBytes},
		"POST /verify/release": &releaser{gate: d.Gate, maxBody: d.Config.MaxBodyBytes},
		"* /auth":              &authorizer{gate: d.Gate, addr: httpapi.ClientAddr{Header: d.Config.ClientIPHeader, Hops: d.Config.TrustedProxyHops}},
	}, serve.OptionsFor(d))
}

// Window is the current rate-limit window.
type Window struct {
	Limit         int64     `json:"limit"`
	Used          int64     `json:"used"`
	Remaining     int64     `json:"remaining"`
	WindowSeconds int64     `json:"window_seconds"`
	StartedAt     time.Time `json:"started_at"`
	ResetsAt      time.Time `json:"resets_at"`
	// Name and Algorithm ("fixed" or "sliding") name a limit of the
	// caller's plan; set in Response.Limits only.
	Name      string `json:"name,omitempty"`
	Algorithm string `json:"algorithm,omitempty"`
}

// Response is the body of GET /usage.
type Response struct {
	UserID        int64  `json:"user_id"`
	Username      string `json:"username"`
	TotalRequests int64  `json:"total_requests"`
	TotalUnits    int64  `json:"total_units"`
	// Window is null only while the limit is not enforced (Redis down with
	// RATE_LIMIT_FAIL_OPEN=true).
	Window *Window `json:"window"`
	// Limits lists every limit of a plan with several (Window is the one
	// closest to running out); absent with one limit.
	Limits []Window `json:"limits,omitempty"`
	// Budget is what remains of the caller's spend cap this month; absent
	// without a cap.
	Budget *Budget `json:"budget,omitempty"`
}

// Budget is the wire form of a spend cap's month (gate.Budget): money as
// decimal strings with two places.
type Budget struct {
	Period         string    `json:"period"`
	Cap            string    `json:"cap"`
	Spent          string    `json:"spent"`
	Remaining      string    `json:"remaining"`
	Units          int64     `json:"units"`
	UsedUnits      int64     `json:"used_units"`
	RemainingUnits int64     `json:"remaining_units"`
	ResetsAt       time.Time `json:"resets_at"`
}

func budget(b *gate.Budget) *Budget {
	if b == nil {
		return nil
	}
	return &Budget{Period: b.Period, Cap: b.Cap.StringFixed(2), Spent: b.Spent.StringFixed(2), Remaining: b.Remaining.StringFixed(2),
		Units: b.Units, UsedUnits: b.UsedUnits, RemainingUnits: b.RemainingUnits, ResetsAt: b.ResetsAt}
}

// appendJSON appends b as encoding/json would (only callers with a cap
// have one, so reflection is fine).
func (b *Budget) appendJSON(buf []byte) []byte {
	j, _ := json.Marshal(b) // cannot fail: strings, integers, a time
	return append(buf, j...)
}

// window describes one limit's decision.
func window(l ratelimit.Result) Window {
	return Window{
		Limit:         l.Limit.Requests,
		Used:          l.Used,
		Remaining:     l.Remaining,
		WindowSeconds: int64(l.Limit.Window / time.Second),
		StartedAt:     l.WindowStart,
		ResetsAt:      l.ResetAt(),
	}
}

func serveUsage(w http.ResponseWriter, r *http.Request) {
	p, _ := gate.PrincipalFrom(r.Context())
	m, _ := gate.MeteringFrom(r.Context())
	resp := Response{UserID: p.UserID, Username: p.Username, TotalRequests: m.Usage.Total, TotalUnits: m.Usage.TotalUnits, Budget: budget(m.Budget)}
	if m.Limited {
		w := window(m.Limit)
		resp.Window = &w
		if len(m.Limits) > 1 {
			for _, l := range m.Limits {
				w := window(l)
				w.Name, w.Algorithm = l.Limit.PolicyName(), "fixed"
				if l.Limit.Algorithm == ratelimit.Sliding {
					w.Algorithm = "sliding"
				}
				resp.Limits = append(resp.Limits, w)
			}
		}
	}
	buf := bufPool.Get().(*[]byte)
	*buf = append(resp.appendJSON((*buf)[:0]), '\n')
	httpapi.RawJSON(w, http.StatusOK, *buf)
	bufPool.Put(buf)
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// appendJSON appends r encoded exactly as encoding/json would
// (TestAppendJSONMatchesEncodingJSON holds it to that), without
// reflection: this body is written on every metered request, and
// reflection-based encoding was 40 % of the handler's own CPU.
func (r Response) appendJSON(b []byte) []byte {
	b = append(b, `{"user_id":`...)
	b = strconv.AppendInt(b, r.UserID, 10)
	b = append(b, `,"username":`...)
	b = appendJSONString(b, r.Username)
	b = append(b, `,"total_requests":`...)
	b = strconv.AppendInt(b, r.TotalRequests, 10)
	b = append(b, `,"total_units":`...)
	b = strconv.AppendInt(b, r.TotalUnits, 10)
	b = append(b, `,"window":`...)
	if r.Window == nil {
		b = append(b, "null"...)
	} else {
		b = r.Window.appendJSON(b)
	}
	if len(r.Limits) > 0 {
		b = append(b, `,"limits":[`...)
		for i := range r.Limits {
			if i > 0 {
				b = append(b, ',')
			}
			b = r.Limits[i].appendJSON(b)
		}
		b = append(b, ']')
	}
	if r.Budget != nil {
		b = append(b, `,"budget":`...)
		b = r.Budget.appendJSON(b)
	}
	return append(b, '}')
}

// appendJSON appends w as encoding/json would.
func (w *Window) appendJSON(b []byte) []byte {
	b = append(b, `{"limit":`...)
	b = strconv.AppendInt(b, w.Limit, 10)
	b = append(b, `,"used":`...)
	b = strconv.AppendInt(b, w.Used, 10)
	b = append(b, `,"remaining":`...)
	b = strconv.AppendInt(b, w.Remaining, 10)
	b = append(b, `,"window_seconds":`...)
	b = strconv.AppendInt(b, w.WindowSeconds, 10)
	b = append(b, `,"started_at":"`...)
	b = w.StartedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","resets_at":"`...)
	b = w.ResetsAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if w.Name != "" {
		b = append(b, `,"name":`...)
		b = appendJSONString(b, w.Name)
	}
	if w.Algorithm != "" {
		b = append(b, `,"algorithm":`...)
		b = appendJSONString(b, w.Algorithm)
	}
	return append(b, '}')
}

// appendJSONString quotes s as encoding/json does. Usernames are
// restricted to [A-Za-z0-9_.-], so the fast path is the only one taken in
// practice; anything else goes through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
