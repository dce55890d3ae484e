package ingress

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rsgate/rsgate/mapping"
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

	var wg sync.WaitGroup
	res := make([]result, 2)
	wg.Add(1)
	go func() { defer wg.Done(); res[0] = g.do("GET", "/slow/400", "") }()
	waitFor(t, "the first request in flight", func() bool { return ra.l.Stats().InFlight == 1 })
	wg.Add(1)
	go func() { defer wg.Done(); res[1] = g.do("GET", "/slow/1", "") }()
	waitFor(t, "the second request queued", func() bool { return ra.l.Stats().Queued == 1 })
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
	wg.Wait()
	for i, r := range res {
		if r.status != 200 || r.body != "late" && !strings.Contains(r.body, "") {
			t.Fatalf("request %d: %d %q", i, r.status, r.body)
		}
	}
	if s := ra.l.Stats(); s.InFlight != 0 || s.Queued != 0 || s.Shed != 1 {
		t.Fatalf("limiter after: %+v", s)
	}

	// queue_timeout: a queued request gives up after 100 ms with 503 and says why.
	rs := g.routeAdm("short")
	done := make(chan result, 1)
	go func() { done <- g.do("GET", "/short/1500", "") }()
	waitFor(t, "the slow request in flight", func() bool { return rs.l.Stats().InFlight == 1 })
	r = g.do("GET", "/short/1", "")
	m = jsonError(t, r, 503, CodeOverloaded)
	if !strings.Contains(m["error"].(string), "queue timeout") || r.header.Get("Retry-After") == "" {
		t.Fatalf("queue timeout answer %q (Retry-After %q)", r.body, r.header.Get("Retry-After"))
	}
	if r := <-done; r.status != 200 {
		t.Fatalf("slow request: %d %q", r.status, r.body)
	}

	// Metrics: limit, in flight, queued (published by the controller) and shed, per route.
	waitFor(t, "the admission metrics", func() bool {
		var b bytes.Buffer
		g.set.WritePrometheus(&b)
		s := b.String()
		return strings.Contains(s, `rsgate_admission_shed_total{route="slow"} 1`) &&
			strings.Contains(s, `rsgate_admission_limit{route="slow"} 1`) &&
			strings.Contains(s, `rsgate_admission_inflight{route="users"} 0`) &&
			strings.Contains(s, `rsgate_admission_queued{route="short"} 0`) &&
			strings.Contains(s, `rsgate_admission_shed_total{route="short"} 1`)
	})
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
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := 0; i < 5; i++ { // background may fill half of the backend's limit
		wg.Add(1)
		go func() { defer wg.Done(); g.do("GET", "/bg/600", "") }()
	}
	waitFor(t, "5 background requests in flight", func() bool { return bl.Stats().InFlight == 5 })
	r := g.do("GET", "/bg/1", "")
	m := jsonError(t, r, 503, CodeOverloaded)
	if !strings.Contains(m["error"].(string), "backend demo") {
		t.Fatalf("background shed message %q", r.body)
	}
	if r := g.do("GET", "/crit/1", ""); r.status != 200 {
		t.Fatalf("critical request beside 5 background ones: %d %q", r.status, r.body)
	}
}
