package ingress

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/transport"
)

// TestClientLeaseFollowsBackend: an RSocket client that sets L in SETUP gets LEASEs sized from the
// backend's capacity (max_inflight 4 here). While HTTP requests hold every backend slot, the gateway
// withdraws the lease: the client holds its request (rsocket.ErrNoLease, nothing sent) instead of getting
// REJECTED. Once the slots free up, a new lease arrives and the request goes through.
func TestClientLeaseFollowsBackend(t *testing.T) {
	sp := newSpecial()
	be := startBackend(t, sp.handler)
	cfg := newConfig(map[string]string{"b": be.addr}, []routeSpec{
		{name: "rs", path: "/rsocket", backend: "b", interaction: mapping.InteractionRSocket},
		{name: "slow", method: "GET", path: "/slow", backend: "b", interaction: mapping.InteractionRequestResponse, tag: "sleep.1500"},
	})
	cfg.Backends["b"].MaxInflight = 4
	g := startGateway(t, cfg, Options{})

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	tc, err := transport.DialWebSocket(ctx, "ws://"+g.addr+"/rsocket", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	lc, err := rsocket.Connect(ctx, tc, rsocket.Options{Lease: true})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	testutil.Eventually(t, lc.LeaseAvailable, "the first lease")
	if n, leased := lc.LeaseLeft(); !leased || n != 4 {
		t.Fatalf("first lease allows %d requests (leased %v), want 4 = the backend's max_inflight", n, leased)
	}

	// Fill the backend's 4 slots from HTTP.
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := g.do("GET", "/slow", ""); r.status != 200 {
				t.Errorf("slow request: status %d", r.status)
			}
		}()
	}
	testutil.Eventually(t, func() bool { return g.pools.Get("b").InFlight() == 4 }, "4 requests in flight")
	testutil.Eventually(t, func() bool { return !lc.LeaseAvailable() }, "the lease to be withdrawn")
	_, _, err = lc.RequestResponse(ctx, rsocket.Payload{Metadata: routeMD("echo"), Data: []byte("hi")})
	if !errors.Is(err, rsocket.ErrNoLease) {
		t.Fatalf("request while the backend is full: %v, want rsocket.ErrNoLease (held by the client, not REJECTED)", err)
	}
	wg.Wait()
	testutil.Eventually(t, lc.LeaseAvailable, "a new lease")
	msg, _, err := lc.RequestResponse(ctx, rsocket.Payload{Metadata: routeMD("echo"), Data: []byte("hi")})
	if err != nil || string(msg.Data) != "hi" {
		t.Fatalf("request after capacity returned: %v", err)
	}
	msg.Release()
}

func TestLeaseGrant(t *testing.T) {
	for _, tc := range []struct {
		capacity, sessions int64
		want               uint32
	}{{0, 1, 0}, {-3, 1, 0}, {4, 1, 4}, {4, 8, 1}, {100, 4, 25}, {1 << 40, 1, 1<<31 - 1}, {10, 0, 10}} {
		if got := leaseGrant(tc.capacity, tc.sessions); got != tc.want {
			t.Errorf("leaseGrant(%d, %d) = %d, want %d", tc.capacity, tc.sessions, got, tc.want)
		}
	}
}

// TestBackendLeaseDrivesAdmission: a backend that grants 3 requests per lease gets exactly 3 requests;
// the rest are answered 503 NO_LEASE by the gateway without reaching it (never REJECTED by the backend).
// A leased RSocket client of the same backend is told what is left. A new LEASE from the backend lets
// requests through again.
func TestBackendLeaseDrivesAdmission(t *testing.T) {
	var seen atomic.Int64
	var mu sync.Mutex
	var conns []*rsocket.Conn
	ln, err := transport.ListenTCP("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := &rsocket.Server{
		Options: rsocket.ServerOptions{Lease: &rsocket.LeaseGrant{TTL: time.Minute, Requests: 3}},
		Acceptor: func(_ *rsocket.SetupInfo, c *rsocket.Conn) (rsocket.Handler, error) {
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			return &rsocket.HandlerFuncs{RequestResponseFunc: func(req rsocket.Payload, s *rsocket.Stream) {
				seen.Add(1)
				_ = s.Respond(rsocket.Payload{Data: append([]byte(nil), req.Data...)})
			}}, nil
		}}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	cfg := newConfig(map[string]string{"b": ln.Addr().String()}, []routeSpec{
		{name: "rr", method: "POST", path: "/rr", backend: "b", interaction: mapping.InteractionRequestResponse, tag: "x"},
		{name: "rs", path: "/rsocket", backend: "b", interaction: mapping.InteractionRSocket},
	})
	cfg.Backends["b"].Lease = true
	g := startGateway(t, cfg, Options{})
	testutil.Eventually(t, func() bool { return g.pools.Get("b").Capacity() == 3 }, "the backend's lease")

	for i := 0; i < 2; i++ {
		if r := g.do("POST", "/rr", "hi"); r.status != 200 {
			t.Fatalf("request %d under the lease: status %d %s", i, r.status, r.body)
		}
	}
	// A leased client is granted what the backend's lease has left.
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	tc, err := transport.DialWebSocket(ctx, "ws://"+g.addr+"/rsocket", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	lc, err := rsocket.Connect(ctx, tc, rsocket.Options{Lease: true})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	testutil.Eventually(t, lc.LeaseAvailable, "a lease for the client")
	if n, _ := lc.LeaseLeft(); n != 1 {
		t.Errorf("client lease = %d requests, want 1 (what the backend's lease has left)", n)
	}
	if r := g.do("POST", "/rr", "hi"); r.status != 200 {
		t.Fatalf("third request: status %d", r.status)
	}
	for i := 0; i < 3; i++ {
		r := g.do("POST", "/rr", "hi")
		jsonError(t, r, 503, CodeNoLease)
		if r.header.Get("Retry-After") == "" {
			t.Error("503 NO_LEASE without Retry-After")
		}
	}
	if n := seen.Load(); n != 3 {
		t.Fatalf("backend saw %d requests, want 3 (its lease)", n)
	}
	testutil.Eventually(t, func() bool { return !lc.LeaseAvailable() }, "the client's lease withdrawn")
	mu.Lock()
	for _, c := range conns {
		_ = c.SendLease(time.Minute, 10, nil)
	}
	mu.Unlock()
	testutil.Eventually(t, func() bool { return g.pools.Get("b").Capacity() == 10 }, "the new lease")
	if r := g.do("POST", "/rr", "hi"); r.status != 200 {
		t.Fatalf("request under the new lease: status %d", r.status)
	}
}
