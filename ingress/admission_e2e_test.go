package ingress

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/admission"
	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/pool"
)

// admissionRoute is a slow request-response route with the given admission section.
func admissionRoute(name, path string, a mapping.Admission, prio string) routeSpec {
	return routeSpec{name: name, method: "GET", path: path, backend: "demo", interaction: mapping.InteractionRequestResponse,
		tag: "slow.{ms}", timeout: 10 * time.Second, mutate: func(r *mapping.Route) {
			r.Admission = a
			r.Priority = prio
		}}
}

func (g *gateway) routeAdm(name string) *routeAdmission {
	for _, rt := range g.srv.state.Load().routes {
		if rt.name == name {
			return rt.adm.r
		}
	}
	g.t.Fatalf("no route %q", name)
	return nil
}

func TestAdmissionQueueThenShed(t *testing.T) {
	d := startDemo(t)
	a := mapping.Admission{Mode: mapping.AdmissionFixed, MaxConcurrency: 1, MinConcurrency: 1, Queue: 1, QueueTimeout: mapping.Duration(5 * time.Second)}
	short := a
	short.QueueTimeout = mapping.Duration(100 * time.Millisecond)
	g := startGateway(t, newConfig(map[string]string{"demo": d.Addr().String()}, []routeSpec{
		admissionRoute("slow", "/slow/{ms}", a, mapping.PriorityCritical),
		admissionRoute("short", "/short/{ms}", short, mapping.PriorityCritical),
		{name: "users", method: "GET", path: "/api/users/{id}", backend: "demo", interaction: mapping.InteractionRequestResponse, tag: "users.{id}"},
	}), Options{})
	ra := g.routeAdm("slow")

	// Hold the one slot, as a long request would: the test decides when it ends.
	if err := ra.l.Acquire(admission.Critical, time.Time{}); err != nil {
		t.Fatal(err)
	}
	queued := make(chan result, 1)
	go func() { queued <- g.do("GET", "/slow/1", "") }()
	testutil.Eventually(t, func() bool { return ra.l.Stats().Queued == 1 }, "the second request queued")
	// Limit 1 in flight, queue 1 full: the third is shed at once.
	r := g.do("GET", "/slow/1", "")
	m := jsonError(t, r, 503, CodeOverloaded)
	if r.header.Get("Retry-After") != "1" || !strings.Contains(m["error"].(string), "concurrency limit") {
		t.Fatalf("shed answer: Retry-After %q, body %q", r.header.Get("Retry-After"), r.body)
	}
	// Another route is not affected by this route's limit.
	if r := g.do("GET", "/api/users/7", ""); r.status != 200 {
		t.Fatalf("other route: %d %q", r.status, r.body)
	}
	ra.l.Release(-1) // the slot goes to the queued request
	if r := <-queued; r.status != 200 {
		t.Fatalf("queued request: %d %q", r.status, r.body)
	}
	if s := ra.l.Stats(); s.InFlight != 0 || s.Queued != 0 || s.Shed != 1 {
		t.Fatalf("limiter after: %+v", s)
	}

	// queue_timeout: a queued request gives up after 100 ms with 503 and says why.
	rs := g.routeAdm("short")
	if err := rs.l.Acquire(admission.Critical, time.Time{}); err != nil {
		t.Fatal(err)
	}
	r = g.do("GET", "/short/1", "")
	m = jsonError(t, r, 503, CodeOverloaded)
	if !strings.Contains(m["error"].(string), "queue timeout") || r.header.Get("Retry-After") == "" {
		t.Fatalf("queue timeout answer %q (Retry-After %q)", r.body, r.header.Get("Retry-After"))
	}
	rs.l.Release(-1)
	if r := g.do("GET", "/short/1", ""); r.status != 200 {
		t.Fatalf("after the slot freed: %d %q", r.status, r.body)
	}

	// Metrics: limit, in flight, queued (published by the controller) and shed, per route.
	testutil.Eventually(t, func() bool {
		var b bytes.Buffer
		g.set.WritePrometheus(&b)
		s := b.String()
		return strings.Contains(s, `rsgate_admission_shed_total{route="slow"} 1`) &&
			strings.Contains(s, `rsgate_admission_limit{route="slow"} 1`) &&
			strings.Contains(s, `rsgate_admission_inflight{route="users"} 0`) &&
			strings.Contains(s, `rsgate_admission_queued{route="short"} 0`) &&
			strings.Contains(s, `rsgate_admission_shed_total{route="short"} 1`)
	}, "the admission metrics")

}

// The route timeout bounds the queue wait even when queue_timeout is longer.
func TestAdmissionQueueStopsAtRouteTimeout(t *testing.T) {
	d := startDemo(t)
	a := mapping.Admission{Mode: mapping.AdmissionFixed, MaxConcurrency: 1, MinConcurrency: 1, Queue: 5, QueueTimeout: mapping.Duration(time.Minute)}
	rs := admissionRoute("slow", "/slow/{ms}", a, mapping.PriorityNormal)
	rs.timeout = 300 * time.Millisecond
	g := startGateway(t, newConfig(map[string]string{"demo": d.Addr().String()}, []routeSpec{rs}), Options{})
	ra := g.routeAdm("slow")
	// Hold the one slot, as a long request would.
	if err := ra.l.Acquire(0, time.Time{}); err != nil {
		t.Fatal(err)
	}
	defer ra.l.Release(-1)
	start := time.Now()
	r := g.do("GET", "/slow/1", "")
	jsonError(t, r, 503, CodeOverloaded)
	if el := time.Since(start); el > 20*time.Second {
		t.Fatalf("queued request waited %v: the route timeout (300ms) must bound it", el)
	}
}

// When the backend's capacity is short, background requests are shed while critical ones still pass.
func TestBackendLimitShedsBackgroundFirst(t *testing.T) {
	d := startDemo(t)
	off := mapping.Admission{Mode: mapping.AdmissionOff, MaxConcurrency: 1, MinConcurrency: 1}
	cfg := newConfig(map[string]string{"demo": d.Addr().String()}, []routeSpec{
		admissionRoute("bg", "/bg/{ms}", off, mapping.PriorityBackground),
		admissionRoute("crit", "/crit/{ms}", off, mapping.PriorityCritical),
	})
	cfg.Limits.Admission = mapping.Admission{Mode: mapping.AdmissionFixed, MaxConcurrency: 10, MinConcurrency: 1, Queue: 0}
	cfg.Backends["demo"].MaxInflight = 10
	g := startGateway(t, cfg, Options{})
	bl := g.srv.state.Load().adm.backends["demo"].l
	for i := 0; i < 5; i++ { // background requests in flight (held here): half of the backend's limit
		if !bl.TryAcquire(admission.Background) {
			t.Fatalf("background slot %d refused", i)
		}
	}
	defer func() {
		for i := 0; i < 5; i++ {
			bl.Release(-1)
		}
	}()
	r := g.do("GET", "/bg/1", "")
	m := jsonError(t, r, 503, CodeOverloaded)
	if !strings.Contains(m["error"].(string), "backend demo") {
		t.Fatalf("background shed message %q", r.body)
	}
	if r := g.do("GET", "/crit/1", ""); r.status != 200 {
		t.Fatalf("critical request beside 5 background ones: %d %q", r.status, r.body)
	}
}

// A saturated slow route sheds its excess (503 OVERLOADED) while a fast route beside it, on the same
// backend, keeps answering: the slow route's limit and queue bound what it can take from the gateway.
func TestSaturatedSlowRouteDoesNotStarveFastRoute(t *testing.T) {
	d := startDemo(t)
	a := mapping.Admission{Mode: mapping.AdmissionFixed, MaxConcurrency: 4, MinConcurrency: 1, Queue: 4, QueueTimeout: mapping.Duration(50 * time.Millisecond)}
	g := startGateway(t, newConfig(map[string]string{"demo": d.Addr().String()}, []routeSpec{
		admissionRoute("slow", "/slow/{ms}", a, mapping.PriorityNormal),
		{name: "users", method: "GET", path: "/api/users/{id}", backend: "demo", interaction: mapping.InteractionRequestResponse, tag: "users.{id}"},
	}), Options{})
	ra := g.routeAdm("slow")
	var mu sync.Mutex
	statuses := map[int]int{}
	stop := testutil.Repeat(t, 32, func() { // closed-loop clients on the slow route, far over its limit
		r := g.do("GET", "/slow/100", "")
		mu.Lock()
		statuses[r.status]++
		mu.Unlock()
		if r.status == 503 && r.header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
	})
	testutil.Eventually(t, func() bool { return ra.l.Stats().Shed > 0 }, "the slow route to shed")
	for i := 0; i < 50; i++ {
		if r := g.do("GET", "/api/users/1", ""); r.status != 200 {
			t.Fatalf("fast route request %d beside the saturated slow route: %d %q", i, r.status, r.body)
		}
		if s := ra.l.Stats(); s.InFlight > 4 || s.Queued > 4 {
			t.Fatalf("slow route over its limit or queue: %+v", s)
		}
	}
	stop()
	if statuses[200] == 0 || statuses[503] == 0 {
		t.Fatalf("slow route statuses %v: want both served and shed requests", statuses)
	}
}

// Under CPU pressure, with several routes busy, a saturated background route shrinks before a saturated
// normal one and a critical one keeps its limit (the controller step of admissionLoop).
func TestPressureShedsByPriority(t *testing.T) {
	a := mapping.Admission{Mode: mapping.AdmissionAdaptive, MaxConcurrency: 100, MinConcurrency: 2, Queue: 10, QueueTimeout: mapping.Duration(time.Second)}
	cfg := newConfig(map[string]string{"demo": "127.0.0.1:9"}, []routeSpec{
		admissionRoute("bg", "/bg/{ms}", a, mapping.PriorityBackground),
		admissionRoute("nm", "/nm/{ms}", a, mapping.PriorityNormal),
		admissionRoute("cr", "/cr/{ms}", a, mapping.PriorityCritical),
	})
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	table, err := mapping.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pools, err := pool.NewGroup(cfg, pool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pools.Close()
	srv, err := New(cfg, table, pools, Options{}) // not serving: no controller loop runs beside the test
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{t: t, srv: srv}
	bg, nm, cr := g.routeAdm("bg").l, g.routeAdm("nm").l, g.routeAdm("cr").l
	for _, l := range []*admission.Limiter{bg, nm, cr} { // saturate each (as held requests would)
		for l.TryAcquire(admission.Critical) {
		}
	}
	b0, n0, c0 := bg.Limit(), nm.Limit(), cr.Limit()
	g.srv.adjustAdmission(1)
	if !(bg.Limit() < nm.Limit() && nm.Limit() < n0 && cr.Limit() == c0) {
		t.Fatalf("pressure: background %d->%d, normal %d->%d, critical %d->%d", b0, bg.Limit(), n0, nm.Limit(), c0, cr.Limit())
	}
	for _, l := range []*admission.Limiter{bg, nm, cr} {
		for l.Stats().InFlight > 0 {
			l.Release(-1)
		}
	}
}
