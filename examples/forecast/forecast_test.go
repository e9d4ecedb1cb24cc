package forecast

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestEndpointsAndCounts(t *testing.T) {
	t.Parallel()
	a := New()
	for _, tt := range []struct {
		method, target, body string
		want                 int
	}{
		{"GET", "/v1/forecast?city=Bergen", "", 200},
		{"GET", "/v1/forecast/daily?days=3", "", 200},
		{"POST", "/v1/forecast/batch", `{"cities":["Oslo","Rome"]}`, 200},
		{"POST", "/v1/forecast/batch", `{"cities":[]}`, 400},
		{"GET", "/v1/flaky", "", 502},
		{"GET", "/v1/nope", "", 404},
	} {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			w := httptest.NewRecorder()
			a.ServeHTTP(w, httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body)))
			if w.Code != tt.want {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, tt.want)
			}
		})
	}
	if got := a.Served(); got["GET /v1/forecast"] != 1 || got["POST /v1/forecast/batch"] != 2 || got["GET /v1/flaky"] != 1 || len(got) != 4 {
		t.Fatalf("served %v", got)
	}
}

func TestCost(t *testing.T) {
	t.Parallel()
	for target, want := range map[string]int64{"GET /v1/forecast/daily": 5, "POST /v1/forecast/batch": 10, "GET /v1/forecast": 1, "GET /elsewhere": 1} {
		method, path, _ := strings.Cut(target, " ")
		if got := Cost(httptest.NewRequest(method, path, nil)); got != want {
			t.Errorf("%s: %d, want %d", target, got, want)
		}
	}
}
