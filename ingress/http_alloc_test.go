//go:build !race

package ingress

import "testing"

// TestHTTPProxyAllocs: a proxied request allocates nothing in the gateway's own code. The budget is what
// fasthttp itself takes: 4 objects for a streamed response body (HostClient with StreamResponseBody: the
// body reader and its three closures) and 1 for RequestCtx.Init, which only this test calls.
func TestHTTPProxyAllocs(t *testing.T) {
	f := newProxyFixture(t)
	f.once(t)
	if n := testing.AllocsPerRun(200, func() { f.once(t) }); n > 5 {
		t.Errorf("%v allocations per proxied request, want <= 5 (4 fasthttp streaming + 1 test Init)", n)
	}
}
