//go:build !race

package ingress

import (
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/rsgate/rsgate/rsocket/extension"
)

// Building request metadata with a traceparent header allocates nothing either (the zipkin entry is
// written into the pooled buffer).
func TestAppendRequestMetadataTraceparentAllocs(t *testing.T) {
	rt, ps, mr := metadataFixture(t)
	mr.header.Set("Traceparent", testTraceparent)
	buf := make([]byte, 0, 512)
	n := testing.AllocsPerRun(200, func() {
		var err error
		if buf, err = appendRequestMetadata(buf, rt, ps, mr); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Fatalf("appendRequestMetadata with traceparent: %v allocs per run, want 0", n)
	}
	if _, ok := extension.FindCompositeID(buf, extension.IDTracingZipkin); !ok {
		t.Fatal("no tracing entry in the metadata")
	}
}

// A request-response with a traceparent costs the handler no more allocations than one without.
func TestHandlerTraceparentAllocs(t *testing.T) {
	p := newInProcess(t, metrics.NewSet())
	var ctx fasthttp.RequestCtx
	run := func(traceparent string) float64 {
		ctx.Request.Reset()
		ctx.Request.SetRequestURI("/api/meta/42")
		ctx.Request.Header.SetMethod("GET")
		ctx.Request.Header.Set("X-Trace", "abc")
		if traceparent != "" {
			ctx.Request.Header.Set("Traceparent", traceparent)
		}
		for i := 0; i < 100; i++ {
			ctx.Response.Reset()
			p.srv.handle(&ctx)
		}
		n := testing.AllocsPerRun(500, func() {
			ctx.Response.Reset()
			p.srv.handle(&ctx)
		})
		if ctx.Response.StatusCode() != 200 {
			t.Fatalf("status %d %q", ctx.Response.StatusCode(), ctx.Response.Body())
		}
		return n
	}
	without := run("")
	with := run(testTraceparent)
	t.Logf("request-response: %v allocs without traceparent, %v with", without, with)
	if with > without {
		t.Fatalf("a traceparent adds %v allocs per request-response, want 0", with-without)
	}
}
