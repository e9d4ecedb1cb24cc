// Package loadtest drives the platform's API the way the seed's
// tests/test_rate_limit.py did, and checks what the platform promises.
//
// A run signs up Users fresh users, sends Requests requests to Endpoint
// spread round robin over them, and reports throughput, latency
// percentiles (an HDR histogram, microsecond resolution), a status
// histogram and transport errors. Then it checks correctness:
//
//   - no user was admitted (200) more than its limit within one window:
//     the limit is read from GET /me's rate_limit, and 200s are grouped by
//     window using the X-RateLimit-Reset header of each response;
//   - for a metered endpoint, every user's GET /billing "requests" equals
//     the requests admitted in this run (the users are fresh, so the count
//     must be exact: no lost usage row, no denied request billed);
//
// With Endpoint "/verify" each request is POST /verify with the user's
// key in the JSON body (no cost: 1 unit each), and a request counts as
// admitted when it is answered 200 with "valid": true (a denial is a 200
// with "valid": false).
//   - no 5xx and no transport error.
//
// Two load models:
//
//   - closed loop (Rate 0): Concurrency workers, each sending its next
//     request as soon as the previous one is answered;
//   - open loop (Rate > 0): request i is due at start + i/Rate. Its
//     latency is measured from that intended send time, not from when a
//     worker got round to it, so a stalled server shows up as latency
//     instead of silently slowing the client down (no coordinated
//     omission, as in wrk2). Concurrency bounds the requests in flight.
//
// Runs are bounded both in count (Requests) and in time (MaxDuration).
package loadtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Config describes one run. Zero values take the seed's defaults where it
// had one (see Defaults).
type Config struct {
	// Base is the API's base URL, e.g. http://127.0.0.1:8080 (API_BASE).
	Base string
	// Users is the number of fresh users to sign up (LT_USERS).
	Users int
	// Requests is the total number of requests to send (LT_REQUESTS).
	Requests int
	// Concurrency is the number of workers: requests in flight at most
	// (LT_CONCURRENCY).
	Concurrency int
	// Endpoint is the path requested with each user's key (LT_ENDPOINT):
	// GET with X-API-Key, or for "/verify" POST with the key in the body.
	Endpoint string
	// Rate, in requests per second, selects open-loop mode; 0 is closed
	// loop.
	Rate float64
	// MaxDuration bounds the request phase; requests not sent by then are
	// not sent (reported as Unsent). 0 means 10 minutes.
	MaxDuration time.Duration
	// Timeout bounds one request. 0 means 10 s.
	Timeout time.Duration
	// Metered says whether Endpoint is billed, so that GET /billing must
	// count exactly the admitted requests. nil means "Endpoint is /usage
	// or /verify".
	Metered *bool
	// Warmup sends one request per user before the measured phase, so
	// that the measured requests find the users' keys in the servers'
	// caches. Warm-up requests count for the checks (they are billed) but
	// not for the figures.
	Warmup bool
	// NoChecks skips the correctness checks (for servers that are not the
	// platform, such as the bare baseline server).
	NoChecks bool
	// Progress receives the progress display; nil shows none.
	Progress io.Writer
	// Terminal draws a redrawn bar on Progress instead of plain lines.
	Terminal bool
	// ProgressEvery is the interval of plain progress lines (0: 2 s).
	ProgressEvery time.Duration
	// Client sends the requests; nil builds one sized for Concurrency.
	Client *http.Client
	// ServerPID, when set, is the server's process: the CPU time it and
	// its descendants use during the request phase is reported.
	ServerPID int
}

// Defaults are the seed load test's defaults.
var Defaults = Config{
	Base:        "http://127.0.0.1:8080",
	Users:       100,
	Requests:    10000,
	Concurrency: 100,
	Endpoint:    "/usage",
}

// FromEnv returns Defaults overridden by API_BASE, LT_USERS, LT_REQUESTS,
// LT_CONCURRENCY and LT_ENDPOINT, as the seed's script read them.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Defaults
	if v := getenv("API_BASE"); v != "" {
		c.Base = v
	}
	if v := getenv("LT_ENDPOINT"); v != "" {
		c.Endpoint = v
	}
	for _, f := range []struct {
		name string
		dst  *int
	}{{"LT_USERS", &c.Users}, {"LT_REQUESTS", &c.Requests}, {"LT_CONCURRENCY", &c.Concurrency}} {
		v := getenv(f.name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return c, fmt.Errorf("%s=%q: want a whole number of at least 1", f.name, v)
		}
		*f.dst = n
	}
	return c, nil
}

func (c *Config) validate() error {
	u, err := url.Parse(c.Base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("base URL %q: want http(s)://host[:port]", c.Base)
	}
	c.Base = strings.TrimRight(c.Base, "/")
	if !strings.HasPrefix(c.Endpoint, "/") {
		return fmt.Errorf("endpoint %q: want a path starting with /", c.Endpoint)
	}
	if c.Users < 1 || c.Requests < 1 || c.Concurrency < 1 {
		return errors.New("users, requests and concurrency must be at least 1")
	}
	if c.Rate < 0 {
		return errors.New("rate must not be negative")
	}
	if c.MaxDuration <= 0 {
		c.MaxDuration = 10 * time.Minute
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = 2 * time.Second
	}
	return nil
}

func (c *Config) metered() bool {
	if c.Metered != nil {
		return *c.Metered
	}
	return c.Endpoint == "/usage" || c.verify()
}

// verify reports whether Endpoint is POST /verify, whose key travels in
// the body and whose denials are 200s with "valid": false.
func (c *Config) verify() bool { return c.Endpoint == "/verify" }

// request returns the request of Endpoint for a user's key.
func (c *Config) request(ctx context.Context, key string) (*http.Request, error) {
	if !c.verify() {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+c.Endpoint, nil)
		if err != nil {
			return nil, err
		}
		req.Header = http.Header{"X-Api-Key": {key}}
		return req, nil
	}
	body, _ := json.Marshal(map[string]string{"key": key})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Base+c.Endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = http.Header{"Content-Type": {"application/json"}}
	return req, nil
}

// Report is the outcome of a run. Latencies are in milliseconds.
type Report struct {
	Base        string  `json:"base"`
	Endpoint    string  `json:"endpoint"`
	Mode        string  `json:"mode"` // "closed" or "open"
	Rate        float64 `json:"rate,omitempty"`
	Users       int     `json:"users"`
	Concurrency int     `json:"concurrency"`

	Warmup   int     `json:"warmup,omitempty"` // warm-up requests, not in the figures
	Requests int     `json:"requests"`         // sent (answered or failed)
	Unsent   int     `json:"unsent"`           // not sent before MaxDuration
	Seconds  float64 `json:"seconds"`          // request phase, wall clock
	RPS      float64 `json:"rps"`              // requests / seconds

	Latency Latency `json:"latency_ms"`

	// CPU time per request during the request phase, in microseconds:
	// the load tool's own, and the server process tree's (ServerPID).
	ClientCPUPerRequest float64 `json:"client_cpu_us_per_request"`
	ServerCPUPerRequest float64 `json:"server_cpu_us_per_request,omitempty"`
	// ServerCPUByProcess splits ServerCPUPerRequest by process name.
	ServerCPUByProcess map[string]float64 `json:"server_cpu_us_per_request_by_process,omitempty"`

	Status map[int]int    `json:"status"`           // HTTP status → count
	Errors map[string]int `json:"errors,omitempty"` // transport error → count

	Admitted int           `json:"admitted"` // 200s (for /verify: 200s with valid true)
	Checks   []CheckResult `json:"checks"`
	OK       bool          `json:"ok"` // every check passed
}

// Latency summarises the latency distribution, in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// CheckResult is one correctness check.
type CheckResult struct {
	Name   string   `json:"name"`
	OK     bool     `json:"ok"`
	Detail string   `json:"detail"`
	Errors []string `json:"errors,omitempty"` // the first few offences
}

// user is one signed-up user.
type user struct {
	name, key string
}

// outcome counts one worker's results; merged at the end so that the hot
// loop takes no lock.
type outcome struct {
	verify   bool // admitted means 200 with "valid": true
	hist     *hdrhistogram.Histogram
	status   map[int]int
	errors   map[string]int
	admitted map[windowKey]int // 200s per user and window
	perUser  []int             // 200s per user
	unknown  []int             // requests per user whose outcome is unknown
	sent     int
}

type windowKey struct {
	user  int
	reset int64 // X-RateLimit-Reset of the response; 0 when absent
}

func newOutcome(cfg Config) *outcome {
	users := cfg.Users
	return &outcome{
		verify:   cfg.verify(),
		hist:     hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3),
		status:   map[int]int{},
		errors:   map[string]int{},
		admitted: map[windowKey]int{},
		perUser:  make([]int, users),
		unknown:  make([]int, users),
	}
}

// Run signs up the users, sends the requests and checks the outcome. It
// returns an error only when the run could not happen (bad config, sign-up
// failed); failed checks are in the Report (OK false).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	client := cfg.Client
	if client == nil {
		client = NewClient(cfg.Concurrency, cfg.Timeout)
	}
	users, err := signUp(ctx, client, cfg)
	if err != nil {
		return nil, err
	}
	rep := &Report{
		Base: cfg.Base, Endpoint: cfg.Endpoint, Mode: "closed", Rate: cfg.Rate,
		Users: cfg.Users, Concurrency: cfg.Concurrency,
		Status: map[int]int{}, Errors: map[string]int{},
	}
	if cfg.Rate > 0 {
		rep.Mode = "open"
	}
	total := newOutcome(cfg)
	warm := newOutcome(cfg)
	if cfg.Warmup {
		var mu sync.Mutex
		err := forEachUser(ctx, users, cfg.Concurrency, func(i int, u user) error {
			o := newOutcome(cfg)
			req, err := cfg.request(ctx, u.key)
			if err != nil {
				return err
			}
			o.do(client, req, i, time.Now())
			mu.Lock()
			warm.merge(o)
			mu.Unlock()
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("warming up: %w", err)
		}
		rep.Warmup = warm.sent
	}
	cpu0, srv0 := ownCPU(), serverCPU(cfg.ServerPID)
	elapsed := send(ctx, client, cfg, users, total)
	cpu1, srv1 := ownCPU(), serverCPU(cfg.ServerPID)
	if total.sent > 0 {
		per := func(d time.Duration) float64 { return float64(d/time.Microsecond) / float64(total.sent) }
		rep.ClientCPUPerRequest = per(cpu1 - cpu0)
		if cfg.ServerPID > 0 {
			rep.ServerCPUByProcess = map[string]float64{}
			for name, d := range srv1 {
				rep.ServerCPUByProcess[name] = per(d - srv0[name])
				rep.ServerCPUPerRequest += rep.ServerCPUByProcess[name]
			}
		}
	}
	rep.Requests = total.sent
	rep.Unsent = cfg.Requests - total.sent
	rep.Seconds = elapsed.Seconds()
	if rep.Seconds > 0 {
		rep.RPS = float64(total.sent) / rep.Seconds
	}
	h := total.hist
	ms := func(us int64) float64 { return float64(us) / 1000 }
	rep.Latency = Latency{
		P50: ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)),
		P99: ms(h.ValueAtQuantile(99)), P999: ms(h.ValueAtQuantile(99.9)),
		Max: ms(h.Max()), Mean: h.Mean() / 1000,
	}
	rep.Status, rep.Errors = total.status, total.errors
	for _, n := range total.perUser {
		rep.Admitted += n
	}
	// The checks count warm-up requests too: they were admitted and billed.
	for k, v := range warm.admitted {
		total.admitted[k] += v
	}
	for i := range warm.perUser {
		total.perUser[i] += warm.perUser[i]
		total.unknown[i] += warm.unknown[i]
	}
	for k, v := range warm.errors {
		rep.Errors["warm-up: "+k] += v
	}
	for code, n := range warm.status {
		if code >= 500 {
			rep.Errors[fmt.Sprintf("warm-up: status %d", code)] += n
		}
	}

	rep.Checks = append(rep.Checks, checkErrors(rep))
	if !cfg.NoChecks {
		rep.Checks = append(rep.Checks, checkLimits(ctx, client, cfg, users, total))
		if cfg.metered() {
			rep.Checks = append(rep.Checks, checkBilling(ctx, client, cfg, users, total))
		}
	}
	rep.OK = true
	for _, c := range rep.Checks {
		rep.OK = rep.OK && c.OK
	}
	return rep, nil
}

func serverCPU(pid int) map[string]time.Duration {
	if pid <= 0 {
		return nil
	}
	by, _ := TreeCPUByName(pid)
	return by
}

// NewClient returns an HTTP client keeping up to conns connections alive
// to one host, without compression (the bodies are small and the client
// shares the CPU with the server).
func NewClient(conns int, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               nil, // loopback targets; never a proxy
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        conns + 16,
			MaxIdleConnsPerHost: conns + 16,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}

func runID() string {
	var b [5]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// signUp creates cfg.Users users with unique names, a few at a time.
func signUp(ctx context.Context, client *http.Client, cfg Config) ([]user, error) {
	id := runID()
	users := make([]user, cfg.Users)
	var (
		next     atomic.Int64
		firstErr error
		mu       sync.Mutex
		wg       sync.WaitGroup
	)
	for range min(cfg.Concurrency, 16, cfg.Users) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= cfg.Users {
					return
				}
				name := fmt.Sprintf("lt-%s-%d", id, i)
				key, err := signUpOne(ctx, client, cfg.Base, name)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					next.Store(int64(cfg.Users)) // stop the others
					return
				}
				users[i] = user{name: name, key: key}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return users, nil
}

func signUpOne(ctx context.Context, client *http.Client, base, name string) (string, error) {
	body, _ := json.Marshal(map[string]string{"username": name, "email": name + "@example.com"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/users/", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("signing up %s: %w", name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("signing up %s: %s: %s", name, resp.Status, bytes.TrimSpace(b))
	}
	var out struct {
		APIKey string `json:"api_key"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.APIKey == "" {
		return "", fmt.Errorf("signing up %s: no api_key in %s", name, b)
	}
	return out.APIKey, nil
}

// send runs the request phase and returns its wall-clock duration.
func send(ctx context.Context, client *http.Client, cfg Config, users []user, total *outcome) time.Duration {
	ctx, cancel := context.WithTimeout(ctx, cfg.MaxDuration)
	defer cancel()
	var (
		next     atomic.Int64
		done     atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		interval time.Duration
	)
	if cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) / cfg.Rate)
	}
	stopProgress := startProgress(cfg, &done)
	start := time.Now()
	for range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := newOutcome(cfg)
			defer func() {
				mu.Lock()
				total.merge(o)
				mu.Unlock()
			}()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= cfg.Requests {
					return
				}
				u := i % len(users)
				var due time.Time
				if interval > 0 {
					due = start.Add(time.Duration(i) * interval)
					if d := time.Until(due); d > 0 {
						t := time.NewTimer(d)
						select {
						case <-t.C:
						case <-ctx.Done():
							t.Stop()
							return
						}
					}
				} else {
					due = time.Now()
				}
				r, err := cfg.request(ctx, users[u].key)
				if err != nil {
					return // validate checked the URL: cannot happen
				}
				o.do(client, r, u, due)
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()
	return elapsed
}

// do sends one request and records its outcome; latency runs from due.
func (o *outcome) do(client *http.Client, req *http.Request, u int, due time.Time) {
	o.sent++
	resp, err := client.Do(req)
	valid := true
	if err == nil {
		if o.verify && resp.StatusCode == http.StatusOK {
			var v struct {
				Valid bool `json:"valid"`
			}
			var b []byte
			if b, err = io.ReadAll(resp.Body); err == nil {
				valid = json.Unmarshal(b, &v) == nil && v.Valid
			}
		} else {
			_, err = io.Copy(io.Discard, resp.Body)
		}
		resp.Body.Close()
	}
	lat := time.Since(due)
	o.hist.RecordValue(max(int64(lat/time.Microsecond), 1))
	if err != nil {
		o.errors[errorKind(err)]++
		o.unknown[u]++
		return
	}
	o.status[resp.StatusCode]++
	if resp.StatusCode == http.StatusOK && valid {
		reset, _ := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64)
		o.admitted[windowKey{u, reset}]++
		o.perUser[u]++
	}
}

func (o *outcome) merge(p *outcome) {
	o.hist.Merge(p.hist)
	for k, v := range p.status {
		o.status[k] += v
	}
	for k, v := range p.errors {
		o.errors[k] += v
	}
	for k, v := range p.admitted {
		o.admitted[k] += v
	}
	for i := range p.perUser {
		o.perUser[i] += p.perUser[i]
		o.unknown[i] += p.unknown[i]
	}
	o.sent += p.sent
}

// errorKind shortens a transport error to a stable category for the
// error histogram.
func errorKind(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	s := err.Error()
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

func checkErrors(rep *Report) CheckResult {
	c := CheckResult{Name: "no 5xx and no transport errors", OK: true}
	n5xx, nerr := 0, 0
	for s, n := range rep.Status {
		if s >= 500 {
			n5xx += n
		}
	}
	for _, n := range rep.Errors {
		nerr += n
	}
	c.Detail = fmt.Sprintf("%d 5xx, %d transport errors, %d unsent", n5xx, nerr, rep.Unsent)
	c.OK = n5xx == 0 && nerr == 0 && rep.Unsent == 0
	return c
}

// policy is GET /me's rate_limit.
type policy struct {
	Limit         int64 `json:"limit"`
	WindowSeconds int64 `json:"window_seconds"`
}

func checkLimits(ctx context.Context, client *http.Client, cfg Config, users []user, o *outcome) CheckResult {
	c := CheckResult{Name: "no user admitted beyond its limit", OK: true}
	limits := make([]int64, len(users))
	err := forEachUser(ctx, users, cfg.Concurrency, func(i int, u user) error {
		var me struct {
			RateLimit policy `json:"rate_limit"`
		}
		if err := getJSON(ctx, client, cfg.Base+"/me", u.key, &me); err != nil {
			return err
		}
		if me.RateLimit.Limit < 1 {
			return fmt.Errorf("GET /me for %s: no rate_limit.limit", u.name)
		}
		limits[i] = me.RateLimit.Limit
		return nil
	})
	if err != nil {
		c.OK, c.Detail = false, err.Error()
		return c
	}
	keys := make([]windowKey, 0, len(o.admitted))
	for k := range o.admitted {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool {
		if keys[a].user != keys[b].user {
			return keys[a].user < keys[b].user
		}
		return keys[a].reset < keys[b].reset
	})
	maxUsed := 0
	for _, k := range keys {
		n := o.admitted[k]
		maxUsed = max(maxUsed, n)
		if int64(n) > limits[k.user] {
			c.OK = false
			c.Errors = appendFew(c.Errors, fmt.Sprintf("%s: %d admitted in the window resetting at %d, limit %d", users[k.user].name, n, k.reset, limits[k.user]))
		}
	}
	c.Detail = fmt.Sprintf("%d users, at most %d admitted per user and window, limit %d", len(users), maxUsed, limits[0])
	return c
}

func checkBilling(ctx context.Context, client *http.Client, cfg Config, users []user, o *outcome) CheckResult {
	c := CheckResult{Name: "billing counts exactly the admitted requests", OK: true}
	billed := make([]int64, len(users))
	err := forEachUser(ctx, users, cfg.Concurrency, func(i int, u user) error {
		var b struct {
			Requests *int64 `json:"requests"`
		}
		if err := getJSON(ctx, client, cfg.Base+"/billing", u.key, &b); err != nil {
			return err
		}
		if b.Requests == nil {
			return fmt.Errorf("GET /billing for %s: no requests field", u.name)
		}
		billed[i] = *b.Requests
		return nil
	})
	if err != nil {
		c.OK, c.Detail = false, err.Error()
		return c
	}
	var sumBilled, sumAdmitted int64
	for i, u := range users {
		a, b := int64(o.perUser[i]), billed[i]
		sumBilled += b
		sumAdmitted += a
		// A request that failed in transport may or may not have been
		// admitted; the check can only bound it (and that failure is
		// reported by the error check).
		if b < a || b > a+int64(o.unknown[i]) {
			c.OK = false
			c.Errors = appendFew(c.Errors, fmt.Sprintf("%s: billed %d, admitted %d (%d outcomes unknown)", u.name, b, a, o.unknown[i]))
		}
	}
	c.Detail = fmt.Sprintf("billed %d, admitted %d over %d users", sumBilled, sumAdmitted, len(users))
	return c
}

func appendFew(list []string, s string) []string {
	const few = 10
	if len(list) < few {
		return append(list, s)
	}
	return list
}

// forEachUser runs f for every user, a few at a time, and returns the
// first error.
func forEachUser(ctx context.Context, users []user, conc int, f func(int, user) error) error {
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range min(conc, 16, len(users)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(users) {
					return
				}
				if err := f(i, users[i]); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

func getJSON(ctx context.Context, client *http.Client, url, key string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-API-Key", key)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, bytes.TrimSpace(b))
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}
