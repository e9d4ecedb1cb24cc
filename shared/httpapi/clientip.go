package httpapi

import (
	"net"
	"net/http"
	"strings"
)

// ClientAddr says where a request's client address is found.
type ClientAddr struct {
	// Header is a header the proxy in front sets to the client's address
	// (CLIENT_IP_HEADER); when present with a valid address it wins. Its
	// right-most value is used, in case the proxy appends to a value the
	// client sent rather than replacing it.
	Header string
	// Hops is the number of trusted proxies appending to X-Forwarded-For
	// (TRUSTED_PROXY_HOPS).
	Hops int
}

// ClientIP returns the client's address: from a.Header when set and
// valid; else, with a.Hops trusted proxies in front (each appending the
// address it saw to X-Forwarded-For), the hops-th entry from the right
// (entries further left are client-supplied and ignored); else the TCP
// peer.
func ClientIP(r *http.Request, a ClientAddr) string {
	if a.Header != "" {
		if v := r.Header.Values(a.Header); len(v) > 0 {
			last := v[len(v)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if ip := net.ParseIP(strings.TrimSpace(last)); ip != nil {
				return ip.String()
			}
		}
	}
	hops := a.Hops
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
