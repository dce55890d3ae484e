package main

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/rsgate/rsgate/internal/csrf"

	"github.com/valyala/fasthttp"
)

// FuzzAdminGuard: the Host and Origin checks never panic, an IP literal Host is always allowed, a Host
// with letters other than localhost or the admin name never is, and a POST whose Origin names another
// host is always refused.
func FuzzAdminGuard(f *testing.F) {
	for _, s := range []struct{ host, origin string }{
		{"127.0.0.1:9901", ""}, {"localhost", "http://localhost"}, {"[::1]:9901", "null"},
		{"evil.example", "https://evil.example"}, {"admin.internal:9901", "http://admin.internal:9901"},
		{"[fe80::1%25eth0]:1", "http://[::1]"}, {"", "%zz"}, {"LOCALHOST.", "http://a:b:c"},
	} {
		f.Add(s.host, s.origin)
	}
	g := newAdminGuard("admin.internal:9901")
	f.Fuzz(func(t *testing.T, host, origin string) {
		allowed := g.hostAllowed([]byte(host))
		if wellFormedIPHost(host) && !allowed {
			t.Fatalf("IP literal Host %q refused", host)
		}
		h := host
		if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
			h = h[:i]
		}
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		lh := strings.ToLower(strings.TrimSuffix(h, "."))
		if allowed && strings.ContainsAny(lh, "abcdefghijklmnopqrstuvwxyz") && lh != "localhost" && lh != "admin.internal" {
			// A bare IPv6 literal without brackets ("a::") is an address too, whatever the port split said.
			_, err1 := netip.ParseAddr(h)
			_, err2 := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
			if err1 != nil && err2 != nil {
				t.Fatalf("Host %q allowed", host)
			}
		}
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.Header.SetHost("admin.internal:9901")
		if origin != "" {
			ctx.Request.Header.Set("Origin", origin)
			if strings.HasPrefix(origin, "https://evil.") && !csrf.CrossSite(&ctx) {
				t.Fatalf("Origin %q not cross-site", origin)
			}
		}
		_ = csrf.CrossSite(&ctx)
	})
}

// wellFormedIPHost: an IPv4 literal or a bracketed IPv6 literal, then optionally ":" and a decimal port.
// Only these must be allowed; a malformed Host such as "0.0.0.0:[" or ":::" may be refused.
func wellFormedIPHost(host string) bool {
	h, port := host, ""
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return false
		}
		h, port = host[1:end], host[end+1:]
		if a, err := netip.ParseAddr(h); err != nil || !a.Is6() {
			return false
		}
	} else {
		if i := strings.LastIndexByte(host, ':'); i >= 0 {
			h, port = host[:i], host[i:]
		}
		if a, err := netip.ParseAddr(h); err != nil || !a.Is4() {
			return false
		}
	}
	if port == "" {
		return true
	}
	return port[0] == ':' && len(port) > 1 && digits(port[1:])
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
