// Package health is the health function: GET /health reports whether
// Postgres and Redis answer, and it serves the API documentation at /docs
// and the OpenAPI document at /openapi.json.
package health

import (
	"context"
	"math"
	"net/http"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"github.com/ratebill/platform/shared/deps"
	"github.com/ratebill/platform/shared/httpapi"
	"github.com/ratebill/platform/shared/openapi"
	"github.com/ratebill/platform/shared/routes"
	"github.com/ratebill/platform/shared/serve"
)

func init() {
	functions.HTTP("Health", serve.Lazy(Handler))
}

// Handler returns the health function's handler on d.
func Handler(d *deps.Deps) (http.Handler, error) {
	s := &server{check: d.Check}
	return serve.Router(routes.Health, d.Gate, serve.Handlers{
		"GET /health":       http.HandlerFunc(s.health),
		"GET /docs":         openapi.DocsHandler(),
		"GET /openapi.json": openapi.SpecHandler(),
	}, serve.OptionsFor(d))
}

type server struct {
	check func(context.Context) []deps.Check
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
	for _, c := range s.check(r.Context()) {
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
