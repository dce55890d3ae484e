package pool

import (
	"errors"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/internal/testutil/rstest"
	"github.com/rsgate/rsgate/rsocket"
)

func TestLeaseSkipsExhaustedConnection(t *testing.T) {
	rich := &testServer{t: t, addr: "127.0.0.1:0", lease: &rsocket.LeaseGrant{TTL: time.Minute, Requests: 1000}}
	rich.start()
	t.Cleanup(rich.stop)
	poor := &testServer{t: t, addr: "127.0.0.1:0", lease: &rsocket.LeaseGrant{TTL: time.Minute, Requests: 3}}
	poor.start()
	t.Cleanup(poor.stop)

	bk := testBackend("leased", rich.addr, poor.addr)
	bk.Lease = true
	p := newPool(t, bk, Options{})
	p.Start()
	testutil.EventuallyWithin(t, 5*time.Second, func() bool {
		n := 0
		for _, c := range p.Stats().Conns {
			if c.Lease {
				n++
			}
		}
		return n == 2
	}, "both connections holding a lease")

	// Sequential requests: every one must go through (the pool never picks the exhausted connection, so
	// the rsocket core never answers ErrNoLease), and the poor backend serves at most its 3 leased ones.
	for i := 0; i < 60; i++ {
		if _, err := request(t, p); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if got := poor.requests.Load(); got > 3 {
		t.Fatalf("backend with a 3-request lease served %d requests", got)
	}
	if got := rich.requests.Load() + poor.requests.Load(); got != 60 {
		t.Fatalf("servers saw %d requests, want 60", got)
	}
	// Hold picks: with the poor connection exhausted, all go to rich even though they make it busier.
	var held []*Member
	for i := 0; i < 20; i++ {
		m, err := p.Pick()
		if err != nil {
			t.Fatal(err)
		}
		if poor.requests.Load() == 3 && m.Addr() == poor.addr {
			t.Fatalf("pick %d chose the connection without lease", i)
		}
		held = append(held, m)
	}
	for _, m := range held {
		m.Done(time.Now(), nil)
	}
}

func TestNoLease(t *testing.T) {
	bk := testBackend("stingy", "10.0.0.1:1")
	bk.Lease = true
	bk.Connections = 2
	p := newPool(t, bk, Options{Dialer: pipeDialer(t, rstest.EchoHandler(), &rsocket.LeaseGrant{TTL: time.Minute, Requests: 1})})
	p.Start()
	testutil.EventuallyWithin(t, 5*time.Second, func() bool {
		st := p.Stats()
		return st.ReadyConns == 2 && st.Conns[0].Lease && st.Conns[1].Lease
	}, "leases")

	for i := 0; i < 2; i++ {
		if _, err := request(t, p); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	_, err := p.Pick()
	if !errors.Is(err, ErrNoLease) {
		t.Fatalf("Pick with every lease used up: %v, want ErrNoLease", err)
	}
	if d, ok := RetryAfter(err); !ok || d < time.Second {
		t.Fatalf("RetryAfter(ErrNoLease) = %v, %v", d, ok)
	}
	if !p.Ready() {
		t.Error("Ready() = false: connections without lease are still connected")
	}
}
