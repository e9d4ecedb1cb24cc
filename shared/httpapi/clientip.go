package httpapi

import (
	"net"
	"net/http"
	"strings"
)

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
