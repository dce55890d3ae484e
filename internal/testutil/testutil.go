// Package testutil holds the helpers the tests of several packages share: Eventually (poll a condition
// until it holds or a deadline passes), Repeat (load from n goroutines until stopped) and Clock (a manual
// clock). It imports nothing of rsgate, so any package's internal tests can use it without an import cycle; the RSocket helpers (an echo handler, a collecting subscriber) are in
// testutil/rstest, which imports rsocket and so serves every package but rsocket itself.
package testutil

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// DefaultWait is how long Eventually waits when the caller gives no deadline: generous, because the test
// machines are shared and slow; a passing condition returns at once.
const DefaultWait = 10 * time.Second

// pollEvery is the poll period of Eventually.
const pollEvery = 2 * time.Millisecond

// Eventually polls cond every few milliseconds until it returns true, and fails the test naming what
// (what the test waited for) if it has not within DefaultWait.
func Eventually(t testing.TB, cond func() bool, what string) {
	t.Helper()
	EventuallyWithin(t, DefaultWait, cond, what)
}

// EventuallyWithin is Eventually with an explicit deadline.
func EventuallyWithin(t testing.TB, wait time.Duration, cond func() bool, what string) {
	t.Helper()
	if !poll(wait, cond) {
		t.Fatalf("not within %v: %s", wait, what)
	}
}

// poll reports whether cond held within wait.
func poll(wait time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollEvery)
	}
	return true
}

// Clock is a manual clock for code that takes a `Now func() time.Time` (lease expiry in rsocket, latency
// decay in pool): time moves only by Advance, so a test of a TTL or a decay needs no sleep. The zero
// Clock reads one hour after the Unix epoch (never the zero time.Time). Safe for concurrent use.
type Clock struct{ ns atomic.Int64 }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return time.Unix(0, int64(time.Hour)+c.ns.Load()) }

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// Repeat calls f over and over from n goroutines until stop is called, and returns stop: it ends the
// loops and waits until every goroutine has returned (a call of f in progress finishes first). stop may be
// called more than once; it also runs when the test ends, so a test that fails early leaves no goroutine.
func Repeat(t testing.TB, n int, f func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				f()
			}
		})
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			close(done)
			wg.Wait()
		})
	}
	t.Cleanup(stop)
	return stop
}
