//go:build !race

package ingress

import (
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/rsgate/rsgate/mapping"
)

// TestPolicyAllocs: the CORS headers of an allowed and a refused origin, a preflight refused or
// answered, and a rate-limit decision for a known key allocate nothing per request.
func TestPolicyAllocs(t *testing.T) {
	cors := newCORSPolicy(&mapping.CORSConfig{Origins: []string{"https://app.example.com", "https://*.example.org"},
		ExposeHeaders: []string{"X-Request-Id"}, Credentials: true, Headers: []string{"Content-Type", "Authorization"}})
	lim := newKeyedLimiter(&mapping.RateLimitConfig{Rate: "1000000/s", Burst: 1000}, "r", nil)
	hlim := newKeyedLimiter(&mapping.RateLimitConfig{Rate: "1/h", Burst: 1, Key: "header:X-API-Key"}, "h", nil)
	var req fasthttp.Request
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 1234}, nil)
	rq := &request{}
	for _, origin := range []string{"https://a.b.example.org", "https://evil.com"} {
		ctx.Request.Header.Set("Origin", origin)
		ctx.Request.Header.Set("X-API-Key", "k")
		run := func() {
			ctx.Response.Reset()
			cors.apply(&ctx)
			cors.headersAllowed([]byte("content-type, authorization"))
			lim.allow(&ctx, rq)
			hlim.allow(&ctx, rq) // refused after the first: the 429 path
		}
		run()
		if n := testing.AllocsPerRun(500, run); n != 0 {
			t.Errorf("origin %s: %v allocs per request", origin, n)
		}
	}
	if ctx.Response.StatusCode() != 429 {
		t.Fatalf("status %d, want the 429 path exercised", ctx.Response.StatusCode())
	}
}

// BenchmarkPolicies measures the per-request cost of each policy against no policy.
func BenchmarkPolicies(b *testing.B) {
	cors := newCORSPolicy(&mapping.CORSConfig{Origins: []string{"https://app.example.com", "https://*.example.org"}})
	lim := newKeyedLimiter(&mapping.RateLimitConfig{Rate: "1000000000/s", Burst: 1000000}, "r", nil)
	var req fasthttp.Request
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 1234}, nil)
	ctx.Request.Header.Set("Origin", "https://a.example.org")
	rq := &request{}
	b.Run("cors", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			ctx.Response.Header.Reset()
			cors.apply(&ctx)
		}
	})
	b.Run("ratelimit", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			ctx.Response.Header.Reset()
			lim.allow(&ctx, rq)
		}
	})
	b.Run("ratelimit-parallel-keys", func(b *testing.B) {
		b.ReportAllocs()
		now := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			i := uint64(0)
			for pb.Next() {
				i++
				lim.take(i%50000*0x9e3779b97f4a7c15, int64(time.Since(now)))
			}
		})
	})
}

// BenchmarkHandlerPolicies is BenchmarkHandler (GET /api/meta/{id}) without policies, then with a CORS
// policy (allowed Origin) and a rate limit that never refuses: the policies' share of a whole request.
func BenchmarkHandlerPolicies(b *testing.B) {
	p := newInProcess(b, nil)
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 1234}, nil)
	ctx.Request.SetRequestURI("/api/meta/42")
	ctx.Request.Header.SetMethod("GET")
	ctx.Request.Header.Set("Origin", "https://app.example.com")
	run := func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx.Response.Reset()
			p.srv.handle(&ctx)
			if ctx.Response.StatusCode() != 200 {
				b.Fatalf("status %d %q", ctx.Response.StatusCode(), ctx.Response.Body())
			}
		}
	}
	b.Run("none", run)
	rt := p.st.routes[p.st.table.Route("meta-users").Index]
	rt.cors = newCORSPolicy(&mapping.CORSConfig{Origins: []string{"https://app.example.com"}})
	rt.limit = newKeyedLimiter(&mapping.RateLimitConfig{Rate: "1000000000/s", Burst: 1000000}, "meta-users", nil)
	p.st.preflight = true
	b.Run("cors+ratelimit", run)
}
