package ingress

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/rsgate/rsgate/internal/demo"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/pool"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/transport"
)

// inProcess is an ingress whose backend is the demo handler over in-memory rsocket pipes: no sockets at all.
type inProcess struct {
	srv   *Server
	pools *pool.Group
	st    *state
}

func newInProcess(tb testing.TB, set *metrics.Set, extra ...func(*mapping.Config)) *inProcess {
	tb.Helper()
	cfg := newConfig(map[string]string{"demo": "127.0.0.1:9"}, append(demoRoutes(),
		routeSpec{name: "meta-users", method: "GET", path: "/api/meta/{id}", backend: "demo", interaction: mapping.InteractionRequestResponse, tag: "users.{id}",
			mutate: func(r *mapping.Route) { r.ForwardHeaders = []string{"X-Trace"} }}))
	for _, f := range extra {
		f(cfg)
	}
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	table, err := mapping.Compile(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	stats := new(demo.Stats)
	dial := func(ctx context.Context, addr string) (transport.Conn, error) {
		client, server := transport.Pipe()
		go func() {
			_, _ = rsocket.Accept(context.Background(), server, rsocket.ServerOptions{},
				func(*rsocket.SetupInfo, *rsocket.Conn) (rsocket.Handler, error) {
					return demo.Handler(nil, stats, false), nil
				})
		}()
		return client, nil
	}
	pools, err := pool.NewGroup(cfg, pool.Options{Dialer: dial})
	if err != nil {
		tb.Fatal(err)
	}
	pools.Start()
	tb.Cleanup(func() { _ = pools.Close() })
	srv, err := New(cfg, table, pools, Options{Metrics: set})
	if err != nil {
		tb.Fatal(err)
	}
	deadline := time.Now().Add(testTimeout)
	for !pools.Ready() {
		if time.Now().After(deadline) {
			tb.Fatal("pools not ready")
		}
		time.Sleep(time.Millisecond)
	}
	return &inProcess{srv: srv, pools: pools, st: srv.state.Load()}
}

// serveInMemory serves p on an in-memory listener until the test ends and returns a client of it that
// keeps at most conns connections.
func (p *inProcess) serveInMemory(tb testing.TB, conns int) *fasthttp.Client {
	ln := fasthttputil.NewInmemoryListener()
	go func() { _ = p.srv.Serve(ln) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = p.srv.Shutdown(ctx)
	})
	return &fasthttp.Client{Dial: func(string) (net.Conn, error) { return ln.Dial() }, MaxConnsPerHost: conns}
}

// BenchmarkRequestResponse drives POST /api/echo through the whole ingress: fasthttp client -> in-memory
// listener -> ingress -> pool -> rsocket over an in-memory pipe -> demo echo handler, and back.
func BenchmarkRequestResponse(b *testing.B) {
	p := newInProcess(b, metrics.NewSet())
	client := p.serveInMemory(b, 64)
	body := []byte(`{"hello":"rsgate","n":12345}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI("http://gateway/api/echo")
		req.Header.SetMethod("POST")
		req.Header.SetContentType("application/json")
		for pb.Next() {
			req.SetBody(body)
			if err := client.Do(req, resp); err != nil {
				b.Error(err)
				return
			}
			if resp.StatusCode() != 200 || len(resp.Body()) != len(body) {
				b.Errorf("status %d body %q", resp.StatusCode(), resp.Body())
				return
			}
		}
	})
}

// BenchmarkHandler calls the ingress handler directly (no HTTP parsing or sockets): the gateway's own cost
// plus the rsocket round trip over an in-memory pipe.
func BenchmarkHandler(b *testing.B) {
	p := newInProcess(b, metrics.NewSet())
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/api/meta/42")
	ctx.Request.Header.SetMethod("GET")
	ctx.Request.Header.Set("X-Trace", "abc")
	ctx.Request.Header.Set("Authorization", "Bearer tok")
	b.ReportAllocs()
	for b.Loop() {
		ctx.Response.Reset()
		p.srv.handle(&ctx)
		if ctx.Response.StatusCode() != 200 {
			b.Fatalf("status %d %q", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}

// BenchmarkAppendRequestMetadata builds routing + bearer + gateway entries.
func BenchmarkAppendRequestMetadata(b *testing.B) {
	rt, ps, mr := metadataFixture(b)
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = appendRequestMetadata(buf, rt, ps, mr); err != nil {
			b.Fatal(err)
		}
	}
}

// metadataFixture returns a route with a tag template and forwarded headers, matched parameters and a
// request with Authorization and the forwarded headers.
func metadataFixture(tb testing.TB) (*route, *mapping.Params, *metaRequest) {
	tb.Helper()
	cfg := newConfig(map[string]string{"b": "127.0.0.1:9"}, []routeSpec{{
		name: "users", method: "GET", path: "/api/users/{id}", backend: "b", interaction: mapping.InteractionRequestResponse,
		tag: "users.{id}", mutate: func(r *mapping.Route) { r.ForwardHeaders = []string{"X-Trace", "Accept"} },
	}})
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	table, err := mapping.Compile(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	st, err := compileState(cfg, table, nil)
	if err != nil {
		tb.Fatal(err)
	}
	ps := new(mapping.Params)
	cr, res := table.Match([]byte("GET"), []byte("/api/users/42"), ps)
	if res != mapping.MatchOK {
		tb.Fatal("no match")
	}
	var h fasthttp.RequestHeader
	h.SetMethod("GET")
	h.SetRequestURI("/api/users/42?x=1")
	h.Set("Authorization", "Bearer secret-token")
	h.Set("X-Trace", "abc")
	h.Add("Accept", "application/json")
	h.Add("Accept", "text/plain")
	return st.routes[cr.Index], ps, &metaRequest{method: []byte("GET"), target: []byte("/api/users/42?x=1"), header: &h}
}

// BenchmarkRequestResponseTCP is BenchmarkRequestResponse over real loopback sockets: fasthttp client ->
// TCP -> ingress -> pool (2 connections) -> TCP -> demo service.
func BenchmarkRequestResponseTCP(b *testing.B) {
	d, err := demo.Serve("127.0.0.1:0", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	cfg := newConfig(map[string]string{"demo": d.Addr().String()}, demoRoutes())
	cfg.Backends["demo"].Connections = 2
	benchEchoTCP(b, cfg)
}

// benchEchoTCP starts a gateway with cfg on loopback and drives POST /api/echo through it from 8 parallel
// clients over at most 64 connections.
func benchEchoTCP(b *testing.B, cfg *mapping.Config) {
	g := startGatewayB(b, cfg, Options{Metrics: metrics.NewSet()})
	client := &fasthttp.Client{MaxConnsPerHost: 64}
	url := "http://" + g.addr + "/api/echo"
	body := []byte(`{"hello":"rsgate","n":12345}`)
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI(url)
		req.Header.SetMethod("POST")
		for pb.Next() {
			req.SetBody(body)
			if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
				b.Errorf("%v %d", err, resp.StatusCode())
				return
			}
		}
	})
}
