package ingress

import (
	"io"
	"net"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/pool"
)

// proxyFixture is an ingress Server (not listening: the handler is called directly) with one http route
// to the legacy service on loopback.
type proxyFixture struct {
	srv  *Server
	req  fasthttp.Request
	addr net.Addr
	ctx  fasthttp.RequestCtx
}

func newProxyFixture(tb testing.TB) *proxyFixture {
	tb.Helper()
	l := startLegacy(tb)
	cfg := newConfig(nil, []routeSpec{{name: "users", method: "GET", path: "/api/users/{id}", backend: "legacy",
		interaction: mapping.InteractionHTTP, mutate: func(r *mapping.Route) { r.Rewrite = "/v1/users/{id}" }}})
	addHTTPBackend(cfg, "legacy", l.url)
	table, err := mapping.Compile(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	pools, err := pool.NewGroup(cfg, pool.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = pools.Close() })
	srv, err := New(cfg, table, pools, Options{})
	if err != nil {
		tb.Fatal(err)
	}
	f := &proxyFixture{srv: srv, addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}}
	f.req.SetRequestURI("/api/users/42?x=1")
	f.req.Header.SetHost("gw.example")
	f.req.Header.Set("X-Forwarded-For", "10.1.2.3")
	return f
}

// once runs one request through the handler and copies the streamed body out, as the server does.
func (f *proxyFixture) once(tb testing.TB) {
	f.ctx.Init(&f.req, f.addr, nil)
	f.srv.handle(&f.ctx)
	if f.ctx.Response.StatusCode() != 200 {
		tb.Fatalf("status %d", f.ctx.Response.StatusCode())
	}
	if err := f.ctx.Response.BodyWriteTo(io.Discard); err != nil {
		tb.Fatal(err)
	}
	f.ctx.Response.Reset()
}

// BenchmarkHTTPProxy: GET /api/users/{id} rewritten to the legacy service over a kept-alive loopback
// connection, through the whole handler (match, pick, request copy, upstream round trip, header copy,
// streamed body).
func BenchmarkHTTPProxy(b *testing.B) {
	f := newProxyFixture(b)
	f.once(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f.once(b)
	}
}
