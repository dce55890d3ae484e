package testutil

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// fakeTB records Fatalf instead of stopping the test.
type fakeTB struct {
	testing.TB
	failed atomic.Bool
	msg    string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	f.failed.Store(true)
}

func TestEventuallyPassesWhenTheConditionTurnsTrue(t *testing.T) {
	var n atomic.Int32
	ft := &fakeTB{}
	EventuallyWithin(ft, time.Second, func() bool { return n.Add(1) >= 3 }, "three polls")
	if ft.failed.Load() || n.Load() < 3 {
		t.Fatalf("failed=%v polls=%d", ft.failed.Load(), n.Load())
	}
}

func TestEventuallyFailsWithTheMessage(t *testing.T) {
	ft := &fakeTB{}
	EventuallyWithin(ft, 20*time.Millisecond, func() bool { return false }, "backend demo ready")
	if !ft.failed.Load() || ft.msg != "not within 20ms: backend demo ready" {
		t.Fatalf("failed=%v msg=%q", ft.failed.Load(), ft.msg)
	}
}

func TestClock(t *testing.T) {
	var c Clock
	t0 := c.Now()
	if t0.IsZero() || !c.Now().Equal(t0) {
		t.Fatalf("zero Clock reads %v, then %v", t0, c.Now())
	}
	c.Advance(1500 * time.Millisecond)
	if d := c.Now().Sub(t0); d != 1500*time.Millisecond {
		t.Fatalf("after Advance(1.5s): moved %v", d)
	}
}

func TestRepeat(t *testing.T) {
	var calls, running, most atomic.Int64
	stop := Repeat(t, 3, func() {
		n := running.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		calls.Add(1)
		time.Sleep(100 * time.Microsecond)
		running.Add(-1)
	})
	Eventually(t, func() bool { return calls.Load() >= 30 }, "30 calls")
	stop()
	n := calls.Load()
	if running.Load() != 0 {
		t.Fatalf("%d calls still running after stop", running.Load())
	}
	time.Sleep(5 * time.Millisecond)
	if calls.Load() != n {
		t.Fatalf("calls went on after stop: %d, then %d", n, calls.Load())
	}
	if m := most.Load(); m < 1 || m > 3 {
		t.Fatalf("at most %d calls at once, want 1..3", m)
	}
	stop() // again: no panic
}
