package instance

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ratebill/platform/shared"
	"github.com/ratebill/platform/shared/auth"
	"github.com/ratebill/platform/shared/httpapi"
	"github.com/ratebill/platform/shared/ratelimit"
	"github.com/ratebill/platform/shared/usage"
)

type ctxKey int

const (
	principalKey ctxKey = iota
	meteringKey
)

// PrincipalFrom returns the authenticated caller of the request.
func PrincipalFrom(ctx context.Context) (shared.Principal, bool) {
	p, ok := ctx.Value(principalKey).(shared.Principal)
	return p, ok
}

// Metering is what the metered pipeline decided for a request.
type Metering struct {
	// Limited is false when the limit was not enforced (Redis down with
	// RATE_LIMIT_FAIL_OPEN); Limit is then zero.
	Limited bool
	Limit   ratelimit.Result
	// Usage holds the user's running total, this request included.
	Usage usage.Result
}

// MeteringFrom returns the metering of a metered request.
func MeteringFrom(ctx context.Context) (Metering, bool) {
	m, ok := ctx.Value(meteringKey).(Metering)
	return m, ok
}

// UserLimit is the per-user quota.
func (i *Instance) UserLimit() ratelimit.Limit {
	return ratelimit.Limit{Requests: i.Config.RateLimit, Window: i.Config.RateWindow}
}

// authenticate runs step 1-2 of the hot path.
func (i *Instance) authenticate(r *http.Request) (shared.Principal, error) {
	key := r.Header.Get(auth.Header)
	if key == "" {
		// Reject before any I/O, even before the pool exists.
		return shared.Principal{}, shared.Errorf(shared.EUnauthorized, "missing API key: send it in the %s header", auth.Header)
	}
	a, err := i.Authenticator(r.Context())
	if err != nil {
		return shared.Principal{}, dependencyError("postgres", err)
	}
	return a.Authenticate(r.Context(), key)
}

// Authenticated serves h only to callers with a valid API key.
func (i *Instance) Authenticated(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := i.authenticate(r)
		if err != nil {
			httpapi.Error(w, r, err)
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey, p)))
	})
}

// Metered is the hot path: authenticate, take one request from the
// user's quota in one Redis round trip, record the usage event durably
// (grouped with concurrent requests), then run h with the outcome in the
// context. A denied request is neither counted nor billed; an admitted
// request whose usage cannot be recorded is answered 503 and its quota
// given back, so billed always equals admitted.
func (i *Instance) Metered(endpoint string, h http.Handler) http.Handler {
	limit := i.UserLimit()
	denied := fmt.Sprintf("rate limit of %d requests per %d s exceeded", limit.Requests, int64(limit.Window/time.Second))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		p, err := i.authenticate(r)
		if err != nil {
			httpapi.Error(w, r, err)
			return
		}
		m := Metering{}
		limitKey := "user:" + strconv.FormatInt(p.UserID, 10)
		var ok bool
		m.Limit, m.Limited, ok = i.takeQuota(w, r, limitKey, "default", limit, denied)
		if !ok {
			return
		}

		rec, err := i.Recorder(ctx)
		if err == nil {
			m.Usage, err = rec.Record(ctx, usage.Event{UserID: p.UserID, RequestID: httpapi.RequestID(ctx), Endpoint: endpoint})
		}
		if err != nil || m.Usage.Duplicate {
			// Not newly billed: give the quota back. A duplicate (a retry
			// with the same X-Request-Id) is served, but costs nothing.
			if m.Limited {
				i.refund(ctx, limitKey, m.Limit)
				m.Limit.Used--
				m.Limit.Remaining++
				httpapi.SetRateLimitHeaders(w, "default", m.Limit)
			}
			if err != nil {
				httpapi.Error(w, r, dependencyError("postgres", err))
				return
			}
		}
		ctx = context.WithValue(context.WithValue(ctx, principalKey, p), meteringKey, m)
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

func (i *Instance) refund(ctx context.Context, key string, res ratelimit.Result) {
	lim, err := i.Limiter()
	if err == nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		err = lim.Refund(rctx, key, res.WindowStart, 1)
	}
	if err != nil {
		httpapi.Logger(ctx).WarnContext(ctx, "quota refund failed", "error", err.Error())
	}
}

// IPLimited limits h per client IP (sign-ups), with SIGNUP_RATE_LIMIT per
// SIGNUP_RATE_WINDOW. It fails the same way as the user limit.
func (i *Instance) IPLimited(h http.Handler) http.Handler {
	limit := ratelimit.Limit{Requests: i.Config.SignupRateLimit, Window: i.Config.SignupRateWindow}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := "ip:" + httpapi.ClientIP(r, i.Config.TrustedProxyHops)
		if _, _, ok := i.takeQuota(w, r, key, "signup", limit, "too many sign-ups from this address"); ok {
			h.ServeHTTP(w, r)
		}
	})
}

// takeQuota takes one request from key's quota and sets the rate-limit
// headers of policy. When the request must not go on it answers it
// itself and returns ok false: 429 with denied as the detail, or 503 when
// Redis cannot decide. With RATE_LIMIT_FAIL_OPEN a Redis failure lets the
// request go on with enforced false.
func (i *Instance) takeQuota(w http.ResponseWriter, r *http.Request, key, policy string, limit ratelimit.Limit, denied string) (res ratelimit.Result, enforced, ok bool) {
	ctx := r.Context()
	lim, err := i.Limiter()
	if err == nil {
		res, err = lim.Allow(ctx, key, limit)
	}
	switch {
	case err != nil && i.Config.RateLimitFailOpen:
		httpapi.Logger(ctx).WarnContext(ctx, policy+" limit not enforced: redis unavailable (RATE_LIMIT_FAIL_OPEN)", "error", err.Error())
		return res, false, true
	case err != nil:
		httpapi.Error(w, r, dependencyError("redis", err))
		return res, false, false
	}
	httpapi.SetRateLimitHeaders(w, policy, res)
	if !res.Allowed {
		httpapi.Error(w, r, shared.Errorf(shared.ERateLimited, "%s; retry after %s s", denied, w.Header().Get("Retry-After")))
		return res, true, false
	}
	return res, true, true
}

// dependencyError keeps application errors as they are and turns
// anything else into a 503: naming the dependency, or saying that this
// instance is draining after SIGTERM (the client should simply retry;
// Cloud Run routes the retry to another instance).
func dependencyError(dep string, err error) error {
	if shared.ErrorCode(err) != shared.EInternal {
		return err
	}
	if errors.Is(err, ErrClosed) || errors.Is(err, usage.ErrClosed) {
		return &shared.Error{Code: shared.EUnavailable, Message: "this instance is shutting down; retry", Err: err}
	}
	return shared.Unavailable(dep, err)
}

// Routes maps exact paths to handlers per method.
type Routes map[string]map[string]http.Handler

// Handler serves routes with exact path matching, problem responses for
// unknown paths (404) and methods (405 with Allow), the internal probes
// /livez and /readyz, and the shared middleware.
func (i *Instance) Handler(routes Routes) http.Handler {
	mux := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/livez":
			// The pid tells a supervisor (tools/stack) that the process it
			// started, not another on a reused port, is the one answering.
			// Internal path: no gateway routes it.
			httpapi.JSON(w, http.StatusOK, map[string]any{"status": "ok", "pid": os.Getpid()})
			return
		case "/readyz":
			i.ready(w, r)
			return
		}
		methods, ok := routes[r.URL.Path]
		if !ok {
			httpapi.Error(w, r, shared.Errorf(shared.ENotFound, "no route for %s", r.URL.Path))
			return
		}
		// Exactly the documented methods: no implicit HEAD, which on a
		// metered path would be billed for a response nobody reads.
		h, ok := methods[r.Method]
		if !ok {
			allow := make([]string, 0, len(methods))
			for m := range methods {
				allow = append(allow, m)
			}
			sort.Strings(allow)
			w.Header().Set("Allow", strings.Join(allow, ", "))
			httpapi.Error(w, r, shared.Errorf(shared.EMethod, "%s does not accept %s; use %s", r.URL.Path, r.Method, strings.Join(allow, ", ")))
			return
		}
		h.ServeHTTP(w, r)
	})
	return i.track(httpapi.Middleware(mux, i.Logger, i.Config.Project))
}

func (i *Instance) ready(w http.ResponseWriter, r *http.Request) {
	status, code := "ok", http.StatusOK
	body := map[string]string{}
	for _, c := range i.Check(r.Context()) {
		if c.Err != nil {
			status, code = "unavailable", http.StatusServiceUnavailable
			body[c.Name] = "down"
		} else {
			body[c.Name] = "ok"
		}
	}
	body["status"] = status
	httpapi.JSON(w, code, body)
}
