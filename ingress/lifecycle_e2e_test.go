package ingress

import (
	"context"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/mapping"
)

// TestBackendRestartUnderLoad: while clients keep sending, the backend goes away and comes back on the same
// address. Requests during the outage fail fast with 502/503, none hangs, and requests succeed again after
// the pool reconnected.
func TestBackendRestartUnderLoad(t *testing.T) {
	sp := newSpecial()
	b := startBackend(t, sp.handler)
	g := startGateway(t, newConfig(map[string]string{"sp": b.addr}, specialRoutes()), Options{})

	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		slowest  time.Duration
		phase    atomic.Int32 // 0 before the outage, 1 during, 2 after the restart
		okAfter  atomic.Int64
		failDur  atomic.Int64
	)
	stop := testutil.Repeat(t, 4, func() {
		start := time.Now()
		resp, err := httpClient.Post(g.base+"/echo", "application/json", strings.NewReader("{}"))
		d := time.Since(start)
		code := -1
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			code = resp.StatusCode
		}
		mu.Lock()
		statuses[code]++
		slowest = max(slowest, d)
		mu.Unlock()
		switch {
		case phase.Load() == 1 && code != 200:
			failDur.Add(1)
		case phase.Load() == 2 && code == 200:
			okAfter.Add(1)
		}
	})
	time.Sleep(50 * time.Millisecond)
	b.stop()
	phase.Store(1)
	testutil.Eventually(t, func() bool { return failDur.Load() >= 10 }, "requests to fail during the outage")
	b.start()
	phase.Store(2)
	deadline := time.Now().Add(testTimeout)
	for okAfter.Load() < 10 {
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("requests did not succeed after the restart: statuses %v, pool %+v", statuses, g.pools.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("statuses %v, slowest %v", statuses, slowest)
	for code := range statuses {
		if code != 200 && code != 502 && code != 503 {
			t.Fatalf("unexpected status %d (%d times); statuses %v", code, statuses[code], statuses)
		}
	}
	if slowest > 5*time.Second {
		t.Fatalf("a request took %v", slowest)
	}
}

// TestShutdownGraceful: a request in flight when Shutdown starts completes; Shutdown returns nil.
func TestShutdownGraceful(t *testing.T) {
	_, _, g := startSpecial(t, Options{})
	done := make(chan result, 1)
	go func() { done <- g.do("GET", "/sleep/200", "") }()
	testutil.Eventually(t, func() bool { return g.srv.InFlight() == 1 }, "the request to be in flight")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := g.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if r := <-done; r.status != 200 {
		t.Fatalf("in-flight request: %d %q", r.status, r.body)
	}
	if err := <-g.served; err != nil {
		t.Fatalf("Serve returned %v", err)
	}
}

// TestShutdownForced: a request and a stream that outlive the grace period are canceled upstream; the
// request gets 503, the stream an error line, and Shutdown returns the context's error.
func TestShutdownForced(t *testing.T) {
	sp, _, g := startSpecial(t, Options{})
	rrDone := make(chan result, 1)
	go func() { rrDone <- g.do("GET", "/hang-long", "") }()
	conn, r := openStream(t, g.addr, "/idle", "application/x-ndjson", false)
	defer conn.Close()
	testutil.Eventually(t, func() bool { return g.srv.InFlight() == 2 }, "the request and the stream to be in flight")

	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := g.srv.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Shutdown took %v", d)
	}
	rr := <-rrDone
	jsonError(t, rr, http.StatusServiceUnavailable, CodeShuttingDown)
	l, err := r.line()
	if err != nil || !strings.Contains(l, `"code":"SHUTTING_DOWN"`) {
		t.Fatalf("stream: %q, %v", l, err)
	}
	canceled := map[string]bool{}
	for len(canceled) < 2 {
		select {
		case tag := <-sp.canceled:
			canceled[tag] = true
		case <-time.After(testTimeout):
			t.Fatalf("backend saw CANCEL for %v only", canceled)
		}
	}
	if !canceled["hang"] || !canceled["idle"] {
		t.Fatalf("canceled %v", canceled)
	}
	if n := g.srv.InFlight(); n != 0 {
		t.Fatalf("%d calls still in flight", n)
	}
}

// TestUpdate swaps the route table: new routes serve at once, removed ones answer 404.
func TestUpdate(t *testing.T) {
	d := startDemo(t)
	backends := map[string]string{"demo": d.Addr().String()}
	routes := demoRoutes()
	g := startGateway(t, newConfig(backends, routes), Options{})
	if r := g.do("GET", "/api/users/1", ""); r.status != 200 {
		t.Fatalf("before: %d", r.status)
	}
	cfg := newConfig(backends, []routeSpec{
		{name: "people", method: "GET", path: "/api/people/{id}", backend: "demo", interaction: mapping.InteractionRequestResponse, tag: "users.{id}"},
	})
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	table, err := mapping.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.srv.Update(cfg, table); err != nil {
		t.Fatal(err)
	}
	if r := g.do("GET", "/api/people/9", ""); r.status != 200 || r.body != `{"id":"9"}` {
		t.Fatalf("new route: %d %q", r.status, r.body)
	}
	jsonError(t, g.do("GET", "/api/users/1", ""), 404, CodeNoRoute)
	rts := g.srv.state.Load().routes
	if len(rts) != 1 {
		t.Fatalf("served routes after Update: %d, want 1", len(rts))
	}
	if rts[0].name != "people" || rts[0].cr.Path != "/api/people/{id}" {
		t.Fatalf("served route after Update: %q %q", rts[0].name, rts[0].cr.Path)
	}
}

// ingressGoroutines counts goroutines running this package's stream, watch and scan code.
func ingressGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "ingress.(*streamer)") || strings.Contains(g, "ingress.watchDisconnect") ||
			strings.Contains(g, "ingress.(*calls).scan") {
			n++
		}
	}
	return n
}

// TestNoGoroutineLeaks: after streams that complete, fail, time out or lose their client, watched slow
// calls, and a shutdown, none of the package's goroutines is left.
func TestNoGoroutineLeaks(t *testing.T) {
	sp, _, g := startSpecial(t, Options{SlowCallWatch: 10 * time.Millisecond, SSEHeartbeat: 10 * time.Millisecond})
	g.do("GET", "/fail-after/3", "")
	g.do("GET", "/multiline", "")
	g.do("GET", "/idle-timeout", "")
	g.do("GET", "/sleep/60", "")
	jsonError(t, g.do("GET", "/stream-err/0x201", ""), 500, "APPLICATION_ERROR")
	conn, _ := openStream(t, g.addr, "/idle", "text/event-stream", false)
	testutil.Eventually(t, func() bool { return g.srv.InFlight() == 1 }, "the idle stream")
	if n := ingressGoroutines(); n < 2 { // writer, cancelOnDone, socket watch
		t.Fatalf("the goroutine count sees %d goroutines of a running stream", n)
	}
	_ = conn.Close()
	<-sp.canceled
	testutil.Eventually(t, func() bool { return g.srv.InFlight() == 0 }, "every call to end")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := g.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, func() bool { return ingressGoroutines() == 0 }, "the package's goroutines to exit")
}
