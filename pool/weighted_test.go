package pool

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/internal/testutil/rstest"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/frame"
)

// readyPipePool starts a pool over n in-memory addresses (connections per address) and waits for it.
func readyPipePool(t *testing.T, bk *mapping.Backend, opts Options) *Pool {
	t.Helper()
	if opts.Dialer == nil {
		opts.Dialer = pipeDialer(t, rstest.EchoHandler(), nil)
	}
	p := newPool(t, bk, opts)
	p.Start()
	want := len(bk.Addresses) * bk.Connections
	testutil.EventuallyWithin(t, 5*time.Second, func() bool { return readyConns(p) == want }, "ready connections")
	return p
}

// TestQuantileSketch: the streaming estimates settle near the true quantiles of a skewed distribution.
func TestQuantileSketch(t *testing.T) {
	var q quantiles
	q.reset()
	// 1..100 ms, uniformly, in a fixed shuffled order.
	for round := 0; round < 200; round++ {
		for i := 0; i < 100; i++ {
			v := float64((i*37)%100+1) * 1e6
			q.observe(v, false, 0.99)
		}
	}
	check := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 0.15*want {
			t.Errorf("%s = %.1fms, want about %.1fms", name, got/1e6, want/1e6)
		}
	}
	check("low (q=0.2)", math.Float64frombits(q.low.Load()), 20e6)
	check("median", math.Float64frombits(q.median.Load()), 50e6)
	check("high (q=0.8)", math.Float64frombits(q.high.Load()), 80e6)
	if s := math.Float64frombits(q.success.Load()); s != 1 {
		t.Errorf("success = %v, want 1", s)
	}
	q.observe(0, true, 0.5)
	if s := math.Float64frombits(q.success.Load()); s != 0.5 {
		t.Errorf("success after a failure = %v, want 0.5", s)
	}
}

// TestWeightedPrefersFastAndAnswering: of two connections, the one whose answers are 10x slower, or whose
// requests fail, loses the comparison; a new connection with a request outstanding carries the startup
// penalty.
func TestWeightedPrefersFastAndAnswering(t *testing.T) {
	clk := &testutil.Clock{}
	p := newPool(t, testBackend("w", "127.0.0.1:1"), Options{Now: clk.Now})
	fast, slow := &Member{pool: p}, &Member{pool: p}
	fast.quant.reset()
	slow.quant.reset()
	feed := func(m *Member, d time.Duration, err error) {
		m.outstanding.Add(1)
		m.Done(clk.Now().Add(-d), err)
	}
	for i := 0; i < 50; i++ {
		feed(fast, time.Millisecond, nil)
		feed(slow, 10*time.Millisecond, nil)
		clk.Advance(time.Millisecond)
	}
	if better(fast, slow) != fast || better(slow, fast) != fast {
		t.Fatal("the 10x slower connection won")
	}
	// Outstanding requests make the fast one lose eventually: 1ms x 20 > 10ms x 1.
	fast.outstanding.Store(20)
	if better(fast, slow) != slow {
		t.Error("20 requests waiting on the fast connection, and it still won against an idle 10ms one")
	}
	fast.outstanding.Store(0)

	// A connection whose requests fail loses against an answering one of the same speed.
	failing := &Member{pool: p}
	failing.quant.reset()
	for i := 0; i < 50; i++ {
		feed(failing, time.Millisecond, nil)
	}
	for i := 0; i < 20; i++ {
		clk.Advance(100 * time.Millisecond)
		feed(failing, time.Millisecond, rsocket.ErrClosed)
		feed(fast, time.Millisecond, nil)
	}
	if better(failing, fast) != fast {
		t.Error("a failing connection won against an answering one")
	}

	// Startup penalty: a fresh connection takes a request, then waits for its answer.
	fresh := &Member{pool: p}
	fresh.quant.reset()
	if better(fast, fresh) != fresh {
		t.Error("an idle new connection should be tried")
	}
	fresh.outstanding.Store(1)
	if better(fresh, slow) != slow {
		t.Error("a new connection with a request outstanding and no answer yet should carry the startup penalty")
	}
}

// TestWeightedSpreadsAwayFromSlowAddress: with one of three addresses 10x slower, Pick sends it only a
// small share of the requests (the P2C pair never consists of that address alone).
func TestWeightedSpreadsAwayFromSlowAddress(t *testing.T) {
	clk := &testutil.Clock{}
	bk := testBackend("spread3", "10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1")
	bk.Connections = 2
	p := readyPipePool(t, bk, Options{Now: clk.Now})
	lat := func(m *Member) time.Duration {
		if strings.HasPrefix(m.Addr(), "10.0.0.3") {
			return 10 * time.Millisecond
		}
		return time.Millisecond
	}
	slowPicks := 0
	const n = 3000
	for i := 0; i < n; i++ {
		m, err := p.Pick()
		if err != nil {
			t.Fatal(err)
		}
		if i >= 300 && lat(m) > time.Millisecond { // after warm-up
			slowPicks++
		}
		clk.Advance(100 * time.Microsecond)
		m.Done(clk.Now().Add(-lat(m)), nil)
	}
	if share := float64(slowPicks) / (n - 300); share > 0.01 {
		t.Errorf("slow address got %.2f%% of the picks, want under 1%%", share*100)
	}
}

// TestOutlierEjectionAndProbe: consecutive failures eject an address; after the ejection time one probe
// goes there; a successful probe brings it back; a failed probe ejects it again. Metrics count both.
func TestOutlierEjectionAndProbe(t *testing.T) {
	set := metrics.NewSet()
	bk := testBackend("eject", "10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1")
	bk.Outlier = mapping.Outlier{ConsecutiveFailures: 3, EjectionTime: mapping.Duration(50 * time.Millisecond), MaxEjectedPercent: 50}
	p := readyPipePool(t, bk, Options{Metrics: set})
	bad := "10.0.0.2:1"
	fail := errors.New("transport: broken pipe")
	// Requests to the bad address fail; others answer. Keep going until it is ejected.
	ejected := func() bool {
		for _, c := range p.Stats().Conns {
			if c.Addr == bad {
				return c.Ejected
			}
		}
		return false
	}
	for i := 0; i < 1000 && !ejected(); i++ {
		m, err := p.Pick()
		if err != nil {
			t.Fatal(err)
		}
		if m.Addr() == bad {
			m.Done(time.Now(), fail)
		} else {
			m.Done(time.Now(), nil)
		}
	}
	if !ejected() {
		t.Fatal("address with only failures was not ejected")
	}
	// While ejected, Pick never chooses it; after the ejection time exactly one probe goes there.
	nextProbe := func() *Member {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			m, err := p.Pick()
			if err != nil {
				t.Fatal(err)
			}
			if m.Addr() != bad {
				m.Done(time.Now(), nil)
				time.Sleep(time.Millisecond)
				continue
			}
			if !m.probe.Load() {
				t.Fatal("Pick chose an ejected address outside a probe")
			}
			// Only one probe at a time: the next picks avoid the address.
			for k := 0; k < 50; k++ {
				o, _ := p.Pick()
				if o.Addr() == bad {
					t.Fatal("second request sent to an address whose probe is in flight")
				}
				o.Done(time.Now(), nil)
			}
			return m
		}
		t.Fatal("no probe was sent to the ejected address")
		return nil
	}
	nextProbe().Done(time.Now(), fail) // failed probe: ejected again (for 2 x 50ms)
	if !ejected() {
		t.Fatal("failed probe did not eject the address again")
	}
	nextProbe().Done(time.Now(), nil)
	if ejected() {
		t.Fatal("successful probe did not bring the address back")
	}
	var sb strings.Builder
	set.WritePrometheus(&sb)
	out := sb.String()
	for _, want := range []string{
		`rsgate_backend_ejections_total{backend="eject"} 2`,
		`rsgate_backend_ejection_recoveries_total{backend="eject"} 1`,
		`rsgate_backend_ejected{backend="eject"} 0`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q:\n%s", want, out)
		}
	}
}

// TestOutlierCapAndNonFailures: max_ejected_percent bounds the ejected addresses; REJECTED, cancellations
// and nil (an ERROR answer the ingress does not count) never eject.
func TestOutlierCapAndNonFailures(t *testing.T) {
	bk := testBackend("cap", "10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1", "10.0.0.4:1")
	bk.Outlier = mapping.Outlier{ConsecutiveFailures: 2, EjectionTime: mapping.Duration(time.Hour), MaxEjectedPercent: 50}
	p := readyPipePool(t, bk, Options{})
	rejected := &rsocket.Error{Code: frame.CodeRejected, Message: "busy"}
	for i := 0; i < 100; i++ {
		m, _ := p.Pick()
		m.Done(time.Now(), rejected)
	}
	if _, n := p.endpointCounts(); n != 0 {
		t.Fatalf("%d addresses ejected for REJECTED answers", n)
	}
	for i := 0; i < 400; i++ {
		m, err := p.Pick()
		if err != nil {
			t.Fatal(err)
		}
		m.Done(time.Now(), rsocket.ErrClosed)
	}
	if _, n := p.endpointCounts(); n != 2 {
		t.Fatalf("%d of 4 addresses ejected with max_ejected_percent 50, want 2", n)
	}
	// Every address failing: the two left stay in rotation, Pick still answers.
	if _, err := p.Pick(); err != nil {
		t.Fatalf("Pick with half the addresses ejected: %v", err)
	}
}

// TestOutlierAllEjectedFallsBack: when every available connection is ejected, Pick uses them.
func TestOutlierAllEjectedFallsBack(t *testing.T) {
	bk := testBackend("all", "10.0.0.1:1", "10.0.0.2:1")
	bk.Outlier = mapping.Outlier{ConsecutiveFailures: 1, EjectionTime: mapping.Duration(time.Hour), MaxEjectedPercent: 100}
	p := readyPipePool(t, bk, Options{})
	for i := 0; i < 50; i++ {
		m, err := p.Pick()
		if err != nil {
			t.Fatal(err)
		}
		m.Done(time.Now(), rsocket.ErrClosed)
	}
	if _, n := p.endpointCounts(); n != 2 {
		t.Fatalf("ejected %d of 2", n)
	}
	m, err := p.Pick()
	if err != nil {
		t.Fatalf("Pick with every address ejected: %v (want a fallback to an ejected one)", err)
	}
	m.Done(time.Now(), nil)
}

// TestBalancerP2CStillAvailable: balancer p2c keeps the peak-EWMA comparison.
func TestBalancerP2CStillAvailable(t *testing.T) {
	bk := testBackend("p2c", "10.0.0.1:1", "10.0.0.2:1")
	bk.Balancer = mapping.BalancerP2C
	p := readyPipePool(t, bk, Options{})
	if p.weighted {
		t.Fatal("balancer p2c built a weighted pool")
	}
	m, err := p.Pick()
	if err != nil {
		t.Fatal(err)
	}
	m.Done(time.Now(), nil)
	bk.Balancer = "random"
	if _, err := New(bk, Options{}); err == nil || !strings.Contains(err.Error(), "balancer") {
		t.Fatalf("New with balancer random: %v", err)
	}
}

// TestPickOtherPrefersAnotherAddress: a retry or hedge goes to another address than the failed try's
// whenever one is available, and the reservations of the discarded picks are given back.
func TestPickOtherPrefersAnotherAddress(t *testing.T) {
	bk := testBackend("other", "10.0.0.1:1", "10.0.0.2:1")
	bk.Connections = 2
	p := readyPipePool(t, bk, Options{})
	for i := 0; i < 200; i++ {
		first, err := p.Pick()
		if err != nil {
			t.Fatal(err)
		}
		other, err := p.PickOther(first)
		if err != nil {
			t.Fatal(err)
		}
		if other.ep == first.ep {
			t.Fatalf("PickOther chose the same address %s (pick %d)", other.Addr(), i)
		}
		first.Done(time.Now(), nil)
		other.Done(time.Now(), nil)
	}
	if n := p.InFlight(); n != 0 {
		t.Fatalf("InFlight = %d after every pick was Done: PickOther leaked a reservation", n)
	}
	for _, m := range *p.members.Load() {
		if m.outstanding.Load() != 0 {
			t.Fatalf("member %s slot %d has %d outstanding", m.Addr(), m.slot, m.outstanding.Load())
		}
	}
	// One address: another connection of it, else the same one.
	one := readyPipePool(t, testBackend("one", "10.0.0.9:1"), Options{})
	a, _ := one.Pick()
	b, err := one.PickOther(a)
	if err != nil || b != a {
		t.Fatalf("PickOther on a single connection: %v, %v", b, err)
	}
	a.Done(time.Now(), nil)
	b.Done(time.Now(), nil)
	if n := one.InFlight(); n != 0 {
		t.Fatalf("InFlight = %d", n)
	}
}
