package ingress

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/pool"
	"github.com/rsgate/rsgate/rsocket"
)

// Hedging (route key hedge, idempotent request-response routes only). The first try runs in the handler's
// goroutine as usual, with a pooled timer armed for hedge.after (a duration, or p95: the route's observed
// 95th percentile answer latency). When the timer fires before the first try has answered, its goroutine
// sends a copy to another connection, preferably of another address, if the retry budget allows it (hedges
// and retries share it); up to hedge.max copies, one per period. The first answer wins:
//
//   - the first try answers: the running copies are canceled (the backend gets CANCEL);
//   - a copy answers: it ends the call context with errHedgeWon, which cancels the first try (and sends
//     CANCEL); the handler answers with the copy's message.
//
// When the first try fails while copies run, the handler waits for them; when everything failed, the retry
// rules go on from there. A request that answers before hedge.after costs a timer reset and stop and
// no allocation. Until the route has seen minSketchSamples answers, p95 is unknown and nothing is hedged.

// errHedgeWon is the call context's cause when a hedged copy answered first.
var errHedgeWon = errors.New("ingress: a hedged copy answered first")

// hedgeDelay returns how long to wait before the next hedge; 0: do not hedge (p95 not known yet).
func (pol *retryPolicy) hedgeDelay() time.Duration {
	if !pol.hedgeP95 {
		return pol.hedgeAfter
	}
	return pol.latency.p95()
}

// hedger is the pooled per-request state of a hedged call. Its timer is created once and reused.
type hedger struct {
	timer *time.Timer
	wg    sync.WaitGroup // the armed timer and the running copies

	// Set by the handler before the timer is armed, read-only while it may fire.
	s          *Server
	pol        *retryPolicy
	c          *callCtx
	p          *pool.Pool
	first      *poolMember
	md, body   []byte
	delay      time.Duration
	hedgesLeft int

	mu      sync.Mutex
	done    bool // the handler stopped waiting: copies that answer now are dropped
	won     bool // a copy answered first: msg, m, id are its answer
	msg     *rsocket.Message
	m       *poolMember
	id      uint32
	running int
	failed  error // the last copy's failure
	cancels [mapping.MaxHedges]context.CancelFunc
	ncancel int
}

var hedgerPool = sync.Pool{New: func() any {
	h := &hedger{}
	h.timer = time.AfterFunc(time.Hour, h.fire)
	h.timer.Stop()
	return h
}}

// hedgedTry runs the first try of a hedged request on m, with the hedges beside it. It returns the winning
// answer, or the failure (of the first try, or of the last copy when the first try failed too) with its
// connection and stream id. Every copy has ended when it returns.
func (s *Server) hedgedTry(c *callCtx, pol *retryPolicy, p *pool.Pool, m *poolMember, md, body []byte, delay time.Duration) (
	msg *rsocket.Message, last *poolMember, id uint32, err error) {
	h := hedgerPool.Get().(*hedger)
	h.s, h.pol, h.c, h.p, h.first, h.md, h.body, h.delay, h.hedgesLeft = s, pol, c, p, m, md, body, delay, pol.hedges
	h.wg.Add(1)
	h.timer.Reset(delay)

	start := time.Now()
	msg, err = pol.try(c, c, m, md, body, &id, start)
	last = m
	if err == nil {
		pol.latency.observe(time.Since(start))
	}

	h.mu.Lock()
	if err == nil || h.won || h.running == 0 {
		h.done = true // copies that answer from now on are dropped
		if err == nil || h.won {
			for i := 0; i < h.ncancel; i++ {
				h.cancels[i]() // the others are not needed: CANCEL
			}
		}
	} else {
		h.hedgesLeft = 0 // the first try failed while copies run: wait for them, send no more
	}
	h.mu.Unlock()
	if h.timer.Stop() {
		h.wg.Done() // the armed timer will not fire
	}
	h.wg.Wait() // every copy has ended: md and body are free again
	h.mu.Lock()
	h.done = true
	won := h.won
	if !won && err != nil && h.failed != nil {
		err, last, id = h.failed, h.m, h.id
	}
	h.mu.Unlock()
	if won {
		if msg != nil {
			msg.Release() // answered at the same moment as the copy
		}
		msg, err, last, id = h.msg, nil, h.m, h.id
	}
	for i := 0; i < h.ncancel; i++ {
		h.cancels[i]()
	}
	h.reset()
	hedgerPool.Put(h)
	return msg, last, id, err
}

func (h *hedger) reset() {
	h.s, h.pol, h.c, h.p, h.first, h.md, h.body = nil, nil, nil, nil, nil, nil, nil
	h.done, h.won, h.msg, h.m, h.id, h.running, h.failed = false, false, nil, nil, 0, 0, nil
	for i := range h.cancels {
		h.cancels[i] = nil
	}
	h.ncancel = 0
}

// fire is the timer's function: it sends one copy (and arms the timer for the next one, hedge.max > 1),
// then waits for that copy's answer in the timer's goroutine.
func (h *hedger) fire() {
	defer h.wg.Done() // the arm that made the timer fire
	h.mu.Lock()
	pol := h.pol
	if h.done || h.c.Err() != nil || h.hedgesLeft == 0 || h.ncancel == len(h.cancels) {
		h.mu.Unlock()
		return
	}
	if !pol.budget.withdraw(time.Now()) {
		h.mu.Unlock()
		inc(pol.exhausted)
		return
	}
	m, err := h.p.PickOther(h.first)
	if err != nil {
		h.mu.Unlock()
		return
	}
	h.hedgesLeft--
	ctx, cancel := childContext(h.c, h.c, time.Time{})
	h.cancels[h.ncancel] = cancel
	h.ncancel++
	h.running++
	h.wg.Add(1) // this copy
	if h.hedgesLeft > 0 {
		h.wg.Add(1)
		h.timer.Reset(h.delay)
	}
	h.mu.Unlock()
	inc(pol.hedged)

	defer h.wg.Done()
	var id uint32
	start := time.Now()
	msg, err := pol.try(h.c, ctx, m, h.md, h.body, &id, start)
	h.mu.Lock()
	h.running--
	switch {
	case err == nil && !h.done && !h.won:
		h.won, h.msg, h.m, h.id = true, msg, m, id
		h.mu.Unlock()
		inc(pol.hedgeWins)
		pol.latency.observe(time.Since(start))
		h.c.cancel(&errHedgeWon) // the first try gets CANCEL and returns
		return
	case err == nil:
		msg.Release() // someone else answered first
	case !h.won:
		h.failed, h.m, h.id = err, m, id
	}
	h.mu.Unlock()
	cancel()
}

// latencySketch estimates a route's 95th percentile answer latency: a histogram over logarithmic buckets
// (four per doubling, from 1 µs), recomputed every sketchEvery samples and halved when it holds more than
// sketchMax samples, so it follows the recent latency. observe is two atomic adds.
type latencySketch struct {
	counts [sketchBuckets]atomic.Uint32
	n      atomic.Uint64
	p95ns  atomic.Int64
}

const (
	sketchBuckets    = 4 * 36 // 1 µs .. 2^36 µs (19 hours)
	sketchEvery      = 64
	sketchMax        = 4096
	minSketchSamples = 64
)

func sketchBucket(d time.Duration) int {
	us := float64(d) / 1e3
	if us <= 1 {
		return 0
	}
	return min(int(4*math.Log2(us)), sketchBuckets-1)
}

// bucketTop is the upper bound of bucket i.
func bucketTop(i int) time.Duration {
	return time.Duration(math.Exp2(float64(i+1)/4) * 1e3)
}

func (s *latencySketch) observe(d time.Duration) {
	s.counts[sketchBucket(d)].Add(1)
	if s.n.Add(1)%sketchEvery == 0 {
		s.recompute()
	}
}

// recompute sets the p95 estimate from the histogram (concurrent calls only race on a hint).
func (s *latencySketch) recompute() {
	var total uint64
	for i := range s.counts {
		total += uint64(s.counts[i].Load())
	}
	if total == 0 {
		return
	}
	target := uint64(math.Ceil(0.95 * float64(total)))
	var cum uint64
	for i := range s.counts {
		cum += uint64(s.counts[i].Load())
		if cum >= target {
			s.p95ns.Store(int64(bucketTop(i)))
			break
		}
	}
	if total > sketchMax {
		for i := range s.counts {
			if v := s.counts[i].Load(); v > 0 {
				s.counts[i].Store(v / 2)
			}
		}
	}
}

// p95 returns the estimate, 0 until minSketchSamples answers were seen.
func (s *latencySketch) p95() time.Duration {
	if s.n.Load() < minSketchSamples {
		return 0
	}
	return time.Duration(s.p95ns.Load())
}
