//go:build !race

package ingress

import (
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
)

// TestSplitPickAllocs: choosing a split target allocates nothing, sticky or not.
func TestSplitPickAllocs(t *testing.T) {
	a, b := &route{name: "a"}, &route{name: "b"}
	for _, sp := range []*splitter{
		{targets: []*route{a, b}, ends: []uint64{90, 100}, total: 100, chosen: make([]*metrics.Counter, 2)},
		{targets: []*route{a, b}, ends: []uint64{90, 100}, total: 100, chosen: make([]*metrics.Counter, 2), header: "X-User-Id"},
		{targets: []*route{a, b}, ends: []uint64{90, 100}, total: 100, chosen: make([]*metrics.Counter, 2), cookie: "uid"},
	} {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.Set("X-User-Id", "user-1")
		ctx.Request.Header.Set("Cookie", "uid=user-1")
		if n := testing.AllocsPerRun(100, func() { _ = sp.pick(&ctx) }); n != 0 {
			t.Errorf("pick (header %q cookie %q) allocates %v times", sp.header, sp.cookie, n)
		}
	}
}
