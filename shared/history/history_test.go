package history

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ratebill/platform/shared"
)

var now = time.Date(2026, 12, 6, 10, 30, 15, 0, time.UTC)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		query         string
		wantG         Granularity
		wantFrom      string
		wantTo        string
		wantPoints    int
		wantErrFields []string
	}{
		{"defaults: the last hour by minute", "", Minute, "2026-12-06T09:31:00Z", "2026-12-06T10:31:00Z", 60, nil},
		{"hour: the last day", "granularity=hour", Hour, "2026-12-05T11:00:00Z", "2026-12-06T11:00:00Z", 24, nil},
		{"day: the last 30 days", "granularity=day", Day, "2026-11-07T00:00:00Z", "2026-12-07T00:00:00Z", 30, nil},
		{"explicit, rounded outwards", "from=2026-12-06T08:10:00Z&to=2026-12-06T09:05:00Z&granularity=hour", Hour, "2026-12-06T08:00:00Z", "2026-12-06T10:00:00Z", 2, nil},
		{"offsets become UTC", "from=2026-12-06T10:00:00%2B01:00&to=2026-12-06T10:00:00Z", Minute, "2026-12-06T09:00:00Z", "2026-12-06T10:00:00Z", 60, nil},
		{"to only", "to=2026-12-06T00:00:00Z&granularity=hour", Hour, "2026-12-05T00:00:00Z", "2026-12-06T00:00:00Z", 24, nil},
		{"from only", "from=2026-12-06T10:00:00Z", Minute, "2026-12-06T10:00:00Z", "2026-12-06T10:31:00Z", 31, nil},
		{"exactly the bound", "from=2026-12-05T00:00:00Z&to=2026-12-06T01:00:00Z", Minute, "2026-12-05T00:00:00Z", "2026-12-06T01:00:00Z", 1500, nil},
		{"one past the bound", "from=2026-12-05T00:00:00Z&to=2026-12-06T01:00:01Z", "", "", "", 0, []string{"from"}},
		{"centuries", "from=1970-01-01T00:00:00Z&to=2999-12-31T00:00:00Z", "", "", "", 0, []string{"from"}},
		{"bad granularity", "granularity=week", "", "", "", 0, []string{"granularity"}},
		{"bad times", "from=yesterday&to=2026-13-01T00:00:00Z", "", "", "", 0, []string{"from", "to"}},
		{"from after to", "from=2026-12-06T10:00:00Z&to=2026-12-06T09:00:00Z", "", "", "", 0, []string{"to"}},
		{"from equals to", "from=2026-12-06T10:00:00Z&to=2026-12-06T10:00:00Z", "", "", "", 0, []string{"to"}},
		{"repeated", "granularity=hour&granularity=day", "", "", "", 0, []string{"granularity"}},
		{"before the epoch", "from=1969-12-31T23:00:00Z", "", "", "", 0, []string{"from"}},
		{"year 9999", "to=9999-12-31T23:59:59Z", "", "", "", 0, []string{"to"}},
		{"empty granularity is the default", "granularity=", Minute, "2026-12-06T09:31:00Z", "2026-12-06T10:31:00Z", 60, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Parse(q, now)
			if tt.wantErrFields != nil {
				var fields []string
				if e, ok := err.(*shared.Error); ok && e.Code == shared.EInvalid {
					for _, f := range e.Fields {
						fields = append(fields, f.Field)
					}
				}
				if strings.Join(fields, ",") != strings.Join(tt.wantErrFields, ",") {
					t.Fatalf("err %v (fields %v), want fields %v", err, fields, tt.wantErrFields)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Granularity != tt.wantG || r.From.Format(time.RFC3339) != tt.wantFrom || r.To.Format(time.RFC3339) != tt.wantTo || r.Points() != tt.wantPoints {
				t.Fatalf("got %s %s..%s (%d points), want %s %s..%s (%d)", r.Granularity, r.From.Format(time.RFC3339), r.To.Format(time.RFC3339), r.Points(), tt.wantG, tt.wantFrom, tt.wantTo, tt.wantPoints)
			}
		})
	}
}

func TestParseBoundNamesTheLimit(t *testing.T) {
	t.Parallel()
	_, err := Parse(url.Values{"from": {"2026-01-01T00:00:00Z"}, "to": {"2026-12-01T00:00:00Z"}, "granularity": {"hour"}}, now)
	e, ok := err.(*shared.Error)
	if !ok || len(e.Fields) != 1 || !strings.Contains(e.Fields[0].Detail, "1500") || !strings.Contains(e.Fields[0].Detail, "8016 hour buckets") {
		t.Fatalf("err %v", err)
	}
}

func TestFill(t *testing.T) {
	t.Parallel()
	r, err := Parse(url.Values{"from": {"2026-12-06T10:00:00Z"}, "to": {"2026-12-06T13:00:00Z"}, "granularity": {"hour"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	h := func(hh int) time.Time { return time.Date(2026, 12, 6, hh, 0, 0, 0, time.UTC) }
	s := Fill(r, []Point{
		{Start: h(12), Requests: 3, Units: 7, Denied: 1},
		{Start: h(10), Requests: 2, Units: 2},
		{Start: h(13), Requests: 100},                  // outside: to is exclusive
		{Start: h(9), Requests: 100},                   // outside
		{Start: h(11).Add(time.Minute), Requests: 100}, // not a bucket start
	})
	want := []Point{{h(10), 2, 2, 0}, {h(11), 0, 0, 0}, {h(12), 3, 7, 1}}
	if len(s.Points) != len(want) {
		t.Fatalf("%d points, want %d", len(s.Points), len(want))
	}
	for i := range want {
		if s.Points[i] != want[i] {
			t.Errorf("point %d: %+v, want %+v", i, s.Points[i], want[i])
		}
	}
	if s.Totals != (Totals{Requests: 5, Units: 9, Denied: 1}) {
		t.Errorf("totals %+v", s.Totals)
	}
}

func TestParseTop(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		query  string
		by     Top
		limit  int
		fields string
	}{
		{"", ByRequests, DefaultTop, ""},
		{"by=denied&limit=3", ByDenied, 3, ""},
		{"by=units&limit=100", ByUnits, 100, ""},
		{"by=cost", "", 0, "by"},
		{"limit=0", "", 0, "limit"},
		{"limit=101", "", 0, "limit"},
		{"limit=1e3", "", 0, "limit"},
		{"by=denied&by=requests&limit=x&granularity=year", "", 0, "by,limit,granularity"},
	} {
		q, _ := url.ParseQuery(tt.query)
		_, by, limit, err := ParseTop(q, now)
		var fields []string
		if e, ok := err.(*shared.Error); ok {
			for _, f := range e.Fields {
				fields = append(fields, f.Field)
			}
		}
		if strings.Join(fields, ",") != tt.fields || by != tt.by || limit != tt.limit {
			t.Errorf("%q: by %q limit %d fields %v (%v), want %q %d %q", tt.query, by, limit, fields, err, tt.by, tt.limit, tt.fields)
		}
	}
}
