package pool

import (
	"context"
	"errors"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/internal/testutil/rstest"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket/transport"
)

// fakeDNS is an injectable resolver whose answer the test changes.
type fakeDNS struct {
	mu      sync.Mutex
	answers map[string][]string
	err     error
	lookups int
}

func (d *fakeDNS) set(host string, ips []string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.answers == nil {
		d.answers = map[string][]string{}
	}
	d.answers[host] = ips
	d.err = err
}

func (d *fakeDNS) resolve(ctx context.Context, host string) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lookups++
	if d.err != nil {
		return nil, d.err
	}
	return slices.Clone(d.answers[host]), nil
}

func (d *fakeDNS) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lookups
}

// liveAddrs returns the sorted dial addresses of the slots in rotation that are ready.
func liveAddrs(p *Pool) []string {
	var out []string
	for _, m := range *p.members.Load() {
		if m.State() == StateReady {
			out = append(out, m.Addr())
		}
	}
	sort.Strings(out)
	return out
}

func TestDNSReresolution(t *testing.T) {
	dns := &fakeDNS{}
	dns.set("backend.test", []string{"10.0.0.1"}, nil)
	pipe := pipeDialer(t, rstest.EchoHandler(), nil)
	var dialMu sync.Mutex
	dialed := map[string]int{}
	dialer := func(ctx context.Context, addr string) (transport.Conn, error) {
		dialMu.Lock()
		dialed[addr]++
		dialMu.Unlock()
		return pipe(ctx, addr)
	}
	bk := testBackend("dns", "backend.test:7000", "10.9.9.9:7000")
	bk.Connections = 2
	bk.ResolveInterval = mapping.Duration(20 * time.Millisecond)
	p := newPool(t, bk, Options{Resolver: dns.resolve, Dialer: dialer, DrainTimeout: 5 * time.Second})
	p.Start()

	want := func(addrs ...string) func() bool {
		return func() bool { return slices.Equal(liveAddrs(p), addrs) }
	}
	testutil.EventuallyWithin(t, 5*time.Second, want("10.0.0.1:7000", "10.0.0.1:7000", "10.9.9.9:7000", "10.9.9.9:7000"), "10.0.0.1 x2 + the literal IP x2")

	dns.set("backend.test", []string{"10.0.0.2", "10.0.0.1"}, nil)
	testutil.EventuallyWithin(t, 5*time.Second, want("10.0.0.1:7000", "10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.2:7000", "10.9.9.9:7000", "10.9.9.9:7000"), "10.0.0.2 added")

	// 10.0.0.1 disappears while a request is in flight on it: it leaves the rotation at once and closes
	// only after that request is done.
	var onOld *Member
	var held []*Member
	for onOld == nil {
		m, err := p.Pick()
		if err != nil {
			t.Fatal(err)
		}
		if m.Addr() == "10.0.0.1:7000" {
			onOld = m
		} else {
			held = append(held, m)
		}
	}
	for _, m := range held {
		m.Done(time.Now(), nil)
	}
	dns.set("backend.test", []string{"10.0.0.2"}, nil)
	testutil.EventuallyWithin(t, 5*time.Second, want("10.0.0.2:7000", "10.0.0.2:7000", "10.9.9.9:7000", "10.9.9.9:7000"), "10.0.0.1 out of rotation")

	draining := 0
	for _, c := range p.Stats().Conns {
		if c.Addr == "10.0.0.1:7000" {
			if c.State != StateDraining && c.State != StateClosed {
				t.Errorf("removed slot in state %v", c.State)
			}
			draining++
		}
	}
	if draining == 0 {
		t.Error("Stats does not show the draining slots")
	}
	if onOld.State() != StateReady || onOld.Conn().LeaseAvailable() != true {
		t.Error("the slot with a request in flight was closed before the request was done")
	}
	for i := 0; i < 50; i++ {
		m, err := p.Pick()
		if err != nil {
			t.Fatal(err)
		}
		if m.Addr() == "10.0.0.1:7000" {
			t.Fatal("picked a drained address")
		}
		m.Done(time.Now(), nil)
	}
	onOld.Done(time.Now(), nil)
	testutil.EventuallyWithin(t, 5*time.Second, func() bool { return onOld.State() == StateClosed }, "drained slot closed")
	testutil.EventuallyWithin(t, 5*time.Second, func() bool {
		for _, c := range p.Stats().Conns {
			if c.Addr == "10.0.0.1:7000" {
				return false
			}
		}
		return true
	}, "drained slots gone from Stats")

	// A failing lookup keeps the current set.
	dns.set("backend.test", nil, errors.New("SERVFAIL"))
	n := dns.count()
	testutil.EventuallyWithin(t, 5*time.Second, func() bool { return dns.count() >= n+3 }, "more lookups")
	if got := liveAddrs(p); !slices.Equal(got, []string{"10.0.0.2:7000", "10.0.0.2:7000", "10.9.9.9:7000", "10.9.9.9:7000"}) {
		t.Fatalf("after failed lookups: %v", got)
	}
	// An empty answer empties the name's share of the pool.
	dns.set("backend.test", []string{}, nil)
	testutil.EventuallyWithin(t, 5*time.Second, want("10.9.9.9:7000", "10.9.9.9:7000"), "empty answer applied")

	dialMu.Lock()
	defer dialMu.Unlock()
	if dialed["backend.test:7000"] != 0 {
		t.Error("dialled the host name although it is re-resolved")
	}
}

func TestResolvedEndpointKeepsNameForTLSAndHost(t *testing.T) {
	bk := testBackend("names", "backend.test:7000")
	bk.ResolveInterval = mapping.Duration(time.Second)
	bk.TLS = &mapping.TLS{}
	p := newPool(t, bk, Options{})
	ep := p.newEndpoint(p.targets[0], "10.0.0.1")
	if ep.dialAddr != "10.0.0.1:7000" || ep.tls == nil || ep.tls.ServerName != "backend.test" {
		t.Fatalf("tcp endpoint: %s, tls %+v", ep.dialAddr, ep.tls)
	}
	if p.tls.ServerName != "" {
		t.Fatal("the shared TLS config was modified")
	}

	ws := testBackend("ws", "wss://backend.test/rsocket")
	ws.Transport = mapping.TransportWebSocket
	ws.ResolveInterval = mapping.Duration(time.Second)
	q := newPool(t, ws, Options{})
	ep = q.newEndpoint(q.targets[0], "fd00::1")
	if ep.dialAddr != "wss://[fd00::1]:443/rsocket" || ep.header.Get("Host") != "backend.test" ||
		ep.tls == nil || ep.tls.ServerName != "backend.test" {
		t.Fatalf("websocket endpoint: %s, header %v, tls %+v", ep.dialAddr, ep.header, ep.tls)
	}
	// IP literals and resolve_interval 0 are dialled as configured.
	lit := testBackend("lit", "127.0.0.1:7000", "backend.test:7000")
	r := newPool(t, lit, Options{})
	if r.targets[0].dynamic || r.targets[1].dynamic {
		t.Fatal("targets without resolve_interval or with IP literals must not be re-resolved")
	}
}

func TestWantedIPs(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want []string
	}{
		{[]string{"127.0.0.1", "::1"}, []string{"127.0.0.1"}},
		{[]string{"::1", "fd00::0001"}, []string{"::1", "fd00::1"}},
		{[]string{"10.0.0.2", "10.0.0.1", "10.0.0.2", ""}, []string{"10.0.0.1", "10.0.0.2"}},
		{nil, nil},
	} {
		var got []string
		for ip := range wantedIPs(tc.in) {
			got = append(got, ip)
		}
		sort.Strings(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("wantedIPs(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
