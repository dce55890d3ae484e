// Package admission holds the gateway's admission control: a concurrency limiter per route and per backend
// that adapts its limit to measured latency (gradient style, as Netflix concurrency-limits' Gradient2 and
// Envoy's adaptive concurrency filter do), with a bounded wait queue, and a gateway-wide CPU pressure signal
// (goroutine scheduling latency) that shrinks the limits of saturated routes, background routes first.
//
// The fast path (a free slot) is two atomic loads and a compare-and-swap; Release is a few atomic adds. A request
// over the limit waits on a channel (its goroutine parks: it holds no CPU and its connection is not read)
// until a slot frees, its deadline passes or the queue is full.
package admission

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Mode is how a limiter's limit is set.
type Mode uint8

const (
	// Adaptive: the limit moves between Min and Max with measured latency and CPU pressure.
	Adaptive Mode = iota
	// Fixed: the limit is Max.
	Fixed
	// Off: no limit, no queue (Acquire always admits).
	Off
)

// Priority is a route's priority: when the gateway is short of CPU or backend capacity it sheds
// Background before Normal before Critical.
type Priority uint8

const (
	Normal Priority = iota
	Critical
	Background
)

// Config is one limiter's settings.
type Config struct {
	Mode Mode
	// Max and Min bound the limit (Fixed uses Max). Min >= 1, Max >= Min.
	Max, Min int
	// Queue is how many requests may wait for a slot (0: none, over the limit is refused at once).
	Queue int
	// QueueTimeout is the longest a request waits (the caller also passes a deadline; the earlier wins).
	QueueTimeout time.Duration
	// Priority weighs the limit's share (see Limiter.Acquire) and how fast CPU pressure shrinks it.
	Priority Priority
}

// Sentinel errors of Acquire.
var (
	// ErrShed: the limit is reached and the queue is full (or there is none).
	ErrShed = errors.New("admission: over the concurrency limit, queue full")
	// ErrQueueTimeout: the request waited its longest and got no slot.
	ErrQueueTimeout = errors.New("admission: queue timeout")
)

// Limiter is a concurrency limit with a wait queue. The zero value is not usable: use New.
type Limiter struct {
	// Read by every request, written rarely (Adjust, overload).
	limit  atomic.Int64
	queued atomic.Int64 // waiters in the queue
	cfg    Config

	// Written by every request: on cache lines of their own, so that these writes do not evict the
	// fields above from the other cores' caches.
	_        [64]byte
	inflight atomic.Int64
	// Latency samples since the last adjustment (adaptive only): sum in ns and count.
	sumRTT atomic.Int64
	nRTT   atomic.Int64
	_      [64]byte

	shed atomic.Uint64

	mu      sync.Mutex // guards the queue
	waiters []*waiter  // FIFO
	head    int

	baseRTTns atomic.Int64 // published baseRTT

	// Controller state (only touched by Adjust, which the caller serialises).
	baseRTT float64 // ns, long-term average latency (the gradient's reference)
	limitF  float64
	holdoff int // steps left without growth after a pressure decrease
}

type waiter struct {
	ch chan struct{} // cap 1: a slot was handed over
}

var waiterPool = sync.Pool{New: func() any { return &waiter{ch: make(chan struct{}, 1)} }}

// New returns a limiter for cfg (values are clamped to sane bounds: Min >= 1, Max >= Min).
func New(cfg Config) *Limiter {
	cfg.Min = max(cfg.Min, 1)
	cfg.Max = max(cfg.Max, cfg.Min)
	cfg.Queue = max(cfg.Queue, 0)
	l := &Limiter{cfg: cfg}
	start := cfg.Max
	if cfg.Mode == Adaptive {
		// Start in the middle of the range (geometric-ish): low enough that a route already in trouble is
		// protected at once, high enough that normal traffic never waits while the estimate settles.
		start = max(cfg.Min, min(cfg.Max, max(cfg.Min*4, cfg.Max/4)))
	}
	l.limit.Store(int64(start))
	l.limitF = float64(start)
	return l
}

// Config returns the limiter's settings.
func (l *Limiter) Config() Config { return l.cfg }

// shareOf is the part of the limit a priority may fill: background requests are refused (or queued) while
// the limiter still has room for normal and critical ones, and normal ones before critical ones.
func (l *Limiter) shareOf(p Priority) int64 {
	lim := l.limit.Load()
	switch p {
	case Background:
		return max(1, lim*5/10)
	case Normal:
		return max(1, lim*9/10)
	}
	return lim
}

// TryAcquire takes a slot if one is free within prio's share of the limit. It never waits.
func (l *Limiter) TryAcquire(prio Priority) bool {
	if l.cfg.Mode == Off {
		return true
	}
	return l.takeBelow(l.shareOf(prio))
}

// takeBelow counts one more request in flight if fewer than max are. A compare-and-swap, not an add
// that is taken back on failure: a failed attempt never shows in inflight, so it cannot refuse a
// concurrent request that fits, nor report more in flight than the limit (Stats, metrics).
func (l *Limiter) takeBelow(max int64) bool {
	for {
		v := l.inflight.Load()
		if v >= max {
			return false
		}
		if l.inflight.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

// Acquire takes a slot, waiting in the queue until one frees, deadline passes or the limiter's
// QueueTimeout ends, whichever comes first (a zero deadline: QueueTimeout only). It returns nil (the caller
// must Release), ErrShed or ErrQueueTimeout. Priority decides the share of the limit and of the queue
// (background requests may use half the queue). The fast path does not allocate.
func (l *Limiter) Acquire(prio Priority, deadline time.Time) error {
	if l.TryAcquire(prio) {
		return nil
	}
	return l.wait(prio, deadline)
}

func (l *Limiter) wait(prio Priority, deadline time.Time) error {
	q := int64(l.cfg.Queue)
	if prio == Background {
		q /= 2
	}
	if q <= 0 || l.cfg.QueueTimeout <= 0 {
		l.shed.Add(1)
		return ErrShed
	}
	now := time.Now()
	d := l.cfg.QueueTimeout
	if !deadline.IsZero() {
		d = min(d, deadline.Sub(now))
	}
	if d <= 0 {
		l.shed.Add(1)
		return ErrQueueTimeout
	}
	l.mu.Lock()
	if l.queued.Load() >= q {
		l.mu.Unlock()
		l.shed.Add(1)
		return ErrShed
	}
	w := waiterPool.Get().(*waiter)
	l.waiters = append(l.waiters, w)
	l.queued.Add(1)
	l.mu.Unlock()
	// A slot may have freed between TryAcquire and the enqueue (its releaser saw no waiter): hand it out.
	l.wake()

	t := time.NewTimer(d)
	select {
	case <-w.ch:
		t.Stop()
		waiterPool.Put(w)
		return nil // a releaser handed its slot over: inflight already counts us
	case <-t.C:
	}
	l.mu.Lock()
	removed := l.remove(w)
	l.mu.Unlock()
	if !removed {
		// A slot was handed over just as the timer fired: take it.
		<-w.ch
		waiterPool.Put(w)
		return nil
	}
	waiterPool.Put(w)
	l.shed.Add(1)
	return ErrQueueTimeout
}

// remove takes w out of the queue; false if it is no longer there (a slot was handed to it). l.mu held.
func (l *Limiter) remove(w *waiter) bool {
	for i := l.head; i < len(l.waiters); i++ {
		if l.waiters[i] == w {
			copy(l.waiters[i:], l.waiters[i+1:])
			l.waiters[len(l.waiters)-1] = nil
			l.waiters = l.waiters[:len(l.waiters)-1]
			l.queued.Add(-1)
			if l.head == len(l.waiters) {
				l.waiters, l.head = l.waiters[:0], 0
			}
			return true
		}
	}
	return false
}

// Release frees the slot taken by Acquire; rtt is the request's latency (negative: not measured, e.g.
// canceled requests). The slot goes to the oldest waiter if the limit allows.
func (l *Limiter) Release(rtt time.Duration) {
	if l.cfg.Mode == Off {
		return
	}
	if rtt >= 0 && l.cfg.Mode == Adaptive {
		l.sumRTT.Add(int64(rtt))
		l.nRTT.Add(1)
	}
	l.inflight.Add(-1)
	if l.queued.Load() > 0 {
		l.wake()
	}
}

// handOver passes one slot (already counted in inflight) to the oldest waiter; false if there is none.
func (l *Limiter) handOver() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.head >= len(l.waiters) {
		return false
	}
	w := l.waiters[l.head]
	l.waiters[l.head] = nil
	l.head++
	if l.head == len(l.waiters) {
		l.waiters, l.head = l.waiters[:0], 0
	} else if l.head >= 64 && l.head*2 >= len(l.waiters) {
		n := copy(l.waiters, l.waiters[l.head:])
		clear(l.waiters[n:])
		l.waiters, l.head = l.waiters[:n], 0
	}
	l.queued.Add(-1)
	w.ch <- struct{}{}
	return true
}

// wake hands free slots to waiters (after a release, an enqueue or a limit increase).
func (l *Limiter) wake() {
	for l.queued.Load() > 0 {
		if !l.takeBelow(l.limit.Load()) {
			return
		}
		if !l.handOver() {
			l.inflight.Add(-1)
			return
		}
	}
}

// Stats is a snapshot of a limiter.
type Stats struct {
	Limit, InFlight, Queued int64
	Shed                    uint64
}

// Stats returns the limiter's current counters.
func (l *Limiter) Stats() Stats {
	return Stats{Limit: l.limit.Load(), InFlight: l.inflight.Load(), Queued: l.queued.Load(), Shed: l.shed.Load()}
}

// BaseRTT returns the long-term average latency of an adaptive limiter, its reference for queueing (0: not
// yet known).
func (l *Limiter) BaseRTT() time.Duration { return time.Duration(l.baseRTTns.Load()) }

// Pending returns the latency samples recorded since the last Adjust.
func (l *Limiter) Pending() int64 { return l.nRTT.Load() }

// Limit returns the current limit.
func (l *Limiter) Limit() int64 { return l.limit.Load() }

// Controller constants.
const (
	// rttTolerance: latency up to this multiple of the long-term average is not treated as queueing.
	rttTolerance = 1.5
	// minSamples: an adjustment needs at least this many samples since the last one.
	minSamples = 8
	// smoothing of the gradient's target (pressure decreases apply at once).
	smoothing = 0.2
	// longWindow: the baseline latency is an exponential average over about this many steps.
	longWindow = 100
	// holdoffSteps: after shrinking for CPU pressure, the limit does not grow for this many steps.
	holdoffSteps = 10
)

// Adjust runs one step of the adaptive controller (call it periodically, e.g. every 100 ms, from one
// goroutine). pressure is the gateway-wide CPU pressure level (0: none; see Pressure): under pressure a
// saturated limiter (requests queued, or in flight at its limit) shrinks, background by half at once,
// normal by 10% (30% once the pressure has lasted three steps), critical never for pressure (only for its
// own latency); a limiter shrunk for pressure does not grow again for holdoffSteps steps.
func (l *Limiter) Adjust(pressure int) {
	if l.cfg.Mode != Adaptive {
		return
	}
	n := l.nRTT.Swap(0)
	sum := l.sumRTT.Swap(0)
	lim := l.limitF
	inflight := float64(l.inflight.Load())
	queued := l.queued.Load()
	saturated := queued > 0 || inflight >= lim*0.9
	newLim := lim
	if n >= minSamples {
		// Gradient2: the latency of this step (short) against its long-term average (long). Latency rising
		// above tolerance x long means requests queue somewhere: shrink in proportion. The additive
		// sqrt(limit) term keeps a limit that is in use probing upwards; with noisy latency it settles
		// where limit x (1 - gradient) = sqrt(limit) instead of draining to the floor.
		avg := float64(sum) / float64(n)
		if l.baseRTT == 0 {
			l.baseRTT = avg
		} else {
			l.baseRTT += (avg - l.baseRTT) / longWindow
			if l.baseRTT > 2*avg {
				l.baseRTT *= 0.95 // latency fell for good (a backend recovered): let the baseline follow
			}
		}
		l.baseRTTns.Store(int64(l.baseRTT))
		if inflight+float64(queued) >= lim/2 { // not application-limited: the samples say something
			gradient := min(1, max(0.5, rttTolerance*l.baseRTT/avg))
			target := lim*gradient + sqrtish(lim)
			if pressure > 0 {
				target = min(target, lim) // the gateway is short of CPU: no growth
			}
			newLim = lim*(1-smoothing) + target*smoothing
		}
	}
	if pressure > 0 && saturated {
		switch l.cfg.Priority {
		case Background:
			newLim = min(newLim, lim*0.5)
			l.holdoff = holdoffSteps
		case Normal:
			if pressure >= 3 {
				newLim = min(newLim, lim*0.7)
			} else {
				newLim = min(newLim, lim*0.9)
			}
			l.holdoff = holdoffSteps
		}
	} else if l.holdoff > 0 {
		// Shrunk for CPU pressure a moment ago: do not grow straight back into it.
		l.holdoff--
		newLim = min(newLim, lim)
	}
	newLim = min(float64(l.cfg.Max), max(float64(l.cfg.Min), newLim))
	l.limitF = newLim
	l.limit.Store(int64(newLim))
	if newLim > lim {
		l.wake()
	}
}

// sqrtish is a cheap square root (Newton, a few steps): adjustments are rare, math.Sqrt would do as well.
func sqrtish(x float64) float64 {
	if x <= 1 {
		return 1
	}
	r := x / 2
	for range 8 {
		r = (r + x/r) / 2
	}
	return r
}
