package gate

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ratebill/platform/shared/ratelimit"
)

// SetRateLimitHeaders describes a rate-limit decision in both header
// families clients know:
//
//   - IETF draft-ietf-httpapi-ratelimit-headers:
//     RateLimit-Policy: "default";q=1000;w=86400
//     RateLimit: "default";r=958;t=3600
//   - the conventional X-RateLimit-Limit, X-RateLimit-Remaining and
//     X-RateLimit-Reset (Unix time in seconds of the window's end, as
//     GitHub sends it),
//
// and Retry-After (whole seconds, rounded up) when the request was denied.
func SetRateLimitHeaders(h http.Header, policy string, r ratelimit.Result) {
	window := int64(r.Limit.Window / time.Second)
	reset := int64(math.Ceil(r.ResetAfter.Seconds()))
	limit := strconv.FormatInt(r.Limit.Requests, 10)
	remaining := strconv.FormatInt(r.Remaining, 10)
	// Direct map writes with the canonical keys (what Header.Set would
	// store; TestRateLimitHeaderKeysAreCanonical holds them to it): this
	// runs on every metered request.
	h["Ratelimit-Policy"] = []string{`"` + policy + `";q=` + limit + ";w=" + strconv.FormatInt(window, 10)}
	h["Ratelimit"] = []string{`"` + policy + `";r=` + remaining + ";t=" + strconv.FormatInt(reset, 10)}
	h["X-Ratelimit-Limit"] = []string{limit}
	h["X-Ratelimit-Remaining"] = []string{remaining}
	h["X-Ratelimit-Reset"] = []string{strconv.FormatInt(r.ResetAt().Unix(), 10)}
	if r.Allowed {
		delete(h, "Retry-After")
	} else {
		h["Retry-After"] = []string{strconv.FormatInt(max(int64(math.Ceil(r.RetryAfter.Seconds())), 1), 10)}
	}
}

// SetMeteringHeaders describes a metered call's limits (DESIGN.md's
// "several limits" convention): X-RateLimit-*, Retry-After and RateLimit
// show the limit closest to running out (Metering.Limit), and
// RateLimit-Policy names every limit of the user, e.g.
//
//	RateLimit-Policy: "burst";q=10;w=1, "daily";q=1000;w=86400
//
// With one limit it is SetRateLimitHeaders.
func SetMeteringHeaders(h http.Header, m Metering) {
	r := m.Limit
	SetRateLimitHeaders(h, r.Limit.PolicyName(), r)
	if len(m.Limits) < 2 {
		return
	}
	var b strings.Builder
	for i, l := range m.Limits {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(`"` + l.Limit.PolicyName() + `";q=` + strconv.FormatInt(l.Limit.Requests, 10) + ";w=" + strconv.FormatInt(int64(l.Limit.Window/time.Second), 10))
	}
	h["Ratelimit-Policy"] = []string{b.String()}
}
