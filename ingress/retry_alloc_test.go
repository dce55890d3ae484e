//go:build !race

package ingress

import (
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
)

// TestHedgedRouteAllocs: a hedged route whose answers come before hedge.after (the common case) allocates
// no more per request than a plain one: the hedger and its timer are pooled.
func TestHedgedRouteAllocs(t *testing.T) {
	p := newInProcess(t, metrics.NewSet())
	var ctx fasthttp.RequestCtx
	run := func() float64 {
		ctx.Request.Reset()
		ctx.Request.SetRequestURI("/api/users/42")
		ctx.Request.Header.SetMethod("GET")
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
	plain := run()
	rt := p.st.routes[p.st.table.Route("users").Index]
	if rt.retry == nil {
		t.Fatal("users route has no retry policy (retries are on by default)")
	}
	rt.retry.hedges, rt.retry.hedgeP95, rt.retry.hedgeAfter = 1, false, 10*time.Second
	hedged := run()
	t.Logf("allocs per request: plain %v, hedged (no hedge sent) %v", plain, hedged)
	if hedged > plain {
		t.Errorf("a hedged route adds %v allocs per request", hedged-plain)
	}
}
