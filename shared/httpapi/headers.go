package httpapi

import (
	"math"
	"net"
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
func SetRateLimitHeaders(w http.ResponseWriter, policy string, r ratelimit.Result) {
	h := w.Header()
	window := int64(r.Limit.Window / time.Second)
	reset := int64(math.Ceil(r.ResetAfter.Seconds()))
	limit := strconv.FormatInt(r.Limit.Requests, 10)
	remaining := strconv.FormatInt(r.Remaining, 10)
	// Direct map writes with the canonical keys (what Header.Set would
	// store): this runs on every metered request.
	h["Ratelimit-Policy"] = []string{`"` + policy + `";q=` + limit + ";w=" + strconv.FormatInt(window, 10)}
	h["Ratelimit"] = []string{`"` + policy + `";r=` + remaining + ";t=" + strconv.FormatInt(reset, 10)}
	h["X-Ratelimit-Limit"] = []string{limit}
	h["X-Ratelimit-Remaining"] = []string{remaining}
	h["X-Ratelimit-Reset"] = []string{strconv.FormatInt(r.ResetAt().Unix(), 10)}
	if !r.Allowed {
		h["Retry-After"] = []string{strconv.FormatInt(max(int64(math.Ceil(r.RetryAfter.Seconds())), 1), 10)}
	}
}

// ClientIP returns the client's address. With hops trusted proxies in
// front (each appending the address it saw to X-Forwarded-For), the
// client is the hops-th entry from the right; entries further left are
// client-supplied and ignored. With hops 0 it is the TCP peer.
func ClientIP(r *http.Request, hops int) string {
	if hops > 0 {
		var parts []string
		for _, v := range r.Header.Values("X-Forwarded-For") {
			for _, p := range strings.Split(v, ",") {
				parts = append(parts, strings.TrimSpace(p))
			}
		}
		if len(parts) >= hops {
			if ip := net.ParseIP(parts[len(parts)-hops]); ip != nil {
				return ip.String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
