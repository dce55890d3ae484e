package pool

import (
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/internal/testutil/rstest"
	"github.com/rsgate/rsgate/rsocket"
)

// TestCapacity: the headroom under max_inflight, capped by what the backend's leases allow; 0 without a
// ready connection.
func TestCapacity(t *testing.T) {
	bk := testBackend("cap", "10.0.0.1:1")
	bk.MaxInflight = 10
	p := newPool(t, bk, Options{Dialer: pipeDialer(t, rstest.EchoHandler(), nil)})
	if c := p.Capacity(); c != 0 {
		t.Fatalf("Capacity before Start = %d, want 0", c)
	}
	p.Start()
	testutil.EventuallyWithin(t, 5*time.Second, p.Ready, "ready")
	m, _ := p.Pick()
	if c := p.Capacity(); c != 9 {
		t.Errorf("Capacity with 1 of 10 in flight = %d, want 9", c)
	}
	m.Done(time.Now(), nil)

	lb := testBackend("leased", "10.0.0.1:1", "10.0.0.2:1")
	lb.Lease = true
	lp := newPool(t, lb, Options{Dialer: pipeDialer(t, rstest.EchoHandler(), &rsocket.LeaseGrant{TTL: time.Minute, Requests: 3})})
	lp.Start()
	testutil.EventuallyWithin(t, 5*time.Second, func() bool { return lp.Capacity() == 6 }, "leases")
	if m, err := request(t, lp); err != nil {
		t.Fatal(err)
	} else if m == nil {
		t.Fatal("no member")
	}
	if c := lp.Capacity(); c != 5 {
		t.Errorf("Capacity after one leased request = %d, want 5 (2 x 3 - 1)", c)
	}
}
