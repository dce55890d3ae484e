package main

import (
	"net/netip"
	"strings"
	"testing"

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
		h := host
		if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
			h = h[:i]
		}
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		if _, err := netip.ParseAddr(h); err == nil && !allowed && !strings.Contains(host, "]:") {
			t.Fatalf("IP literal Host %q refused", host)
		}
		lh := strings.ToLower(strings.TrimSuffix(h, "."))
		if allowed && strings.ContainsAny(lh, "abcdefghijklmnopqrstuvwxyz") && lh != "localhost" && lh != "admin.internal" {
			if _, err := netip.ParseAddr(h); err != nil {
				t.Fatalf("Host %q allowed", host)
			}
		}
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.Header.SetHost("admin.internal:9901")
		if origin != "" {
			ctx.Request.Header.Set("Origin", origin)
			if strings.HasPrefix(origin, "https://evil.") && !crossSite(&ctx) {
				t.Fatalf("Origin %q not cross-site", origin)
			}
		}
		_ = crossSite(&ctx)
	})
}
