// Package health is the health function: GET /health reports whether
// Postgres and Redis answer, and it serves the API documentation at /docs
// and the OpenAPI document at /openapi.json.
package health

import (
	"math"
	"net/http"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"github.com/ratebill/platform/shared/httpapi"
	"github.com/ratebill/platform/shared/instance"
	"github.com/ratebill/platform/shared/openapi"
)

func init() {
	functions.HTTP("Health", instance.Lazy(NewHandler))
}

// NewHandler returns the health function's handler on inst.
func NewHandler(inst *instance.Instance) http.Handler {
	s := &server{inst: inst}
	h := http.HandlerFunc(s.health)
	return inst.Handler(instance.Routes{
		"/health":       {http.MethodGet: h},
		"/":             {http.MethodGet: h},
		"/docs":         {http.MethodGet: openapi.DocsHandler()},
		"/openapi.json": {http.MethodGet: openapi.SpecHandler()},
	})
}

type server struct {
	inst *instance.Instance
}

// Check is one dependency's state.
type Check struct {
	Status    string  `json:"status"` // "ok" or "down"
	LatencyMS float64 `json:"latency_ms"`
	Detail    string  `json:"detail,omitempty"`
}

// Response is the body of GET /health.
type Response struct {
	Status string           `json:"status"` // "ok" or "unavailable"
	Checks map[string]Check `json:"checks"`
}

func (s *server) health(w http.ResponseWriter, r *http.Request) {
	resp := Response{Status: "ok", Checks: map[string]Check{}}
	code := http.StatusOK
	for _, c := range s.inst.Check(r.Context()) {
		ms := math.Round(float64(c.Latency.Microseconds())/10) / 100
		if c.Err != nil {
			httpapi.Logger(r.Context()).WarnContext(r.Context(), "health check failed", "dependency", c.Name, "error", c.Err.Error())
			resp.Checks[c.Name] = Check{Status: "down", LatencyMS: ms, Detail: c.Name + " did not answer"}
			resp.Status, code = "unavailable", http.StatusServiceUnavailable
			continue
		}
		resp.Checks[c.Name] = Check{Status: "ok", LatencyMS: ms}
	}
	if code != http.StatusOK {
		w.Header().Set("Retry-After", "5")
	}
	httpapi.JSON(w, code, resp)
}
