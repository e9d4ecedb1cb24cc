package auth_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ratebill/platform/shared/apikey"
	"github.com/ratebill/platform/shared/auth"
	"github.com/ratebill/platform/shared/postgres"
	"github.com/ratebill/platform/shared/testdb"
)

// BenchmarkAuthenticate measures step 1-2 of the hot path: parse and
// checksum the key, SHA-256 it, and look it up, from the instance cache
// (cached) or from the real Postgres every time (uncached, cache off).
// 64 users' keys are used round robin, in parallel.
func BenchmarkAuthenticate(b *testing.B) {
	s := postgres.NewStore(testdb.Pool(b))
	ctx := context.Background()
	keys := make([]string, 64)
	for i := range keys {
		keys[i], _ = apikey.Generate(nil)
		name := fmt.Sprintf("bench%d", i)
		if _, err := s.CreateUser(ctx, name, name+"@example.com", apikey.Hash(keys[i]), apikey.Display(keys[i])); err != nil {
			b.Fatal(err)
		}
	}
	for _, bc := range []struct {
		name string
		ttl  time.Duration
	}{{"cached", time.Minute}, {"uncached", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			a := auth.New(s, bc.ttl, 1000)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, err := a.Authenticate(ctx, keys[i%len(keys)]); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		})
	}
}
