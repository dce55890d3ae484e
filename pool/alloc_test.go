//go:build !race

package pool

import (
	"errors"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/internal/testutil/rstest"
	"github.com/rsgate/rsgate/mapping"
)

func TestPickDoneAllocs(t *testing.T) {
	bk := testBackend("allocs", "10.0.0.1:1", "10.0.0.2:1")
	bk.Connections = 2
	bk.MaxInflight = 2
	p := newPool(t, bk, Options{Dialer: pipeDialer(t, rstest.EchoHandler(), nil)})
	p.Start()
	testutil.EventuallyWithin(t, 5*time.Second, func() bool { return readyConns(p) == 4 }, "4 ready connections")
	start := time.Now()
	if n := testing.AllocsPerRun(1000, func() {
		m, err := p.Pick()
		if err != nil {
			t.Fatal(err)
		}
		_ = m.Conn()
		m.Done(start, nil)
	}); n != 0 {
		t.Errorf("Pick+Conn+Done: %v allocs, want 0", n)
	}
	// The refusal path (a 503 storm) does not allocate either.
	a, _ := p.Pick()
	b, _ := p.Pick()
	if n := testing.AllocsPerRun(1000, func() {
		if _, err := p.Pick(); !errors.Is(err, ErrOverloaded) {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("refused Pick: %v allocs, want 0", n)
	}
	a.Done(start, nil)
	b.Done(start, errors.New("failed"))
}

// TestPickAllocsByBalancer: both balancers, and a pool with an ejected address, pick without allocating.
func TestPickAllocsByBalancer(t *testing.T) {
	for _, bal := range []string{"weighted", "p2c"} {
		bk := testBackend("allocs-"+bal, "10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1")
		bk.Connections = 2
		bk.Balancer = bal
		bk.Outlier.EjectionTime = mapping.Duration(time.Hour)
		p := newPool(t, bk, Options{Dialer: pipeDialer(t, rstest.EchoHandler(), nil)})
		p.Start()
		testutil.EventuallyWithin(t, 5*time.Second, func() bool { return readyConns(p) == 6 }, "6 ready connections")
		start := time.Now()
		run := func(what string) {
			if n := testing.AllocsPerRun(1000, func() {
				m, err := p.Pick()
				if err != nil {
					t.Fatal(err)
				}
				m.Done(start, nil)
			}); n != 0 {
				t.Errorf("%s %s: Pick+Done %v allocs, want 0", bal, what, n)
			}
		}
		run("healthy")
		p.eject(p.targets[1].endpoints[""], false)
		run("one address ejected")
	}
}
