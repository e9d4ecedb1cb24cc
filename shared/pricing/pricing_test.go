package pricing

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func TestPrice(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		requests int64
		price    string
		want     string
	}{
		{"seed example", 1000, "0.01", "10.00"},
		{"fifty", 50, "0.01", "0.50"},
		{"zero requests", 0, "0.01", "0.00"},
		{"free", 12345, "0", "0.00"},
		{"float trap: 0.1+0.2", 3, "0.1", "0.30"},
		{"sub-cent rounds half up", 3, "0.0015", "0.00"}, // 0.0045
		{"sub-cent exact half", 1, "0.005", "0.01"},      // 0.005 -> 0.01
		{"sub-cent below half", 1, "0.0049", "0.00"},     // 0.0049
		{"sub-cent many", 1000, "0.0015", "1.50"},        // 1.5
		{"large counts stay exact", 9_000_000_000_000, "0.01", "90000000000.00"},
		{"odd price", 7, "1.99", "13.93"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := FormatAmount(Price(tt.requests, decimal.RequireFromString(tt.price)))
			if got != tt.want {
				t.Fatalf("Price(%d, %s) = %s, want %s", tt.requests, tt.price, got, tt.want)
			}
		})
	}
}

func TestFormatUnitPrice(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"0.01": "0.01", "0.1": "0.10", "1": "1.00", "0.0015": "0.0015", "2.500": "2.500"} {
		if got := FormatUnitPrice(decimal.RequireFromString(in)); got != want {
			t.Errorf("FormatUnitPrice(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestNewStatementUTC(t *testing.T) {
	t.Parallel()
	loc := time.FixedZone("X", 3600)
	end := time.Date(2026, 1, 2, 3, 4, 5, 0, loc)
	s := NewStatement(end.Add(-Period), end, 20, 50, decimal.RequireFromString("0.01"), "USD")
	if s.End.Location() != time.UTC || s.Start.Location() != time.UTC {
		t.Fatal("statement times must be UTC")
	}
	if !s.End.Equal(end) || s.End.Sub(s.Start) != Period {
		t.Fatalf("period %v..%v", s.Start, s.End)
	}
	// The amount is units × price; requests is only the count of calls.
	if FormatAmount(s.Amount) != "0.50" || s.Requests != 20 || s.Units != 50 {
		t.Fatalf("amount %s, requests %d, units %d", s.Amount, s.Requests, s.Units)
	}
}
