package gate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/apikey"
	"github.com/ratebill/platform/shared/auth"
	"github.com/ratebill/platform/shared/config"
	"github.com/ratebill/platform/shared/gate"
	"github.com/ratebill/platform/shared/meter"
	"github.com/ratebill/platform/shared/postgres"
	"github.com/ratebill/platform/shared/pricing"
	"github.com/ratebill/platform/shared/ratelimit"
	"github.com/ratebill/platform/shared/testdb"
)

// bundle is one test's gate over real Postgres and Redis, and a user.
type bundle struct {
	gate    *gate.Gate
	store   *postgres.Store
	limiter *ratelimit.Limiter
	key     string // the user's API key
	userID  int64
	pool    *pgxpool.Pool
}

// options tune setup; the zero value is a working gate with a limit of 10.
type options struct {
	gate       gate.Options
	redisURL   string // default: the test Redis
	recordToDB string // default: the test's database
}

// setup builds a gate from the real components on the test's own
// database. User ids start at a random offset, so tests running in
// parallel never share a Redis counter.
func setup(t testing.TB, o options) bundle {
	t.Helper()
	ctx := context.Background()
	pool := testdb.Pool(t)
	if _, err := pool.Exec(ctx, fmt.Sprintf("ALTER TABLE users ALTER COLUMN id RESTART WITH %d", 1_000_000+rand.Int64N(1<<40))); err != nil {
		t.Fatal(err)
	}
	store := postgres.NewStore(pool)
	if o.redisURL == "" {
		o.redisURL = testdb.RedisURL(t)
	}
	ropt, err := redis.ParseURL(o.redisURL)
	if err != nil {
		t.Fatal(err)
	}
	ropt.MaxRetries, ropt.DialTimeout = 0, 200*time.Millisecond
	rdb := redis.NewClient(ropt)
	t.Cleanup(func() { rdb.Close() })
	recStore := store
	if o.recordToDB != "" {
		cfg := config.Defaults()
		cfg.DatabaseURL, cfg.InitDB = o.recordToDB, false
		recStore = postgres.New(cfg)
		t.Cleanup(recStore.Close)
	}
	rec := meter.New(recStore, meter.Options{Timeout: 2 * time.Second})
	t.Cleanup(func() { rec.Close(context.Background()) })
	if o.gate.UserLimit.Requests == 0 {
		o.gate.UserLimit = ratelimit.Limit{Requests: 10, Window: time.Hour}
	}
	if o.gate.DefaultPlan.Name == "" {
		o.gate.DefaultPlan = pricing.DefaultPlan(o.gate.UserLimit.Requests, o.gate.UserLimit.Window, decimal.RequireFromString("0.01"), "USD")
	}
	if o.gate.SignupLimit.Requests == 0 {

		o.gate.SignupLimit = ratelimit.Limit{Requests: 2, Window: time.Hour}
	}
	lim := ratelimit.New(rdb).WithLedger(store) // as deps wires it
	key, _ := apikey.Generate(nil)
	u, err := store.CreateUser(ctx, fmt.Sprintf("u%d", rand.Int64()), fmt.Sprintf("u%d@example.com", rand.Int64()), apikey.Hash(key), apikey.Display(key))
	if err != nil {
		t.Fatal(err)
	}
	return bundle{
		gate:    gate.New(auth.New(store, time.Minute, 100), lim, rec, o.gate),
		store:   store,
		limiter: lim,
		key:     key,
		userID:  u.ID,
		pool:    pool,
	}
}

// echo answers with what the gate put in the context.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	p, _ := gate.PrincipalFrom(r.Context())
	m, metered := gate.MeteringFrom(r.Context())
	json.NewEncoder(w).Encode(map[string]any{"user": p.UserID, "metered": metered, "total": m.Usage.Total, "duplicate": m.Usage.Duplicate, "remaining": m.Limit.Remaining})
})

type answer struct {
	code   int
	header http.Header
	body   map[string]any
}

func call(h http.Handler, key, requestID string) answer {
	r := httptest.NewRequest("GET", "/usage", nil)
	if key != "" {
		r.Header.Set(gate.KeyHeader, key)
	}
	if requestID != "" {
		r.Header.Set("X-Request-Id", requestID)
	}
	w := httptest.NewRecorder()
	h = withRequestID(h)
	h.ServeHTTP(w, r)
	var body map[string]any
	json.Unmarshal(w.Body.Bytes(), &body)
	return answer{w.Code, w.Header(), body}
}

func TestMeteredIsExactUnderConcurrency(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	h := b.gate.Metered("/usage", echo)
	const n = 60
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := call(h, b.key, "")
			codes[i] = a.code
			if a.code == 429 && a.header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
		}()
	}
	wg.Wait()
	count := map[int]int{}
	for _, c := range codes {
		count[c]++
	}
	if count[200] != 10 || count[429] != n-10 {
		t.Fatalf("statuses %v, want exactly 10 admitted of %d", count, n)
	}
	total, err := b.store.TotalRequests(context.Background(), b.userID)
	if err != nil || total != 10 {
		t.Fatalf("recorded %d (%v), want 10: billed must equal admitted", total, err)
	}
}

func TestRetriedRequestIDIsServedNotBilled(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	h := b.gate.Metered("/usage", echo)
	first := call(h, b.key, "retry-id-0001")
	again := call(h, b.key, "retry-id-0001")
	if first.code != 200 || again.code != 200 {
		t.Fatalf("statuses %d, %d", first.code, again.code)
	}
	if again.body["duplicate"] != true || again.body["total"] != float64(1) || again.header.Get("X-Ratelimit-Remaining") != "9" {
		t.Fatalf("retry: %v %v", again.body, again.header)
	}
	res, err := b.limiter.AllowUser(context.Background(), b.userID, ratelimit.Limit{Requests: 10, Window: time.Hour}, 0)
	if err != nil || res.Used != 1 {
		t.Fatalf("quota used %d (%v), want 1", res.Used, err)
	}
}

func TestRefusedBeforeAnyIO(t *testing.T) {
	t.Parallel()
	// Redis and Postgres for recording are unreachable: a refusal that
	// touched either would be a 503, not a 401.
	b := setup(t, options{redisURL: "redis://127.0.0.1:1/0", recordToDB: "postgres://nobody@127.0.0.1:1/none?connect_timeout=1"})
	h := b.gate.Metered("/usage", echo)
	typo := []byte(b.key)
	typo[len(typo)-1] = map[bool]byte{true: 'y', false: 'x'}[typo[len(typo)-1] == 'x'] // always a change
	tests := []struct{ name, key string }{
		{"missing", ""},
		{"malformed", "sk_nope"},
		{"bad checksum", string(typo)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := call(h, tt.key, "")
			if a.code != 401 || a.header.Get("WWW-Authenticate") == "" {
				t.Fatalf("%d %v", a.code, a.body)
			}
		})
	}
}

func TestRedisDown(t *testing.T) {
	t.Parallel()
	t.Run("fails closed", func(t *testing.T) {
		t.Parallel()
		b := setup(t, options{redisURL: "redis://127.0.0.1:1/0"})
		a := call(b.gate.Metered("/usage", echo), b.key, "")
		if a.code != 503 || a.body["detail"] != "redis is unavailable; retry later" || a.header.Get("Retry-After") == "" {
			t.Fatalf("%d %v", a.code, a.body)
		}
		if total, _ := b.store.TotalRequests(context.Background(), b.userID); total != 0 {
			t.Fatalf("a refused request was recorded: %d", total)
		}
	})
	t.Run("fails open", func(t *testing.T) {
		t.Parallel()
		b := setup(t, options{redisURL: "redis://127.0.0.1:1/0", gate: gate.Options{FailOpen: true}})
		a := call(b.gate.Metered("/usage", echo), b.key, "")
		if a.code != 200 || a.header.Get("X-Ratelimit-Limit") != "" || a.body["total"] != float64(1) {
			t.Fatalf("%d %v %v", a.code, a.body, a.header)
		}
	})
}

func TestPostgresDownGivesTheQuotaBack(t *testing.T) {
	t.Parallel()
	b := setup(t, options{recordToDB: "postgres://nobody@127.0.0.1:1/none?connect_timeout=1"})
	a := call(b.gate.Metered("/usage", echo), b.key, "")
	if a.code != 503 || a.body["detail"] != "postgres is unavailable; retry later" {
		t.Fatalf("%d %v", a.code, a.body)
	}
	if a.header.Get("X-Ratelimit-Remaining") != "10" {
		t.Fatalf("remaining %q after a failed write, want the quota back (10)", a.header.Get("X-Ratelimit-Remaining"))
	}
	res, err := b.limiter.AllowUser(context.Background(), b.userID, ratelimit.Limit{Requests: 10, Window: time.Hour}, 0)
	if err != nil || res.Used != 0 {
		t.Fatalf("quota used %d (%v), want 0", res.Used, err)
	}
}

func TestIPLimited(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	// A per-test address: the signup counters live in the shared Redis.
	ip := fmt.Sprintf("198.51.%d.%d", rand.IntN(256), rand.IntN(256))
	h := withRequestID(b.gate.IPLimited(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(201) })))
	var codes []int
	for range 3 {
		r := httptest.NewRequest("POST", "/users/", nil)
		r.RemoteAddr = ip + ":1234"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		codes = append(codes, w.Code)
	}
	if fmt.Sprint(codes) != "[201 201 429]" {
		t.Fatalf("statuses %v, want [201 201 429]", codes)
	}
}

func TestAuthenticatedIsNotMetered(t *testing.T) {
	t.Parallel()
	b := setup(t, options{redisURL: "redis://127.0.0.1:1/0"})
	a := call(b.gate.Authenticated(echo), b.key, "")
	if a.code != 200 || a.body["metered"] != false || a.body["user"] != float64(b.userID) {
		t.Fatalf("%d %v", a.code, a.body)
	}
}

func TestAdmitAfterShutdown(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	b.store.Close()
	_, err := b.gate.Authenticate(context.Background(), b.key)
	if err != shared.ErrShuttingDown {
		t.Fatalf("after Close: %v, want ErrShuttingDown", err)
	}
}

// TestUnknownKeyFloodStaysOffPostgres: one address sending well-formed
// unknown keys (valid checksums, each new) gets at most AuthFailLimit of
// them looked up per window, then 429 with Retry-After without a lookup;
// a customer's cached key from that address, and every other address,
// are served as before.
func TestUnknownKeyFloodStaysOffPostgres(t *testing.T) {
	t.Parallel()
	b := setup(t, options{gate: gate.Options{AuthFailLimit: ratelimit.Limit{Requests: 20, Window: time.Hour}}})
	counted := &testdb.CountingStore{Store: b.store}
	a := auth.New(counted, time.Minute, 1000).WithNegativeCache(time.Minute, 1000)
	g := gate.New(a, b.limiter, meter.New(b.store, meter.Options{}), gate.Options{
		UserLimit:     ratelimit.Limit{Requests: 1000, Window: time.Hour},
		AuthFailLimit: ratelimit.Limit{Requests: 20, Window: time.Hour},
	})
	h := withRequestID(g.Metered("/usage", echo))
	attacker := fmt.Sprintf("203.0.%d.%d", rand.IntN(256), rand.IntN(256))
	send := func(key, ip string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/usage", nil)
		r.Header.Set(gate.KeyHeader, key)
		r.RemoteAddr = ip + ":4321"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	// The customer's key is cached on this instance before the flood.
	if w := send(b.key, attacker); w.Code != 200 {
		t.Fatalf("customer before the flood: %d %s", w.Code, w.Body)
	}
	before := counted.Lookups.Load()
	codes := map[int]int{}
	for range 300 {
		k, _ := apikey.Generate(nil)
		w := send(k, attacker)
		codes[w.Code]++
		if w.Code == 429 && w.Header().Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	}
	if got := counted.Lookups.Load() - before; got > 20 {
		t.Fatalf("%d lookups for 300 unknown keys, want at most the limit of 20", got)
	}
	if codes[401] != 20 || codes[429] != 280 {
		t.Fatalf("statuses %v, want 20×401 then 280×429", codes)
	}
	if w := send(b.key, attacker); w.Code != 200 {
		t.Fatalf("customer's cached key from the flooding address: %d %s", w.Code, w.Body)
	}
	other, _ := apikey.Generate(nil)
	if w := send(other, "192.0.2.77"); w.Code != 401 {
		t.Fatalf("another address: %d, want 401", w.Code)
	}
}

// TestAdmitCost: a call takes its cost from the quota and adds it to the
// user's units; a call whose cost does not fit takes and records nothing;
// a retried request id is served at cost 0 with its units given back.
func TestAdmitCost(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	ctx := context.Background()
	p, err := b.gate.Authenticate(ctx, b.key)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                     string
		call                     gate.Call
		wantAdmitted, wantReplay bool
		wantCost, wantUsed       int64
		wantTotal, wantUnits     int64
	}{
		{"cost 4", gate.Call{Endpoint: "GET /forecast", RequestID: "cost-0001", Cost: 4}, true, false, 4, 4, 1, 4},
		{"no cost is 1", gate.Call{Endpoint: "/usage", RequestID: "cost-0002"}, true, false, 1, 5, 2, 5},
		{"cost 6 does not fit", gate.Call{Endpoint: "GET /forecast", RequestID: "cost-0003", Cost: 6}, false, false, 0, 5, 0, 0},
		{"retry of cost-0001", gate.Call{Endpoint: "GET /forecast", RequestID: "cost-0001", Cost: 4}, true, true, 0, 5, 2, 5},
		{"cost 5 fits exactly", gate.Call{Endpoint: "GET /forecast", RequestID: "cost-0004", Cost: 5}, true, false, 5, 10, 3, 10},
	}
	for _, tt := range tests {
		m, err := b.gate.Admit(ctx, p, tt.call)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if m.Admitted() != tt.wantAdmitted || m.Usage.Duplicate != tt.wantReplay || m.Cost != tt.wantCost || m.Limit.Used != tt.wantUsed ||
			m.Usage.Total != tt.wantTotal || m.Usage.TotalUnits != tt.wantUnits {
			t.Fatalf("%s: admitted %v replay %v cost %d used %d totals %d/%d", tt.name, m.Admitted(), m.Usage.Duplicate, m.Cost, m.Limit.Used, m.Usage.Total, m.Usage.TotalUnits)
		}
	}
	res, err := b.limiter.AllowUser(ctx, b.userID, ratelimit.Limit{Requests: 10, Window: time.Hour}, 0)
	if err != nil || res.Used != 10 {
		t.Fatalf("quota used %d (%v), want 10", res.Used, err)
	}
	if units, err := b.store.TotalUnits(ctx, b.userID); err != nil || units != 10 {
		t.Fatalf("units recorded %d (%v), want 10", units, err)
	}
	if _, err := b.gate.Admit(ctx, p, gate.Call{RequestID: "cost-0005", Cost: -1}); shared.ErrorCode(err) != shared.EInvalid {
		t.Fatalf("negative cost: %v", err)
	}
}

func TestPostgresDownGivesTheWholeCostBack(t *testing.T) {
	t.Parallel()
	b := setup(t, options{recordToDB: "postgres://nobody@127.0.0.1:1/none?connect_timeout=1"})
	ctx := context.Background()
	p, err := b.gate.Authenticate(ctx, b.key)
	if err != nil {
		t.Fatal(err)
	}
	m, err := b.gate.Admit(ctx, p, gate.Call{Endpoint: "x", RequestID: "down-0001", Cost: 7})
	if shared.ErrorCode(err) != shared.EUnavailable || m.Cost != 0 || m.Limit.Remaining != 10 {
		t.Fatalf("%+v %v", m, err)
	}
	res, err := b.limiter.AllowUser(ctx, b.userID, ratelimit.Limit{Requests: 10, Window: time.Hour}, 0)
	if err != nil || res.Used != 0 {
		t.Fatalf("quota used %d (%v), want 0", res.Used, err)
	}
}

// TestReplaysAreBounded: a thousand concurrent replays of one admitted
// request id get the first decision again at most MaxReplays times; the
// rest are refused with 409 request-id-reused. Nothing is billed twice
// and the quota is taken once.
func TestReplaysAreBounded(t *testing.T) {
	t.Parallel()
	// A replay is judged after its quota is taken (and given back): a
	// limit that every replay fits in isolates the bound under test.
	b := setup(t, options{gate: gate.Options{UserLimit: ratelimit.Limit{Requests: 100_000, Window: time.Hour}}})
	h := b.gate.Metered("/usage", echo)
	if a := call(h, b.key, "replay-bound-1"); a.code != 200 {
		t.Fatalf("first: %d %v", a.code, a.body)
	}
	const n = 1000
	codes := make([]int, n)
	replayed := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := call(h, b.key, "replay-bound-1")
			codes[i], replayed[i] = a.code, a.header.Get(gate.ReplayedHeader) == "true"
		}()
	}
	wg.Wait()
	count := map[int]int{}
	for i, c := range codes {
		count[c]++
		if c == 200 && !replayed[i] {
			t.Fatal("a replay answered 200 without Idempotent-Replayed")
		}
	}
	if count[200] != gate.MaxReplays || count[409] != n-gate.MaxReplays {
		t.Fatalf("statuses %v, want %d replays and the rest 409", count, gate.MaxReplays)
	}
	total, err := b.store.TotalRequests(context.Background(), b.userID)
	if err != nil || total != 1 {
		t.Fatalf("billed %d (%v), want 1", total, err)
	}
	res, err := b.limiter.AllowUser(context.Background(), b.userID, ratelimit.Limit{Requests: 100_000, Window: time.Hour}, 0)
	if err != nil || res.Used != 1 {
		t.Fatalf("quota used %d (%v), want 1", res.Used, err)
	}
}

// TestReleaseGivesTheQuotaBack: a released call's units return to the
// quota and leave the totals; the token works once.
func TestReleaseGivesTheQuotaBack(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	g := b.gate.WithReleaser(b.store)
	ctx := context.Background()
	p, err := g.Authenticate(ctx, b.key)
	if err != nil {
		t.Fatal(err)
	}
	m, err := g.Admit(ctx, p, gate.Call{Endpoint: "/verify", RequestID: "release-me-1", Cost: 4, Releasable: true})
	if err != nil || m.ReleaseToken == "" || m.Limit.Remaining != 6 {
		t.Fatalf("admit: %+v %v", m, err)
	}
	r, err := g.Release(ctx, m.ReleaseToken)
	if err != nil || r.Units != 4 || r.RequestID != "release-me-1" {
		t.Fatalf("release: %+v %v", r, err)
	}
	res, err := b.limiter.AllowUser(ctx, b.userID, ratelimit.Limit{Requests: 10, Window: time.Hour}, 0)
	if err != nil || res.Used != 0 {
		t.Fatalf("quota used %d (%v) after the release, want 0", res.Used, err)
	}
	if units, err := b.store.TotalUnits(ctx, b.userID); err != nil || units != 0 {
		t.Fatalf("total units %d (%v) after the release, want 0", units, err)
	}
	if _, err := g.Release(ctx, m.ReleaseToken); shared.ErrorCode(err) != shared.EConflict {
		t.Fatalf("second release: %v", err)
	}
	if _, err := g.Release(ctx, "rt_nope"); shared.ErrorCode(err) != shared.ENotFound {
		t.Fatalf("malformed token: %v", err)
	}
	// A replay of the released call: the first decision, marked released.
	m, err = g.Admit(ctx, p, gate.Call{Endpoint: "/verify", RequestID: "release-me-1", Cost: 4, Releasable: true})
	if err != nil || !m.Replayed || !m.Usage.Released || m.Cost != 0 || m.ReleaseToken != "" {
		t.Fatalf("replay of a released call: %+v %v", m, err)
	}
	if _, err := g.Admit(ctx, p, gate.Call{Endpoint: "/verify", RequestID: "release-me-1", Cost: 5}); shared.ErrorCode(err) != shared.ERequestIDConflict {
		t.Fatalf("another cost under the same id: %v", err)
	}
}

// TestVersionRevalidation: a cached principal is trusted until the user's
// version in Redis moves past it; then the gate looks the key up again,
// on metered and on merely authenticated routes, and refuses a revoked
// key or a suspended user at once, refunding the decision. A limit
// override set with the reactivation applies from the first call (the
// cached principal was suspended, so the gate looks again before
// deciding), and the units the user already used in the override's
// window count against it (the shortened window is seeded from the
// ledger).
func TestVersionRevalidation(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	ctx := context.Background()
	began := time.Now() // Redis runs on this machine: the same clock
	metered := b.gate.Metered("/usage", echo)
	authed := b.gate.Authenticated(echo)
	p, err := b.gate.Authenticate(ctx, b.key)
	if err != nil {
		t.Fatal(err)
	}
	second, err := b.store.IssueKey(ctx, b.userID, "second", 0, postgres.AuditEntry{ActorType: postgres.ActorUser, ActorID: b.userID})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{b.key, second.APIKey} {
		if a := call(metered, k, ""); a.code != 200 {
			t.Fatalf("warm-up: %d %v", a.code, a.body)
		}
	}

	// Revoked in Postgres but not published: the cache still serves it
	// (the bound is then AUTH_CACHE_TTL).
	ch, err := b.store.RevokeKeyByID(ctx, b.userID, p.KeyID, postgres.AuditEntry{ActorType: postgres.ActorUser, ActorID: b.userID})
	if err != nil {
		t.Fatal(err)
	}
	if a := call(metered, b.key, ""); a.code != 200 {
		t.Fatalf("unpublished revocation: %d, want the cached key served", a.code)
	}
	if err := b.limiter.PublishVersion(ctx, b.userID, ch.Version); err != nil {
		t.Fatal(err)
	}
	before, _ := b.limiter.AllowUser(ctx, b.userID, b.gate.UserLimit(), 0)
	if a := call(metered, b.key, ""); a.code != 401 {
		t.Fatalf("published revocation: %d %v, want 401", a.code, a.body)
	}
	after, _ := b.limiter.AllowUser(ctx, b.userID, b.gate.UserLimit(), 0)
	if after.Used != before.Used {
		t.Fatalf("the refused call took quota: used %d -> %d", before.Used, after.Used)
	}
	// The user's other key is revalidated too, and still works.
	if a := call(metered, second.APIKey, ""); a.code != 200 {
		t.Fatalf("other key after revalidation: %d %v", a.code, a.body)
	}

	// Suspension, on an authenticated route without metering.
	pool := b.pool
	var v int64
	if err := pool.QueryRow(ctx, `UPDATE users SET suspended_at = now(), suspended_reason = 'test', version = version + 1 WHERE id = $1 RETURNING version`, b.userID).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if a := call(authed, second.APIKey, ""); a.code != 200 {
		t.Fatalf("unpublished suspension: %d", a.code)
	}
	b.limiter.PublishVersion(ctx, b.userID, v)
	a := call(authed, second.APIKey, "")
	if a.code != 403 || a.body["type"] != "urn:problem-type:ratebill:suspended" {
		t.Fatalf("published suspension on an authenticated route: %d %v", a.code, a.body)
	}
	if a := call(metered, second.APIKey, ""); a.code != 403 {
		t.Fatalf("suspended on a metered route: %d", a.code)
	}

	// Reactivation with an override of 2 units per minute.
	if err := pool.QueryRow(ctx, `UPDATE users SET suspended_at = NULL, suspended_reason = NULL, limit_units = 2, limit_window_seconds = 60, version = version + 1 WHERE id = $1 RETURNING version`, b.userID).Scan(&v); err != nil {
		t.Fatal(err)
	}
	b.limiter.PublishVersion(ctx, b.userID, v)
	codes := []int{}
	for i := range 4 {
		a := call(metered, second.APIKey, "")
		codes = append(codes, a.code)
		if a.header.Get("X-RateLimit-Limit") != "2" {
			t.Fatalf("call %d after the override: X-RateLimit-Limit %q, want 2", i, a.header.Get("X-RateLimit-Limit"))
		}
	}
	admitted := 0
	for _, c := range codes {
		if c == 200 {
			admitted++
		}
	}
	// The 4 units admitted above are in the ledger; when they all fall in
	// the override's minute (as counted by a rebuild, LedgerSkew early),
	// nothing more fits in it.
	if time.Now().Truncate(time.Minute).Add(-ratelimit.LedgerSkew).Before(began) && admitted != 0 {
		t.Fatalf("statuses %v under an override of 2 per minute, after 4 units in the same minute: want every call refused", codes)
	}
	if admitted > 2 || codes[3] != 429 {
		t.Fatalf("statuses %v under an override of 2 per minute", codes)
	}
}

// TestExpiringKeyLeavesTheCache: a cached key with an expiry is refused
// the moment it passes, with no publication.
func TestExpiringKeyLeavesTheCache(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	ctx := context.Background()
	k, err := b.store.IssueKey(ctx, b.userID, "short", time.Second, postgres.AuditEntry{ActorType: postgres.ActorUser, ActorID: b.userID})
	if err != nil {
		t.Fatal(err)
	}
	metered := b.gate.Metered("/usage", echo)
	if a := call(metered, k.APIKey, ""); a.code != 200 {
		t.Fatalf("fresh key: %d", a.code)
	}
	deadline := k.ExpiresAt.Add(100 * time.Millisecond)
	for time.Now().Before(deadline) {
		time.Sleep(time.Until(deadline))
	}
	a := call(metered, k.APIKey, "")
	if a.code != 401 || a.body["detail"] != shared.ErrExpiredKey.Message {
		t.Fatalf("expired key: %d %v", a.code, a.body)
	}
}
