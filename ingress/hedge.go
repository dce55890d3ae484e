package ingress

import (
	"context"
	"math"
	"sync/atomic"
	"time"

	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/pool"
	"github.com/rsgate/rsgate/rsocket"
)

// Hedging (route key hedge, idempotent request-response routes only). The first try is sent as usual;
// when it has not answered after hedge.after (a duration, or p95: the route's observed 95th percentile
// answer latency), a copy goes to another connection, preferably of another address, if the retry budget
// allows it (hedges and retries share it). Up to hedge.max copies are sent that way, one per period. The
// first answer wins; every other try is canceled (the backend gets CANCEL) and its late answer dropped.
// A try that fails is retried under the retry rules once no other try is running.
//
// Until the route has seen minSketchSamples answers, p95 is unknown and nothing is hedged.

// tryResult is the outcome of one concurrent try.
type tryResult struct {
	msg   *rsocket.Message
	err   error
	m     *poolMember
	id    uint32
	hedge bool
	start time.Time
}

// maxTries bounds the tries of one hedged request: the first, the hedges and the retries.
const maxTries = 1 + mapping.MaxHedges + mapping.MaxRetryAttempts

// hedgeDelay returns how long to wait before the next hedge; 0: do not hedge (p95 not known yet).
func (pol *retryPolicy) hedgeDelay() time.Duration {
	if !pol.hedgeP95 {
		return pol.hedgeAfter
	}
	return pol.latency.p95()
}

// hedge runs the tries of one request concurrently and returns the first answer (or the last error).
// It returns only when every try has ended, so md and body (the request's buffers) may be reused after.
func (s *Server) hedge(c *callCtx, rt *route, rq *request, p *pool.Pool, first *poolMember, md, body []byte) (*rsocket.Message, error) {
	pol := rt.retry
	results := make(chan tryResult, maxTries)
	var cancels [maxTries]context.CancelFunc
	launched, running := 0, 0
	launch := func(m *poolMember, hedge bool) {
		tctx, cancel := context.WithCancel(c)
		cancels[launched] = cancel
		launched++
		running++
		start := time.Now()
		go func() {
			var id uint32
			msg, err := pol.try(tctx, m, md, body, &id, start)
			results <- tryResult{msg: msg, err: err, m: m, id: id, hedge: hedge, start: start}
		}()
	}
	launch(first, false)
	var (
		timer *time.Timer
		tick  <-chan time.Time
	)
	delay := pol.hedgeDelay()
	if delay > 0 && p != nil {
		timer = time.NewTimer(delay)
		tick = timer.C
	}
	hedgesLeft, retriesLeft := pol.hedges, pol.attempts-1
	var (
		winner  *rsocket.Message
		lastErr error
	)
	for running > 0 {
		select {
		case r := <-results:
			running--
			if r.err == nil {
				if winner != nil {
					r.msg.Release() // a second answer: the first one won
					continue
				}
				winner = r.msg
				rq.upstream, rq.streamID = r.m, r.id
				if r.hedge {
					inc(pol.hedgeWins)
				}
				pol.latency.observe(time.Since(r.start))
				for i := 0; i < launched; i++ {
					cancels[i]() // the others get CANCEL
				}
				continue
			}
			if winner != nil {
				continue
			}
			lastErr = r.err
			if r.id != 0 {
				rq.upstream, rq.streamID = r.m, r.id
			}
			cond := condition(r.err, c.Cause(), r.id != 0)
			if running > 0 || cond == 0 || pol.on&cond == 0 || retriesLeft == 0 || launched == maxTries || p == nil {
				continue
			}
			if !pol.budget.withdraw(time.Now()) {
				inc(pol.exhausted)
				continue
			}
			if next, err := p.PickOther(r.m); err == nil {
				retriesLeft--
				pol.countRetry(cond)
				launch(next, false)
			}
		case <-tick:
			tick = nil
			if winner != nil || hedgesLeft == 0 || launched == maxTries || c.Err() != nil {
				continue
			}
			if !pol.budget.withdraw(time.Now()) {
				inc(pol.exhausted)
				continue
			}
			next, err := p.PickOther(first)
			if err != nil {
				continue
			}
			hedgesLeft--
			inc(pol.hedged)
			launch(next, true)
			if hedgesLeft > 0 {
				timer.Reset(delay)
				tick = timer.C
			}
		}
	}
	if timer != nil {
		timer.Stop()
	}
	for i := 0; i < launched; i++ {
		cancels[i]()
	}
	if winner != nil {
		return winner, nil
	}
	return nil, lastErr
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
