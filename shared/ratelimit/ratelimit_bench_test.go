package ratelimit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ratebill/platform/shared/ratelimit"
	"github.com/ratebill/platform/shared/testdb"
)

// BenchmarkDecision measures one rate-limit decision against the real
// Redis: serial (one round trip's latency: ns/op) and parallel over 64
// users (the throughput a busy instance gets).
func BenchmarkDecision(b *testing.B) {
	rdb := testdb.Redis(b)
	lim := ratelimit.New(rdb)
	prefix := testdb.UniqueKey(b)
	limit := ratelimit.Limit{Requests: 1 << 40, Window: time.Hour}
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := lim.Allow(ctx, prefix+":serial", limit); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := lim.Allow(ctx, fmt.Sprintf("%s:%d", prefix, i%64), limit); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	})
}
