//go:build !race

package ingress

import (
	"context"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket"

	"github.com/valyala/fasthttp"
)

func TestAppendRequestMetadataAllocs(t *testing.T) {
	rt, ps, mr := metadataFixture(t)
	buf := make([]byte, 0, 512)
	n := testing.AllocsPerRun(200, func() {
		var err error
		if buf, err = appendRequestMetadata(buf, rt, ps, mr); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Fatalf("appendRequestMetadata: %v allocs per run, want 0", n)
	}
}

func TestJSONErrorAllocs(t *testing.T) {
	var ctx fasthttp.RequestCtx
	path := []byte("/some/path")
	// Warm the response buffers and the scratch pool.
	writeJSONError(&ctx, 404, strNoRoute, CodeNoRoute, path)
	n := testing.AllocsPerRun(200, func() {
		writeJSONError(&ctx, 404, strNoRoute, CodeNoRoute, path)
	})
	if n != 0 {
		t.Fatalf("writeJSONError: %v allocs per run, want 0", n)
	}
}

// TestHandlerAllocs measures the whole request-response handler (match, metadata, pool pick, rsocket call
// over an in-memory pipe to the demo backend, answer) and the 404 path. The budget covers the rsocket core
// and the backend side running in the same process; the ingress itself allocates nothing per request.
func TestHandlerAllocs(t *testing.T) {
	p := newInProcess(t, metrics.NewSet())
	var ctx fasthttp.RequestCtx
	run := func(method, uri string) float64 {
		ctx.Request.Reset()
		ctx.Request.SetRequestURI(uri)
		ctx.Request.Header.SetMethod(method)
		ctx.Request.Header.Set("X-Trace", "abc")
		ctx.Request.Header.Set("Authorization", "Bearer tok")
		for i := 0; i < 100; i++ { // warm pools
			ctx.Response.Reset()
			p.srv.handle(&ctx)
		}
		return testing.AllocsPerRun(500, func() {
			ctx.Response.Reset()
			p.srv.handle(&ctx)
		})
	}
	if n := run("GET", "/nope"); n != 0 {
		t.Fatalf("404: %v allocs per request, want 0", n)
	}
	n := run("GET", "/api/meta/42")
	if ctx.Response.StatusCode() != 200 {
		t.Fatalf("status %d %q", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	// Baseline: the same rsocket call made directly on a pool connection, without the ingress.
	md, err := appendRequestMetadata(nil, p.st.routes[p.st.table.Route("meta-users").Index], paramsFor(t, p, "/api/meta/42"),
		&metaRequest{method: ctx.Method(), target: ctx.RequestURI(), header: &ctx.Request.Header})
	if err != nil {
		t.Fatal(err)
	}
	pl := p.pools.Get("demo")
	base := testing.AllocsPerRun(500, func() {
		m, err := pl.Pick()
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		msg, _, err := m.Conn().RequestResponse(context.Background(), rsocket.Payload{Metadata: md})
		m.Done(start, err)
		if err != nil {
			t.Fatal(err)
		}
		msg.Release()
	})
	t.Logf("request-response through the handler: %v allocs per request; the rsocket call alone: %v", n, base)
	if n > base {
		t.Fatalf("the ingress adds %v allocs per request-response, want 0", n-base)
	}
}

func paramsFor(t *testing.T, p *inProcess, path string) *mapping.Params {
	ps := new(mapping.Params)
	if _, res := p.st.table.Match([]byte("GET"), []byte(path), ps); res != mapping.MatchOK {
		t.Fatalf("no match for %s", path)
	}
	return ps
}
