package pool

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/internal/testutil/rstest"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket/transport"
)

// Sessions never count against max_inflight: with max_inflight 2 and many sessions open, requests still
// get their 2 slots; sessions still count in InFlight (drains wait for them).
func TestSessionsApartFromMaxInflight(t *testing.T) {
	b := testBackend("s", "10.0.0.1:1")
	b.MaxInflight = 2
	p := newPool(t, b, Options{Dialer: pipeDialer(t, rstest.EchoHandler(), nil)})
	p.Start()
	testutil.EventuallyWithin(t, 5*time.Second, p.Ready, "ready")
	var sessions []*Member
	for i := 0; i < 10; i++ {
		m, err := p.PickSession()
		if err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		sessions = append(sessions, m)
	}
	a, err := p.Pick()
	if err != nil {
		t.Fatalf("request beside 10 sessions: %v", err)
	}
	b2, err := p.Pick()
	if err != nil {
		t.Fatalf("second request: %v", err)
	}
	if _, err := p.Pick(); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("third request: %v, want ErrOverloaded (max_inflight 2)", err)
	}
	if p.Sessions() != 10 || p.InFlight() != 12 {
		t.Fatalf("Sessions %d InFlight %d, want 10 and 12", p.Sessions(), p.InFlight())
	}
	a.Done(time.Now(), nil)
	b2.Done(time.Now(), nil)
	for _, m := range sessions {
		m.DoneSession(time.Now(), nil)
	}
	if p.Sessions() != 0 || p.InFlight() != 0 {
		t.Fatalf("after: Sessions %d InFlight %d", p.Sessions(), p.InFlight())
	}
}

// Update waits for a replacing pool to have a ready connection before it switches to it.
func TestUpdateWaitsForReadyPool(t *testing.T) {
	var slow atomic.Bool
	base := pipeDialer(t, rstest.EchoHandler(), nil)
	dial := func(ctx context.Context, addr string) (transport.Conn, error) {
		if slow.Load() {
			time.Sleep(300 * time.Millisecond)
		}
		return base(ctx, addr)
	}
	b := testBackend("u", "10.0.0.1:1")
	g, err := NewGroup(testConfig(b), Options{Dialer: dial, DrainTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	g.Start()
	testutil.EventuallyWithin(t, 5*time.Second, g.Ready, "ready")
	slow.Store(true)
	b2 := testBackend("u", "10.0.0.1:1")
	b2.Keepalive = mapping.Duration(7 * time.Second) // a changed backend: a new pool
	old := g.Get("u")
	if err := g.Update(testConfig(b2)); err != nil {
		t.Fatal(err)
	}
	if g.Get("u") == old {
		t.Fatal("pool not replaced")
	}
	if !g.Get("u").Ready() {
		t.Fatal("Update switched to a pool with no ready connection")
	}
}
