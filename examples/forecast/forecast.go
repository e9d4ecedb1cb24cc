// Package forecast is a small weather-forecast API that a team would put
// behind ratebill: a few JSON endpoints of different costs, and a counter
// of the calls it served, for tests that check that a protected API is
// reached exactly for the admitted calls.
//
// It protects nothing itself: run it behind nginx's auth_request
// (nginx/protect-api.conf) or wrap it in the Go client's middleware
// (cmd/forecast does with RATEBILL_URL set).
package forecast

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Costs is the price of each endpoint in units, the one table the nginx
// configuration's cost map and the middleware's cost function follow.
var Costs = map[string]int64{
	"GET /v1/forecast":        1,
	"GET /v1/forecast/daily":  5,
	"POST /v1/forecast/batch": 10,
	"GET /v1/flaky":           1,
}

// Cost returns the cost of a request: its endpoint's, or 1.
func Cost(r *http.Request) int64 {
	if c, ok := Costs[r.Method+" "+r.URL.Path]; ok {
		return c
	}
	return 1
}

// API serves the forecast endpoints and counts what it served.
type API struct {
	mux    *http.ServeMux
	mu     sync.Mutex
	served map[string]int64
}

// New returns the API.
func New() *API {
	a := &API{mux: http.NewServeMux(), served: map[string]int64{}}
	a.mux.HandleFunc("GET /v1/forecast", a.forecast)
	a.mux.HandleFunc("GET /v1/forecast/daily", a.daily)
	a.mux.HandleFunc("POST /v1/forecast/batch", a.batch)
	a.mux.HandleFunc("GET /v1/flaky", a.flaky)
	return a
}

// ServeHTTP serves the API.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// Served returns how many calls each endpoint served ("GET /v1/forecast").
func (a *API) Served() map[string]int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]int64, len(a.served))
	for k, v := range a.served {
		out[k] = v
	}
	return out
}

func (a *API) count(r *http.Request) {
	a.mu.Lock()
	a.served[r.Method+" "+r.URL.Path]++
	a.mu.Unlock()
}

// Forecast is one day's weather in a city.
type Forecast struct {
	City    string  `json:"city"`
	Date    string  `json:"date"`
	TempC   float64 `json:"temp_c"`
	Summary string  `json:"summary"`
}

func day(city string, d time.Time) Forecast {
	// Deterministic weather: good enough for a demo.
	var h uint32
	for _, c := range city + d.Format(time.DateOnly) {
		h = h*31 + uint32(c)
	}
	summaries := []string{"sunny", "cloudy", "rain", "wind", "snow"}
	return Forecast{City: city, Date: d.Format(time.DateOnly), TempC: float64(h%350) / 10, Summary: summaries[(h/7)%uint32(len(summaries))]}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func city(r *http.Request) string {
	if c := r.URL.Query().Get("city"); c != "" && len(c) <= 64 {
		return c
	}
	return "Oslo"
}

func (a *API) forecast(w http.ResponseWriter, r *http.Request) {
	a.count(r)
	writeJSON(w, http.StatusOK, day(city(r), time.Now().UTC()))
}

func (a *API) daily(w http.ResponseWriter, r *http.Request) {
	a.count(r)
	days, err := strconv.Atoi(r.URL.Query().Get("days"))
	if err != nil || days < 1 || days > 14 {
		days = 7
	}
	out := make([]Forecast, days)
	for i := range out {
		out[i] = day(city(r), time.Now().UTC().AddDate(0, 0, i))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) batch(w http.ResponseWriter, r *http.Request) {
	a.count(r)
	var req struct {
		Cities []string `json:"cities"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil || len(req.Cities) == 0 || len(req.Cities) > 20 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "send {\"cities\": [...]} with 1 to 20 cities"})
		return
	}
	out := make([]Forecast, len(req.Cities))
	for i, c := range req.Cities {
		out[i] = day(c, time.Now().UTC())
	}
	writeJSON(w, http.StatusOK, out)
}

// flaky fails, for tests of release on upstream failure.
func (a *API) flaky(w http.ResponseWriter, r *http.Request) {
	a.count(r)
	writeJSON(w, http.StatusBadGateway, map[string]string{"error": "the weather service upstream failed"})
}
