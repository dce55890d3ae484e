package pool

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/internal/testutil/rstest"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/frame"
	"github.com/rsgate/rsgate/rsocket/transport"
)

func TestNewRejectsBadBackends(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(b *mapping.Backend)
		want error
	}{
		{"http transport", func(b *mapping.Backend) {
			b.Transport = mapping.TransportHTTP
			b.Addresses = []string{"http://127.0.0.1:1"}
		}, ErrUnsupportedTransport},
		{"no address", func(b *mapping.Backend) { b.Addresses = nil }, nil},
		{"url for tcp", func(b *mapping.Backend) { b.Addresses = []string{"ws://127.0.0.1:1/"} }, nil},
		{"missing port", func(b *mapping.Backend) { b.Addresses = []string{"127.0.0.1"} }, nil},
		{"tcp address for websocket", func(b *mapping.Backend) { b.Transport = mapping.TransportWebSocket }, nil},
		{"half a key pair", func(b *mapping.Backend) { b.TLS = &mapping.TLS{Cert: "x.pem"} }, nil},
		{"tiny mtu", func(b *mapping.Backend) { b.MTU = 10 }, nil},
		{"negative connections", func(b *mapping.Backend) { b.Connections = -1 }, nil},
		{"long mime", func(b *mapping.Backend) { b.DataMIME = strings.Repeat("x", 256) }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := testBackend("b", "127.0.0.1:1")
			tc.edit(b)
			_, err := New(b, Options{})
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Backend != "b" {
				t.Fatalf("New: got %v, want a *ConfigError for backend b", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("New: got %v, want errors.Is %v", err, tc.want)
			}
		})
	}
}

func TestPickSpreadsOverConnections(t *testing.T) {
	a, b := startServer(t, 0), startServer(t, 0)
	bk := testBackend("spread", a.addr, b.addr)
	bk.Connections = 2
	bk.MaxInflight = 1 << 30
	p := newPool(t, bk, Options{})
	if _, err := p.Pick(); !errors.Is(err, ErrNoConnection) {
		t.Fatalf("Pick before Start: got %v, want ErrNoConnection", err)
	}
	p.Start()
	testutil.EventuallyWithin(t, 5*time.Second, func() bool { return readyConns(p) == 4 }, "4 ready connections")
	if !p.Ready() {
		t.Fatal("Ready() = false with 4 ready connections")
	}

	// Picks held open: the outstanding counts steer P2C, so 40 picks spread over all 4 slots.
	count := map[*Member]int{}
	var held []*Member
	for i := 0; i < 40; i++ {
		m, err := p.Pick()
		if err != nil {
			t.Fatalf("Pick %d: %v", i, err)
		}
		count[m]++
		held = append(held, m)
	}
	if len(count) != 4 {
		t.Fatalf("40 held picks used %d of 4 connections: %v", len(count), count)
	}
	for m, n := range count {
		if n < 7 || n > 13 {
			t.Errorf("member %s slot %d got %d of 40 held picks, want 7..13", m.Addr(), m.slot, n)
		}
		if m.InFlight() != int64(n) {
			t.Errorf("member InFlight = %d, want %d", m.InFlight(), n)
		}
	}
	if got := p.InFlight(); got != 40 {
		t.Errorf("pool InFlight = %d, want 40", got)
	}
	for _, m := range held {
		m.Done(time.Now(), nil)
	}
	if got := p.InFlight(); got != 0 {
		t.Errorf("pool InFlight after Done = %d, want 0", got)
	}

	// Real requests through the picked connections.
	for i := 0; i < 20; i++ {
		if _, err := request(t, p); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if a.requests.Load()+b.requests.Load() != 20 {
		t.Errorf("servers saw %d+%d requests, want 20", a.requests.Load(), b.requests.Load())
	}
}

func TestP2CPrefersFastAddress(t *testing.T) {
	fast, slow := startServer(t, 0), startServer(t, 20*time.Millisecond)
	p := newPool(t, testBackend("p2c", fast.addr, slow.addr), Options{})
	p.Start()
	testutil.EventuallyWithin(t, 5*time.Second, func() bool { return readyConns(p) == 2 }, "2 ready connections")

	var mu sync.Mutex
	picks := map[string]int{}
	deadline := time.Now().Add(700 * time.Millisecond)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				m, err := request(t, p)
				if err != nil {
					t.Errorf("request: %v", err)
					return
				}
				mu.Lock()
				picks[m.Addr()]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	total := picks[fast.addr] + picks[slow.addr]
	share := float64(picks[fast.addr]) / float64(total)
	t.Logf("fast %d, slow %d picks (fast share %.3f)", picks[fast.addr], picks[slow.addr], share)
	if total < 100 || share < 0.8 {
		t.Fatalf("fast address got %d of %d picks (%.2f), want at least 80%% of at least 100", picks[fast.addr], total, share)
	}
	st := p.Stats()
	for _, c := range st.Conns {
		if c.Addr == slow.addr && c.EWMA < 10*time.Millisecond {
			t.Errorf("slow connection EWMA %v, want >= 10ms", c.EWMA)
		}
	}
}

func TestMaxInflight(t *testing.T) {
	bk := testBackend("limited", "10.0.0.1:7000")
	bk.Connections = 2
	bk.MaxInflight = 3
	set := metrics.NewSet()
	p := newPool(t, bk, Options{Dialer: pipeDialer(t, rstest.EchoHandler(), nil), Metrics: set})
	p.Start()
	testutil.EventuallyWithin(t, 5*time.Second, func() bool { return readyConns(p) == 2 }, "2 ready connections")
	var held []*Member
	for i := 0; i < 3; i++ {
		m, err := p.Pick()
		if err != nil {
			t.Fatalf("Pick %d: %v", i, err)
		}
		held = append(held, m)
	}
	_, err := p.Pick()
	if !errors.Is(err, ErrOverloaded) {
		t.Fatalf("4th Pick: got %v, want ErrOverloaded", err)
	}
	if d, ok := RetryAfter(err); !ok || d < time.Second {
		t.Errorf("RetryAfter(ErrOverloaded) = %v, %v; want >= 1s, true", d, ok)
	}
	if got := p.InFlight(); got != 3 {
		t.Errorf("InFlight after refused pick = %d, want 3", got)
	}
	var out bytes.Buffer
	set.WritePrometheus(&out)
	for _, want := range []string{
		`rsgate_backend_pick_errors_total{backend="limited",reason="overloaded"} 1`,
		`rsgate_backend_inflight{backend="limited"} 3`,
		`rsgate_backend_connections{backend="limited"} 2`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, out.String())
		}
	}
	held[0].Done(time.Now(), nil)
	m, err := p.Pick()
	if err != nil {
		t.Fatalf("Pick after Done: %v", err)
	}
	m.Done(time.Now(), nil)
	for _, m := range held[1:] {
		m.Done(time.Now(), nil)
	}
	if got := p.InFlight(); got != 0 {
		t.Errorf("InFlight at the end = %d, want 0", got)
	}
}

func TestServerLossFailoverAndReconnect(t *testing.T) {
	a, b := startServer(t, 0), startServer(t, 0)
	set := metrics.NewSet()
	p := newPool(t, testBackend("failover", a.addr, b.addr), Options{Metrics: set})
	p.Start()
	testutil.EventuallyWithin(t, 5*time.Second, func() bool { return readyConns(p) == 2 }, "2 ready connections")

	a.stop()
	testutil.EventuallyWithin(t, 5*time.Second, func() bool { return readyConns(p) == 1 }, "a's connection to go down")
	for i := 0; i < 50; i++ {
		m, err := request(t, p)
		if err != nil {
			t.Fatalf("request %d after losing a: %v", i, err)
		}
		if m.Addr() != b.addr {
			t.Fatalf("request %d went to %s, want the surviving %s", i, m.Addr(), b.addr)
		}
	}
	st := connStats(p, a.addr)
	if st.State == StateReady || st.LastError == "" {
		t.Errorf("a's slot after loss: state %v, last error %q", st.State, st.LastError)
	}

	a.start()
	testutil.EventuallyWithin(t, 5*time.Second, func() bool { return readyConns(p) == 2 }, "a to reconnect")
	if st := connStats(p, a.addr); st.Reconnects < 1 {
		t.Errorf("a's slot reconnects = %d, want >= 1", st.Reconnects)
	}
	if st := p.Stats(); st.Reconnects < 1 {
		t.Errorf("pool reconnects = %d, want >= 1", st.Reconnects)
	}
	var out bytes.Buffer
	set.WritePrometheus(&out)
	if strings.Contains(out.String(), `rsgate_backend_reconnects_total{backend="failover"} 0`) ||
		!strings.Contains(out.String(), `rsgate_backend_reconnects_total{backend="failover"}`) {
		t.Errorf("reconnects metric not counted:\n%s", out.String())
	}
	// Held picks spread over both again.
	seen := map[string]bool{}
	var held []*Member
	for i := 0; i < 10; i++ {
		m, err := p.Pick()
		if err != nil {
			t.Fatal(err)
		}
		seen[m.Addr()] = true
		held = append(held, m)
	}
	for _, m := range held {
		m.Done(time.Now(), nil)
	}
	if !seen[a.addr] || !seen[b.addr] {
		t.Fatalf("after reconnect, 10 held picks went to %v, want both addresses", seen)
	}
	if _, err := request(t, p); err != nil {
		t.Fatal(err)
	}
}

func connStats(p *Pool, addr string) ConnStats {
	for _, c := range p.Stats().Conns {
		if c.Addr == addr {
			return c
		}
	}
	return ConnStats{}
}

func TestNoConnectionRetryAfter(t *testing.T) {
	bk := testBackend("down", localAddr(t))
	bk.Reconnect = mapping.Reconnect{MinBackoff: mapping.Duration(3 * time.Second), MaxBackoff: mapping.Duration(3 * time.Second)}
	p := newPool(t, bk, Options{})
	p.Start()
	testutil.EventuallyWithin(t, 5*time.Second, func() bool {
		st := connStats(p, bk.Addresses[0])
		return st.DialFailures > 0 && st.State == StateDown
	}, "a failed dial")

	_, err := p.Pick()
	if !errors.Is(err, ErrNoConnection) {
		t.Fatalf("Pick: got %v, want ErrNoConnection", err)
	}
	d, ok := RetryAfter(err)
	// The next attempt is 1.5s..3s away (jittered): the hint is that, rounded up to whole seconds.
	if !ok || d < 2*time.Second || d > 3*time.Second {
		t.Fatalf("RetryAfter = %v, %v; want 2s..3s, true", d, ok)
	}
	if !strings.Contains(err.Error(), `"down"`) {
		t.Errorf("error %q does not name the backend", err)
	}
	if p.Ready() {
		t.Error("Ready() = true with no connection")
	}
	if st := p.Stats(); st.Ready || st.Conns[0].State != StateDown || st.Conns[0].LastError == "" {
		t.Errorf("Stats: %+v", st)
	}
}

func TestRetryAfterClassifies(t *testing.T) {
	for _, tc := range []struct {
		err error
		ok  bool
	}{
		{nil, false},
		{io.EOF, false},
		{ErrOverloaded, true},
		{ErrNoLease, true},
		{ErrNoConnection, true},
		{ErrClosed, false},
		{newPickError("x", ErrClosed), false},
		{newPickError("x", ErrNoLease), true},
	} {
		d, ok := RetryAfter(tc.err)
		if ok != tc.ok || ok && d != DefaultRetryAfter {
			t.Errorf("RetryAfter(%v) = %v, %v; want ok=%v", tc.err, d, ok, tc.ok)
		}
	}
}

func TestClosedPool(t *testing.T) {
	p := newPool(t, testBackend("closed", "10.0.0.1:1"), Options{Dialer: pipeDialer(t, rstest.EchoHandler(), nil)})
	p.Start()
	testutil.EventuallyWithin(t, 5*time.Second, p.Ready, "ready")
	m, err := p.Pick()
	if err != nil {
		t.Fatal(err)
	}
	conn := m.Conn()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-conn.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not close the connection")
	}
	m.Done(time.Now(), nil) // still valid after Close
	if _, err := p.Pick(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Pick after Close: %v, want ErrClosed", err)
	}
	if p.Ready() {
		t.Error("Ready() after Close")
	}
	if st := connStats(p, "10.0.0.1:1"); st.State != StateClosed {
		t.Errorf("state after Close: %v", st.State)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestShutdownWaitsForInflight(t *testing.T) {
	p := newPool(t, testBackend("drain", "10.0.0.1:1"), Options{Dialer: pipeDialer(t, rstest.EchoHandler(), nil)})
	p.Start()
	testutil.EventuallyWithin(t, 5*time.Second, p.Ready, "ready")
	m, err := p.Pick()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- p.Shutdown(ctx)
	}()
	testutil.EventuallyWithin(t, time.Second, func() bool {
		m, err := p.Pick()
		if err == nil {
			m.Done(time.Now(), nil)
		}
		return errors.Is(err, ErrClosed)
	}, "picks refused")

	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	if !m.Conn().LeaseAvailable() || m.State() != StateReady {
		t.Fatal("connection closed before the in-flight request was done")
	}
	m.Done(time.Now(), nil)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return after the last Done")
	}

	// With a short deadline Shutdown cuts the request off.
	p2 := newPool(t, testBackend("cut", "10.0.0.1:1"), Options{Dialer: pipeDialer(t, rstest.EchoHandler(), nil)})
	p2.Start()
	testutil.EventuallyWithin(t, 5*time.Second, p2.Ready, "ready")
	m2, err := p2.Pick()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := p2.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a request in flight: %v, want DeadlineExceeded", err)
	}
	m2.Done(time.Now(), nil)
}

func TestRejectedSetupBacksOff(t *testing.T) {
	l, err := transport.ListenTCP("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	var setups atomic.Int64
	srv := &rsocket.Server{Acceptor: func(*rsocket.SetupInfo, *rsocket.Conn) (rsocket.Handler, error) {
		setups.Add(1)
		return nil, &rsocket.Error{Code: frame.CodeRejectedSetup, Message: "go away"}
	}}
	serveUntilCleanup(t, srv, l)
	p := newPool(t, testBackend("rejected", l.Addr().String()), Options{})
	p.Start()
	testutil.EventuallyWithin(t, 5*time.Second, func() bool {
		return strings.Contains(connStats(p, l.Addr().String()).LastError, "REJECTED_SETUP")
	}, "the rejection to be recorded")

	// Connections that die right after SETUP keep growing the backoff (10ms..100ms here): about ten
	// attempts in 500ms, not a hot loop.
	n := setups.Load()
	time.Sleep(500 * time.Millisecond)
	if got := setups.Load() - n; got < 2 || got > 30 {
		t.Fatalf("%d SETUPs in 500ms, want 2..30", got)
	}
}

func TestPickSkipsDownSlots(t *testing.T) {
	pipe := pipeDialer(t, rstest.EchoHandler(), nil)
	dialer := func(ctx context.Context, addr string) (transport.Conn, error) {
		if strings.HasPrefix(addr, "10.0.0.9:") {
			return nil, errRefused
		}
		return pipe(ctx, addr)
	}
	bk := testBackend("partial", "10.0.0.9:1", "10.0.0.1:1", "10.0.0.9:2", "10.0.0.2:1", "10.0.0.9:3")
	p := newPool(t, bk, Options{Dialer: dialer})
	p.Start()
	testutil.EventuallyWithin(t, 5*time.Second, func() bool {
		st := p.Stats()
		down := 0
		for _, c := range st.Conns {
			if c.State == StateDown {
				down++
			}
		}
		return st.ReadyConns == 2 && down == 3
	}, "2 of 5 slots ready, 3 down")

	// Most random pairs include a down slot: the slow path must still pick only ready slots and still
	// balance between them.
	count := map[string]int{}
	var held []*Member
	for i := 0; i < 30; i++ {
		m, err := p.Pick()
		if err != nil {
			t.Fatalf("Pick %d: %v", i, err)
		}
		count[m.Addr()]++
		held = append(held, m)
	}
	if len(count) != 2 || count["10.0.0.1:1"] < 12 || count["10.0.0.2:1"] < 12 {
		t.Fatalf("30 held picks: %v, want about 15 on each ready slot and none on down ones", count)
	}
	for _, m := range held {
		m.Done(time.Now(), nil)
	}
	if !strings.Contains(connStats(p, "10.0.0.9:1").LastError, errRefused.Error()) {
		t.Errorf("down slot's last error: %q", connStats(p, "10.0.0.9:1").LastError)
	}
}
