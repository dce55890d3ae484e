package ingress

import (
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/frame"
	"github.com/rsgate/rsgate/rsocket/transport"
)

// startBreaking starts an RSocket instance that accepts connections and closes each one when a request
// arrives on it (a crashing instance behind a supervisor that restarts it at once).
func startBreaking(t *testing.T, seen *atomic.Int64) string {
	t.Helper()
	ln, err := transport.ListenTCP("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := &rsocket.Server{Acceptor: func(_ *rsocket.SetupInfo, c *rsocket.Conn) (rsocket.Handler, error) {
		return &rsocket.HandlerFuncs{RequestResponseFunc: func(rsocket.Payload, *rsocket.Stream) {
			seen.Add(1)
			go func() { _ = c.CloseWithError(frame.CodeConnectionError, "crash") }()
		}}, nil
	}}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// TestOutlierEjectsCrashingInstance: of three instances, one drops its connection on every request. The
// gateway ejects its address after outlier.consecutive_failures failures in a row: from then on every
// request is answered by the two healthy instances and /backends shows the address ejected.
func TestOutlierEjectsCrashingInstance(t *testing.T) {
	b := &flaky{answer: func(int64) error { return nil }}
	good1, good2 := startBackend(t, b.handler).addr, startBackend(t, b.handler).addr
	var crashes atomic.Int64
	bad := startBreaking(t, &crashes)
	cfg := newConfig(map[string]string{"f": good1}, []routeSpec{
		{name: "rr", method: "POST", path: "/rr", backend: "f", interaction: mapping.InteractionRequestResponse, tag: "x"},
	})
	bk := cfg.Backends["f"]
	bk.Addresses = []string{good1, bad, good2}
	bk.Balancer = mapping.BalancerP2C // the latency balancer alone keeps sending the crashing instance its share
	bk.Outlier = mapping.Outlier{ConsecutiveFailures: 3, EjectionTime: mapping.Duration(time.Minute), MaxEjectedPercent: 50}
	g := startGateway(t, cfg, Options{})
	testutil.Eventually(t, func() bool { return g.pools.Get("f").Stats().ReadyConns == 3 }, "3 connections")

	ejected := func() bool {
		for _, c := range g.pools.Get("f").Stats().Conns {
			if c.Addr == bad {
				return c.Ejected
			}
		}
		return false
	}
	// The crashing instance reconnects with backoff (10..50ms here): keep the requests coming for a while.
	for deadline := time.Now().Add(testTimeout); !ejected() && time.Now().Before(deadline); {
		g.do("POST", "/rr", "hi")
		time.Sleep(2 * time.Millisecond)
	}
	if !ejected() {
		t.Fatalf("crashing instance not ejected after %d crashes", crashes.Load())
	}
	before := crashes.Load()
	for i := 0; i < 100; i++ {
		if r := g.do("POST", "/rr", "hi"); r.status != 200 {
			t.Fatalf("request %d after the ejection: status %d %s", i, r.status, r.body)
		}
	}
	if n := crashes.Load() - before; n != 0 {
		t.Errorf("ejected instance got %d requests", n)
	}
	// /backends (the JSON of pool.Stats) carries the flag; the metrics are checked in pool's tests.
	raw, _ := json.Marshal(g.pools.Get("f").Stats())
	var st struct {
		Conns []struct {
			Addr    string `json:"addr"`
			Ejected bool   `json:"ejected"`
		} `json:"connections"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range st.Conns {
		found = found || c.Addr == bad && c.Ejected
	}
	if !found {
		t.Errorf("stats JSON does not show the address ejected: %s", raw)
	}
}

// TestHedgeSavesFailedFirstTry: the first try fails (REJECTED after a while) while its hedged copy is
// running; the client gets the copy's answer.
func TestHedgeSavesFailedFirstTry(t *testing.T) {
	var n atomic.Int64
	h := func() rsocket.Handler {
		return &rsocket.HandlerFuncs{RequestResponseFunc: func(req rsocket.Payload, s *rsocket.Stream) {
			data := append([]byte(nil), req.Data...)
			first := n.Add(1) == 1
			go func() {
				if first {
					time.Sleep(150 * time.Millisecond) // the copy starts at 30ms
					_ = s.Error(frame.CodeApplicationError, "first try fails")
					return
				}
				time.Sleep(200 * time.Millisecond) // the copy answers after the first try failed
				_ = s.Respond(rsocket.Payload{Data: data})
			}()
		}}
	}
	a, b := startBackend(t, h).addr, startBackend(t, h).addr
	cfg := newConfig(map[string]string{"f": a}, []routeSpec{
		{name: "rr", method: "POST", path: "/rr", backend: "f", interaction: mapping.InteractionRequestResponse, tag: "x",
			mutate: func(r *mapping.Route) {
				r.Idempotent = true
				r.Retry.Attempts = 1 // no retry: only the hedge can save it
				r.Hedge = mapping.Hedge{After: "30ms", Max: 1}
			}},
	})
	cfg.Backends["f"].Addresses = []string{a, b}
	g := startGateway(t, cfg, Options{})
	testutil.Eventually(t, func() bool { return g.pools.Get("f").Stats().ReadyConns == 2 }, "2 connections")
	if r := g.do("POST", "/rr", "hi"); r.status != 200 || r.body != "hi" {
		t.Fatalf("status %d body %q, want the hedged copy's answer", r.status, r.body)
	}
	if got := g.metricValue(`rsgate_hedge_wins_total{route="rr"}`); got != 1 {
		t.Errorf("rsgate_hedge_wins_total = %v, want 1", got)
	}
	if n.Load() != 2 {
		t.Errorf("backend saw %d requests, want 2", n.Load())
	}
}

// TestSlowInstanceAmongThree: three instances, one answering after 200ms. With the weighted balancer
// (the default) almost no client request waits for the slow one; p2c is run beside it for the log.
func TestSlowInstanceAmongThree(t *testing.T) {
	answer := func(delay time.Duration) func() rsocket.Handler {
		return func() rsocket.Handler {
			return &rsocket.HandlerFuncs{RequestResponseFunc: func(req rsocket.Payload, s *rsocket.Stream) {
				data := append([]byte(nil), req.Data...)
				if delay == 0 {
					_ = s.Respond(rsocket.Payload{Data: data})
					return
				}
				time.AfterFunc(delay, func() { _ = s.Respond(rsocket.Payload{Data: data}) })
			}}
		}
	}
	addrs := []string{startBackend(t, answer(0)).addr, startBackend(t, answer(200*time.Millisecond)).addr, startBackend(t, answer(0)).addr}
	run := func(balancer string) int {
		cfg := newConfig(map[string]string{"f": addrs[0]}, []routeSpec{
			{name: "rr", method: "POST", path: "/rr", backend: "f", interaction: mapping.InteractionRequestResponse, tag: "x"},
		})
		cfg.Backends["f"].Addresses = addrs
		cfg.Backends["f"].Connections = 2
		cfg.Backends["f"].Balancer = balancer
		g := startGateway(t, cfg, Options{})
		testutil.Eventually(t, func() bool { return g.pools.Get("f").Stats().ReadyConns == 6 }, "6 connections")
		var slow atomic.Int64
		done := make(chan struct{})
		for c := 0; c < 4; c++ {
			go func() {
				defer func() { done <- struct{}{} }()
				for i := 0; i < 75; i++ {
					start := time.Now()
					if r := g.do("POST", "/rr", "hi"); r.status != 200 {
						t.Errorf("status %d", r.status)
						return
					}
					if time.Since(start) >= 190*time.Millisecond {
						slow.Add(1)
					}
				}
			}()
		}
		for c := 0; c < 4; c++ {
			<-done
		}
		return int(slow.Load())
	}
	weighted, p2c := run(mapping.BalancerWeighted), run(mapping.BalancerP2C)
	t.Logf("requests answered by the slow instance (of 300): weighted %d, p2c %d", weighted, p2c)
	if weighted > 9 {
		t.Errorf("weighted balancer: %d of 300 requests waited for the slow instance, want at most 9 (3%%)", weighted)
	}
}
