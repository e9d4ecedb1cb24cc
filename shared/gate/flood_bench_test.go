package gate_test

import (
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratebill/platform/shared/apikey"
	"github.com/ratebill/platform/shared/auth"
	"github.com/ratebill/platform/shared/gate"
	"github.com/ratebill/platform/shared/meter"
	"github.com/ratebill/platform/shared/ratelimit"
	"github.com/ratebill/platform/shared/testdb"
)

// BenchmarkUnknownKeyFlood measures what a flood of well-formed unknown
// keys (valid checksums, each new) costs a customer with a valid key on
// the same instance, and how much of it reaches Postgres. Each
// sub-benchmark times the customer's authenticated requests (the gate's
// Authenticated path: the key lookup, the negative cache and the
// failed-authentication limit, without the rate-limit decision), while,
// for flood=on, one goroutine sends unknown keys from one address as
// fast as the gate answers them. Reported besides ns/op: the flood's rate
// (flood-req/s), its requests (flood-reqs) and the Postgres key lookups
// they caused (flood-lookups: at most AUTH_FAIL_LIMIT per window, here
// 100 per minute, whatever the flood's rate). Compare the customer's
// ns/op of flood=on with flood=off in the same run.
//
//	go run ./tools/cmd/testenv -- go test -run '^$' -bench BenchmarkUnknownKeyFlood -count 3 ./shared/gate
func BenchmarkUnknownKeyFlood(b *testing.B) {
	for _, flood := range []bool{false, true} {
		b.Run(fmt.Sprintf("flood=%v", map[bool]string{false: "off", true: "on"}[flood]), func(b *testing.B) {
			bu := setup(b, options{})
			counted := &testdb.CountingStore{Store: bu.store}
			a := auth.New(counted, time.Minute, 1000).WithNegativeCache(time.Minute, 100_000)
			g := gate.New(a, bu.limiter, meter.New(bu.store, meter.Options{}), gate.Options{
				UserLimit:     ratelimit.Limit{Requests: 1_000_000_000, Window: time.Hour},
				AuthFailLimit: ratelimit.Limit{Requests: 100, Window: time.Minute},
			})
			h := withRequestID(g.Authenticated(echo))
			attacker := fmt.Sprintf("203.0.%d.%d:4321", rand.IntN(256), rand.IntN(256))
			send := func(key, addr string) int {
				r := httptest.NewRequest("GET", "/me", nil)
				r.Header.Set(gate.KeyHeader, key)
				r.RemoteAddr = addr
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				return w.Code
			}
			if c := send(bu.key, "192.0.2.10:1000"); c != 200 {
				b.Fatalf("customer: %d", c)
			}
			var (
				stop    atomic.Bool
				flooded atomic.Int64
				wg      sync.WaitGroup
			)
			before := counted.Lookups.Load()
			start := time.Now()
			if flood {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for !stop.Load() {
						k, _ := apikey.Generate(nil)
						if c := send(k, attacker); c != 401 && c != 429 {
							b.Errorf("flood answered %d", c)
							return
						}
						flooded.Add(1)
					}
				}()
			}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if c := send(bu.key, "192.0.2.10:1000"); c != 200 {
					b.Fatalf("customer during the flood: %d", c)
				}
			}
			b.StopTimer()
			stop.Store(true)
			wg.Wait()
			b.ReportMetric(float64(flooded.Load())/time.Since(start).Seconds(), "flood-req/s")
			b.ReportMetric(float64(flooded.Load()), "flood-reqs")
			b.ReportMetric(float64(counted.Lookups.Load()-before), "flood-lookups")
		})
	}
}
