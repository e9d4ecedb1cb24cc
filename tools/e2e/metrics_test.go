package e2e

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ratebill/platform/shared/routes"
)

// TestMetricsScrape drives real traffic through the gateway to the
// function processes (OTEL_EXPORTER=prometheus, each on a metrics port of
// its own) and scrapes them before and after: the request counter and
// duration histogram (by route and status), the rate-limit decisions (by
// outcome), the usage batches and the auth cache move by exactly what
// the traffic did. The public routers do not serve /metrics.
func TestMetricsScrape(t *testing.T) {
	t.Parallel()
	e := setup(t, options{replicas: 1, metrics: true, env: map[string]string{"API_RATE_LIMIT": "3"}})
	key := e.signup("metricsuser")
	usage := e.stack.Metrics[routes.Usage]
	if len(usage) != 1 {
		t.Fatalf("metrics URLs of the usage function: %v", usage)
	}
	before := scrape(t, usage[0])

	const admitted, denied = 3, 2
	for i := range admitted + denied {
		r := e.do(req{method: "GET", path: "/usage", key: key})
		want := http.StatusOK
		if i >= admitted {
			want = http.StatusTooManyRequests
		}
		if r.Status != want {
			t.Fatalf("call %d: %d %s", i+1, r.Status, r.Body)
		}
	}
	// Straight to the process (the gateway answers unknown paths itself):
	// counted under "unmatched", never under its raw URL.
	if r := e.do(req{base: e.stack.Instances[routes.Usage][0], method: "GET", path: "/usage/no/such/path", key: key}); r.Status != http.StatusNotFound {
		t.Fatalf("unknown path: %d", r.Status)
	}
	after := scrape(t, usage[0])
	for _, f := range after {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), "no/such") {
					t.Errorf("a raw URL became a label: %s=%q", l.GetName(), l.GetValue())
				}
			}
		}
	}
	delta := func(name string, labels map[string]string) float64 {
		return after.sum(name, labels) - before.sum(name, labels)
	}

	checks := []struct {
		what   string
		name   string
		labels map[string]string
		want   float64
	}{
		{"admitted requests", "ratebill_http_requests_total", map[string]string{"http_route": "/usage", "http_response_status_code": "200", "http_request_method": "GET"}, admitted},
		{"denied requests", "ratebill_http_requests_total", map[string]string{"http_route": "/usage", "http_response_status_code": "429"}, denied},
		{"unknown path (no raw URL label)", "ratebill_http_requests_total", map[string]string{"http_route": "unmatched", "http_response_status_code": "404"}, 1},
		{"request durations observed", "http_server_request_duration_seconds_count", map[string]string{"http_route": "/usage"}, admitted + denied},
		{"allowed decisions", "ratebill_ratelimit_decisions_total", map[string]string{"limit": "user", "outcome": "allowed"}, admitted},
		{"denied decisions", "ratebill_ratelimit_decisions_total", map[string]string{"limit": "user", "outcome": "denied"}, denied},
		{"decision errors", "ratebill_ratelimit_decisions_total", map[string]string{"outcome": "error"}, 0},
		{"events in usage batches", "ratebill_usage_batch_size_sum", nil, admitted},
		{"successful usage writes timed", "ratebill_usage_write_duration_seconds_count", map[string]string{"outcome": "ok"}, admitted},
		{"failed usage writes", "ratebill_usage_write_failures_total", nil, 0},
		{"auth cache misses (first call of the key here)", "ratebill_auth_cache_lookups_total", map[string]string{"result": "miss"}, 1},
		{"auth cache hits", "ratebill_auth_cache_lookups_total", map[string]string{"result": "hit"}, admitted + denied - 1},
		{"dependency errors", "ratebill_dependency_errors_total", nil, 0},
	}
	for _, c := range checks {
		if got := delta(c.name, c.labels); got != c.want {
			t.Errorf("%s: %s%v moved by %v, want %v", c.what, c.name, c.labels, got, c.want)
		}
	}
	// Calls arriving one at a time are written one batch each.
	if got := delta("ratebill_usage_batch_size_count", nil); got != admitted {
		t.Errorf("usage batches: %v, want %v (one per sequential call)", got, admitted)
	}
	if b := after.sum("http_server_request_duration_seconds_bucket", map[string]string{"http_route": "/usage", "le": "+Inf"}); b < admitted+denied {
		t.Errorf("duration histogram +Inf bucket %v", b)
	}

	// Metrics are served on their own port only: no public router has them.
	for _, base := range []string{e.base, e.stack.Instances[routes.Usage][0]} {
		if r := e.do(req{base: base, method: "GET", path: "/metrics"}); r.Status != http.StatusNotFound {
			t.Errorf("%s/metrics: %d, want 404", base, r.Status)
		}
	}
}

// scraped is one scrape of a Prometheus endpoint.
type scraped map[string]*dto.MetricFamily

// scrape reads url's Prometheus text.
func scrape(t *testing.T, url string) scraped {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("scraping %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scraping %s: %d %v", url, resp.StatusCode, err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parsing %s: %v\n%s", url, err, body)
	}
	out := scraped{}
	for name, f := range fams {
		out[name] = f
		// Histograms come as one family: expose _count, _sum and _bucket.
		for _, m := range f.GetMetric() {
			if h := m.GetHistogram(); h != nil {
				add := func(suffix string, v float64, extra ...*dto.LabelPair) {
					fam := out[name+suffix]
					if fam == nil {
						fam = &dto.MetricFamily{}
						out[name+suffix] = fam
					}
					labels := append(append([]*dto.LabelPair{}, m.GetLabel()...), extra...)
					fam.Metric = append(fam.Metric, &dto.Metric{Label: labels, Untyped: &dto.Untyped{Value: &v}})
				}
				add("_count", float64(h.GetSampleCount()))
				add("_sum", h.GetSampleSum())
				for _, b := range h.GetBucket() {
					le := fmt.Sprint(b.GetUpperBound())
					add("_bucket", float64(b.GetCumulativeCount()), &dto.LabelPair{Name: ptr("le"), Value: &le})
				}
				inf := "+Inf"
				add("_bucket", float64(h.GetSampleCount()), &dto.LabelPair{Name: ptr("le"), Value: &inf})
			}
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// sum adds the values of name's series whose labels include labels.
func (s scraped) sum(name string, labels map[string]string) float64 {
	total := 0.0
	f := s[name]
	if f == nil {
		return 0
	}
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range labels {
			if have[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Untyped != nil:
			total += m.GetUntyped().GetValue()
		}
	}
	if math.IsNaN(total) {
		return 0
	}
	return total
}
