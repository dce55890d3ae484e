package rsocket

import (
	"context"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/rsocket/frame"
)

// LeaseLeft counts down with each request, reads 0 once the lease expired or the connection closed, and
// says whether leases were negotiated at all.
func TestLeaseLeft(t *testing.T) {
	leakCheck(t)
	clk := &testutil.Clock{}
	p, c := rawServer(t, Options{Lease: true, Now: clk.Now})
	if n, leased := c.LeaseLeft(); n != 0 || !leased {
		t.Fatalf("before any LEASE: %d, %v", n, leased)
	}
	p.send(frame.AppendLease(nil, 10000, 3, nil))
	testutil.Eventually(t, c.LeaseAvailable, "lease")
	if n, _ := c.LeaseLeft(); n != 3 {
		t.Fatalf("after LEASE(3): %d left", n)
	}
	if err := fnfErr(c.FireAndForget(context.Background(), Payload{}, FireAndForgetOptions{})); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.LeaseLeft(); n != 2 {
		t.Fatalf("after one request: %d left, want 2", n)
	}
	p.expect(frame.TypeRequestFNF, 1)
	p.send(frame.AppendLease(nil, 300, 100, nil))
	testutil.Eventually(t, func() bool { n, _ := c.LeaseLeft(); return n == 100 }, "lease 2")
	clk.Advance(300 * time.Millisecond) // its TTL, on the manual clock
	if n, _ := c.LeaseLeft(); n != 0 {
		t.Fatalf("after lease 2's TTL: %d left", n)
	}
	p.send(frame.AppendLease(nil, 10000, 5, nil))
	testutil.Eventually(t, func() bool { n, _ := c.LeaseLeft(); return n == 5 }, "lease 3")
	_ = c.Close()
	if n, leased := c.LeaseLeft(); n != 0 || !leased {
		t.Fatalf("after close: %d, %v", n, leased)
	}

	_, c2 := rawServer(t, Options{})
	if n, leased := c2.LeaseLeft(); n != 0 || leased {
		t.Fatalf("without leases: %d, %v", n, leased)
	}
}
