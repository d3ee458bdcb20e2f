package main

import (
	"net"
	"net/http"
	"strings"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/projections"
)

// loopbackHosts refuses an HTTP request whose Host header names no loopback host, for an acld
// without --auth, which listens on loopback only because it answers anyone with anything (and
// for --pprof's listener, loopback only always). A
// web page open in a browser on this machine can still reach 127.0.0.1:8080 through a name of
// its own that its DNS server points there after the page has loaded (DNS rebinding): the
// browser then counts acld's answers as the page's own origin and lets its script read every
// tenant's data, as the anonymous caller. The request carries that name as its Host, which a
// loopback listener's genuine callers (curl, aclctl, a browser at localhost) never do.
func loopbackHosts(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			projections.WriteError(w, aggregates.Errorf(aggregates.CodeForbidden,
				"host %s is not a loopback name: this listener is loopback only and answers requests to localhost, 127.0.0.1 or [::1] only", r.Host))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// loopbackHost says whether a Host header (host, host:port, [v6]:port) names this machine's
// loopback: localhost or a loopback address. A request without one (HTTP/1.0) is not a
// browser's, which always sends it.
func loopbackHost(host string) bool {
	if host == "" {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return loopbackName(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
}

// loopbackName says whether a host (no port) names this machine's loopback: localhost or a
// loopback address. Names are case-insensitive.
func loopbackName(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
