//go:build !race

package ingress

import (
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestAdmissionAllocs: the admission check of the hot path (route and backend slots taken and released)
// allocates nothing, and it is on by default (the in-process config sets no admission key).
func TestAdmissionAllocs(t *testing.T) {
	p := newInProcess(t, nil)
	var rt *route
	for _, r := range p.srv.state.Load().routes {
		if r.name == "users" {
			rt = r
		}
	}
	if rt == nil || rt.adm.r == nil || rt.adm.backend == nil {
		t.Fatalf("users route: admission not on by default (%+v)", rt.adm)
	}
	var ctx fasthttp.RequestCtx
	rq := acquireRequest()
	defer releaseRequest(rq)
	n := testing.AllocsPerRun(1000, func() {
		if !p.srv.admit(&ctx, rt, rq) {
			t.Fatal("not admitted")
		}
		rq.releaseAdmission(rt, time.Millisecond)
	})
	if n != 0 {
		t.Fatalf("admission: %v allocs per request, want 0", n)
	}
	if s := rt.adm.r.l.Stats(); s.InFlight != 0 {
		t.Fatalf("slots left taken: %+v", s)
	}
}
