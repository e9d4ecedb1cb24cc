// Command peerserver is the peer of the end-to-end benchmark: what a team
// would run if it only rate-limited. It authenticates each request by its
// X-API-Key header (an in-memory map, no I/O) and takes one GCRA decision
// per request with go-redis/redis_rate on its own Redis, and records
// nothing. The platform's metered requests are judged against it in the
// same run (scripts/bench.sh): a metered, durably recorded request should
// cost no more than one that is only rate-limited.
//
// It answers the load tool's calls unchanged (run it with -no-checks):
// POST /users/ creates a user and returns a key; POST /verify decides for
// the body's "key"; any other request decides for the X-API-Key header.
//
//	go run ./tools/cmd/peerserver -addr 127.0.0.1:8091 -redis redis://127.0.0.1:6379/0
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"io"
	"log"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8091", "listen address")
	redisURL := flag.String("redis", "redis://127.0.0.1:6379/0", "Redis URL")
	rate := flag.Int("rate", 1_000_000_000, "requests allowed per second per key (high: the benchmark measures admitted requests)")
	flag.Parse()
	opt, err := redis.ParseURL(*redisURL)
	if err != nil {
		log.Fatalf("peerserver: -redis: %v", err)
	}
	rdb := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	err = rdb.Ping(ctx).Err()
	cancel()
	if err != nil {
		log.Fatalf("peerserver: redis: %v", err)
	}
	p := &peer{limiter: redis_rate.NewLimiter(rdb), limit: redis_rate.PerSecond(*rate), keys: map[string]int64{}}
	srv := &http.Server{Addr: *addr, Handler: p, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	log.Printf("peerserver: listening on http://%s", *addr)
	log.Fatal(srv.ListenAndServe())
}

type peer struct {
	limiter *redis_rate.Limiter
	limit   redis_rate.Limit
	mu      sync.RWMutex
	keys    map[string]int64 // API key -> user id
}

func (p *peer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/health":
		writeJSON(w, http.StatusOK, []byte(`{"status":"ok"}`))
	case r.Method == http.MethodPost && (r.URL.Path == "/users/" || r.URL.Path == "/users"):
		p.signup(w)
	case r.Method == http.MethodPost && r.URL.Path == "/verify":
		var body struct {
			Key string `json:"key"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&body); err != nil {
			writeJSON(w, http.StatusBadRequest, []byte(`{"title":"bad body"}`))
			return
		}
		p.decide(r.Context(), w, body.Key)
	default:
		p.decide(r.Context(), w, r.Header.Get("X-API-Key"))
	}
}

func (p *peer) signup(w http.ResponseWriter) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, []byte(`{"title":"no randomness"}`))
		return
	}
	key := "pk_" + base64.RawURLEncoding.EncodeToString(b[:])
	p.mu.Lock()
	id := int64(len(p.keys) + 1)
	p.keys[key] = id
	p.mu.Unlock()
	out, _ := json.Marshal(map[string]any{"id": id, "username": "peer" + strconv.FormatInt(id, 10), "api_key": key})
	writeJSON(w, http.StatusCreated, append(out, '\n'))
}

// decide authenticates key and takes one GCRA decision for its user.
func (p *peer) decide(ctx context.Context, w http.ResponseWriter, key string) {
	p.mu.RLock()
	id, ok := p.keys[key]
	p.mu.RUnlock()
	if !ok {
		writeJSON(w, http.StatusUnauthorized, []byte(`{"title":"unknown key"}`))
		return
	}
	res, err := p.limiter.Allow(ctx, "peer:"+strconv.FormatInt(id, 10), p.limit)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, []byte(`{"title":"redis unavailable"}`))
		return
	}
	h := w.Header()
	h.Set("X-RateLimit-Remaining", strconv.Itoa(res.Remaining))
	if res.Allowed == 0 {
		h.Set("Retry-After", strconv.Itoa(int(res.RetryAfter/time.Second)+1))
		writeJSON(w, http.StatusTooManyRequests, []byte(`{"title":"rate limited"}`))
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// body is the size of the bare server's answer.
var body = []byte(`{"user_id":1,"username":"peer","total_requests":1,"status":"ok"}` + "\n")

func writeJSON(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}
