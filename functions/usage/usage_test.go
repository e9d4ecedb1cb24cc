package usage

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	tests := []Response{
		{UserID: 1, Username: "testuser", TotalRequests: 1, TotalUnits: 1, Window: &Window{Limit: 1000, Used: 1, Remaining: 999, WindowSeconds: 86400, StartedAt: start, ResetsAt: start.Add(24 * time.Hour)}},
		{UserID: 9_000_000_000, Username: "a.b-c_d", TotalRequests: 1 << 40, TotalUnits: 10_000 << 40, Window: nil},
		{UserID: 2, Username: `we"ird<&>\`, TotalRequests: 0, Window: &Window{StartedAt: start.Add(123456789), ResetsAt: start.Add(time.Second + 500*time.Millisecond)}},
		{UserID: 3, Username: "jöhn\n", TotalUnits: -7, Window: &Window{Limit: -1}},
		{UserID: 4, Username: "plan", Window: &Window{Limit: 10}, Limits: []Window{{Limit: 10, Name: "burst", Algorithm: "sliding"}, {Limit: 1000, Name: "daily", Algorithm: "fixed"}}},
		{UserID: 5, Username: "capped", Window: &Window{Limit: 10}, Budget: &Budget{Period: "2026-11", Cap: "50.00", Spent: "0.00", Remaining: "50.00", Units: 5000, RemainingUnits: 5000, ResetsAt: start}},
		{},
	}
	for i, r := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			want, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.appendJSON(nil); string(got) != string(want) {
				t.Errorf("appendJSON:\n got %s\nwant %s", got, want)
			}
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	start := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	r := Response{UserID: 1, Username: "testuser", TotalRequests: 1, Window: &Window{Limit: 1000, Used: 1, Remaining: 999, WindowSeconds: 86400, StartedAt: start, ResetsAt: start.Add(24 * time.Hour)}}
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			json.Marshal(r)
		}
	})
	b.Run("appendJSON", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 512)
		for b.Loop() {
			buf = r.appendJSON(buf[:0])
		}
	})
}

func TestVerifyAppendJSONMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	tests := []VerifyResponse{
		{Valid: true, Code: "VALID", RequestID: "req-00001", User: &VerifyUser{ID: 42, Username: "testuser"}, Cost: 3,
			RateLimit: &VerifyLimit{Limit: 1000, Remaining: 997, ResetsAt: at}, TotalUnits: 1045, ReleaseToken: "rt_abc-_DEF"},
		{Code: "MALFORMED_KEY", RequestID: `we"ird<&>`},
		{Code: "RATE_LIMITED", RequestID: "req-00002", User: &VerifyUser{ID: 9_000_000_000, Username: "jöhn\n"},
			RateLimit: &VerifyLimit{Limit: 50, ResetsAt: at.Add(123456789), RetryAfter: 3600}},
		{Valid: true, Code: "VALID", RequestID: "req-00003", User: &VerifyUser{ID: 1, Username: "a.b-c_d"}, Replayed: true, Released: true, TotalUnits: 7},
		{Code: "SPEND_CAP_EXCEEDED", RequestID: "req-00004", Budget: &Budget{Period: "2026-11", Cap: "50.00", Spent: "49.99", Remaining: "0.01", Units: 5000, UsedUnits: 4999, RemainingUnits: 1, ResetsAt: at}},
		{},
	}
	for i, r := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			want, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.appendJSON(nil); string(got) != string(want) {
				t.Errorf("appendJSON:\n got %s\nwant %s", got, want)
			}
		})
	}
}
