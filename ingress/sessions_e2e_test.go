package ingress

import (
	"testing"

	"github.com/rsgate/rsgate/internal/testutil"
)

// Idle WebSocket sessions are accounted apart from request-response in flight: 500 idle /ws/chat sockets
// on a backend with max_inflight 500 leave every HTTP route of that backend answering (issue 11: they used
// to take all 500 slots, and every request got 503).
func TestIdleSessionsDoNotExhaustRequestSlots(t *testing.T) {
	d := startDemo(t)
	cfg := newConfig(map[string]string{"demo": d.Addr().String()}, demoRoutes())
	cfg.Backends["demo"].MaxInflight = 500
	g := startGateway(t, cfg, Options{})
	n := 500
	for i := 0; i < n; i++ {
		dialWS(t, wsURL(g, "/ws/chat"), nil)
	}
	p := g.pools.Get("demo")
	testutil.Eventually(t, func() bool { return p.Sessions() == int64(n) }, "the sessions to be picked")
	for _, path := range []string{"/api/users/1", "/api/users/2"} {
		if r := g.do("GET", path, ""); r.status != 200 {
			t.Fatalf("GET %s beside %d idle WebSocket sessions: %d %q", path, n, r.status, r.body)
		}
	}
	if r := g.do("POST", "/api/log", `{}`); r.status != 202 {
		t.Fatalf("fire-and-forget beside idle sessions: %d %q", r.status, r.body)
	}
	// A stream is a session too.
	if r := g.do("GET", "/api/ticks/3", ""); r.status != 200 {
		t.Fatalf("stream beside idle sessions: %d", r.status)
	}
	if p.InFlight() < int64(n) {
		t.Fatalf("pool InFlight %d does not count the %d sessions (drains must wait for them)", p.InFlight(), n)
	}
}
