package ratebill_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ratebill "github.com/ratebill/platform/client"
)

// fakePlatform is a small stand-in for the platform's POST /verify and
// POST /verify/release, built from the wire contract only: keys map to the
// code /verify answers, a request id is remembered with its first decision
// and replayed up to 3 times, and release tokens release once.
type fakePlatform struct {
	srv *httptest.Server

	verifies atomic.Int64
	releases atomic.Int64

	mu       sync.Mutex
	codes    map[string]ratebill.Code // key -> code; anything else NOT_FOUND
	requests []fakeVerifyRequest      // every decoded /verify body
	seen     map[string]*fakeDecision // request id -> first decision
	tokens   map[string]bool          // release token -> released
	delay    time.Duration            // before answering /verify
	status   int                      // when set, /verify answers this status with a problem
	nextTok  int
}

type fakeVerifyRequest struct {
	Key       string `json:"key"`
	Cost      int64  `json:"cost"`
	Endpoint  string `json:"endpoint"`
	RequestID string `json:"request_id"`
}

type fakeDecision struct {
	body    map[string]any
	hdr     http.Header
	cost    int64
	replays int
}

const (
	keyValid     = "sk_valid_key_for_alice"
	keyLimited   = "sk_limited"
	keySpendCap  = "sk_spend_cap"
	keySuspended = "sk_suspended"
	keyRevoked   = "sk_revoked"
	keyExpired   = "sk_expired"
	keyMalformed = "not-a-key"
	keyUnknown   = "sk_unknown"
	keyNewCode   = "sk_future_denial"
	keyNewValid  = "sk_future_valid"
)

func newFakePlatform(t testing.TB) *fakePlatform {
	f := &fakePlatform{
		codes: map[string]ratebill.Code{
			keyValid:     ratebill.CodeValid,
			keyLimited:   ratebill.CodeRateLimited,
			keySpendCap:  ratebill.CodeSpendCapExceeded,
			keySuspended: ratebill.CodeSuspended,
			keyRevoked:   ratebill.CodeRevoked,
			keyExpired:   ratebill.CodeExpired,
			keyMalformed: ratebill.CodeMalformedKey,
			keyNewCode:   "QUOTA_FROZEN",
			keyNewValid:  "VALID_TRIAL",
		},
		seen:   map[string]*fakeDecision{},
		tokens: map[string]bool{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /verify", f.verify)
	mux.HandleFunc("POST /verify/release", f.release)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakePlatform) client(t testing.TB, opts ...ratebill.Option) *ratebill.Client {
	t.Helper()
	c, err := ratebill.New(f.srv.URL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fakePlatform) set(fn func(f *fakePlatform)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakePlatform) lastRequest() fakeVerifyRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) == 0 {
		return fakeVerifyRequest{}
	}
	return f.requests[len(f.requests)-1]
}

func fakeProblem(w http.ResponseWriter, status int, typ, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type": "urn:problem-type:ratebill:" + typ, "title": http.StatusText(status),
		"status": status, "detail": detail, "request_id": "plat-req-0001",
	})
}

func (f *fakePlatform) verify(w http.ResponseWriter, r *http.Request) {
	f.verifies.Add(1)
	// Read the body first: only then does the server notice a client
	// that hangs up during the delay.
	raw, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	delay, status := f.delay, f.status
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if status != 0 {
		fakeProblem(w, status, "service-unavailable", "redis is unavailable; retry later")
		return
	}
	var req fakeVerifyRequest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if r.Header.Get("Content-Type") != "application/json" || dec.Decode(&req) != nil {
		fakeProblem(w, http.StatusBadRequest, "malformed-request", "body is not the verify request")
		return
	}
	if req.Key == "" {
		fakeProblem(w, http.StatusUnprocessableEntity, "validation-failed", "key is required")
		return
	}
	if req.RequestID != "" && !ratebill.ValidRequestID(req.RequestID) {
		fakeProblem(w, http.StatusBadRequest, "invalid-request-id", "bad request id")
		return
	}
	cost := req.Cost
	if cost == 0 {
		cost = 1
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, req)
	if req.RequestID == "" {
		req.RequestID = fmt.Sprintf("plat-%08d", len(f.requests))
	}
	if d, ok := f.seen[req.RequestID]; ok {
		if d.cost != cost {
			fakeProblem(w, http.StatusConflict, "request-id-conflict", "same id, different cost")
			return
		}
		d.replays++
		body := map[string]any{}
		for k, v := range d.body {
			body[k] = v
		}
		delete(body, "release_token")
		body["replayed"], body["cost"] = true, 0
		if d.replays > 3 {
			body["valid"], body["code"] = false, ratebill.CodeDuplicate
		}
		writeDecision(w, d.hdr, body)
		return
	}

	code, ok := f.codes[req.Key]
	if !ok {
		code = ratebill.CodeNotFound
	}
	valid := code == ratebill.CodeValid || code == "VALID_TRIAL"
	body := map[string]any{"valid": valid, "code": code, "request_id": req.RequestID, "user": nil,
		"cost": 0, "ratelimit": nil, "total_units": 0, "replayed": false, "some_future_field": []int{1}}
	hdr := http.Header{}
	identified := code != ratebill.CodeNotFound && code != ratebill.CodeMalformedKey
	if identified {
		body["user"] = map[string]any{"id": 1, "username": "alice"}
		rl := map[string]any{"limit": 50, "remaining": 49, "resets_at": "2025-06-01T12:00:00Z", "retry_after": 0}
		hdr.Set("RateLimit-Policy", `"default";q=50;w=60`)
		hdr.Set("RateLimit", `"default";r=49;t=30`)
		hdr.Set("X-RateLimit-Limit", "50")
		hdr.Set("X-RateLimit-Remaining", "49")
		hdr.Set("X-RateLimit-Reset", "30")
		if code == ratebill.CodeRateLimited {
			rl["remaining"], rl["retry_after"] = 0, 30
			hdr.Set("X-RateLimit-Remaining", "0")
			hdr.Set("RateLimit", `"default";r=0;t=30`)
			hdr.Set("Retry-After", "30")
		}
		body["ratelimit"] = rl
	}
	if valid {
		f.nextTok++
		tok := "rt_" + strconv.Itoa(f.nextTok)
		f.tokens[tok] = false
		body["release_token"], body["cost"], body["total_units"] = tok, cost, 12
	}
	f.seen[req.RequestID] = &fakeDecision{body: body, hdr: hdr, cost: cost}
	writeDecision(w, hdr, body)
}

func writeDecision(w http.ResponseWriter, hdr http.Header, body map[string]any) {
	for k, v := range hdr {
		w.Header()[k] = v
	}
	w.Header().Set("X-Request-Id", body["request_id"].(string))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Unrelated", "not for the client")
	_ = json.NewEncoder(w).Encode(body)
}

func (f *fakePlatform) release(w http.ResponseWriter, r *http.Request) {
	f.releases.Add(1)
	var req struct {
		ReleaseToken string `json:"release_token"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		fakeProblem(w, http.StatusBadRequest, "malformed-request", err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	released, ok := f.tokens[req.ReleaseToken]
	switch {
	case !ok:
		fakeProblem(w, http.StatusNotFound, "not-found", "unknown release token")
	case released:
		fakeProblem(w, http.StatusConflict, "already-released", "the call was released already")
	default:
		f.tokens[req.ReleaseToken] = true
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"released": true, "request_id": "r", "cost": 1})
	}
}
