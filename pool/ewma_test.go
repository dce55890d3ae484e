package pool

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/rsocket"
)

func TestPeakEWMA(t *testing.T) {
	clk := &testutil.Clock{}
	p := newPool(t, testBackend("ewma", "127.0.0.1:1"), Options{Now: clk.Now, DecayTime: time.Second})
	m := &Member{pool: p}
	near := func(what string, got time.Duration, want float64) {
		t.Helper()
		if math.Abs(float64(got)-want) > want*1e-6+1 {
			t.Fatalf("%s: got %v, want %v", what, got, time.Duration(want))
		}
	}
	now := func() int64 { return int64(clk.Now().Sub(p.epoch)) }

	m.outstanding.Add(1)
	m.Done(clk.Now().Add(-100*time.Millisecond), nil)
	near("first sample", time.Duration(m.ewma(now())), float64(100*time.Millisecond))

	// Lower samples are averaged in with weight 1-exp(-dt/tau).
	clk.Advance(time.Second)
	m.outstanding.Add(1)
	m.Done(clk.Now().Add(-10*time.Millisecond), nil)
	w := math.Exp(-1)
	want := float64(100*time.Millisecond)*w + float64(10*time.Millisecond)*(1-w)
	near("decayed average", time.Duration(m.ewma(now())), want)

	// A peak replaces the estimate at once.
	clk.Advance(10 * time.Millisecond)
	m.outstanding.Add(1)
	m.Done(clk.Now().Add(-500*time.Millisecond), nil)
	near("peak", time.Duration(m.ewma(now())), float64(500*time.Millisecond))

	// Idle, the estimate decays (so a slow member is probed again eventually).
	clk.Advance(2 * time.Second)
	near("idle decay", time.Duration(m.ewma(now())), float64(500*time.Millisecond)*math.Exp(-2))

	// A fast failure does not make the member look faster; cancellations are not measured.
	before := m.ewma(now())
	m.outstanding.Add(2)
	m.Done(clk.Now(), &rsocket.Error{Code: 0x202, Message: "rejected"})
	near("fast failure", time.Duration(m.ewma(now())), before)
	m.Done(clk.Now().Add(-time.Hour), context.Canceled)
	near("canceled", time.Duration(m.ewma(now())), before)
	if m.errors.Load() != 2 || m.outstanding.Load() != 0 {
		t.Fatalf("errors %d, outstanding %d", m.errors.Load(), m.outstanding.Load())
	}

	// Load: EWMA x (outstanding + 1); no sample yet but requests outstanding: a large penalty.
	m.outstanding.Add(3)
	near("load", time.Duration(m.load(now())), before*4)
	fresh := &Member{pool: p}
	if fresh.load(now()) != 0 {
		t.Fatal("an idle member without samples must cost 0")
	}
	fresh.outstanding.Add(1)
	if fresh.load(now()) < penalty {
		t.Fatal("a busy member without samples must cost the penalty")
	}
	if !errors.Is(p.errNoConn, ErrNoConnection) {
		t.Fatal("pool error does not match its sentinel")
	}
}

func TestBackoff(t *testing.T) {
	p := newPool(t, testBackend("bo", "127.0.0.1:1"), Options{})
	p.minBackoff, p.maxBackoff = 100*time.Millisecond, time.Second
	for _, tc := range []struct {
		n      int
		lo, hi time.Duration
	}{
		{1, 50 * time.Millisecond, 100 * time.Millisecond},
		{2, 100 * time.Millisecond, 200 * time.Millisecond},
		{4, 400 * time.Millisecond, 800 * time.Millisecond},
		{5, 500 * time.Millisecond, time.Second},
		{60, 500 * time.Millisecond, time.Second},
	} {
		for i := 0; i < 100; i++ {
			if d := p.backoff(tc.n); d < tc.lo || d > tc.hi {
				t.Fatalf("backoff(%d) = %v, want %v..%v", tc.n, d, tc.lo, tc.hi)
			}
		}
	}
}
