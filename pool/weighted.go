package pool

import (
	"math"
	"sync/atomic"
)

// Weighted balancing (balancer: weighted, the default), in the manner of rsocket-java's
// WeightedLoadbalanceStrategy: two random members are drawn (as for P2C) and the one with the higher
// weight is taken,
//
//	weight = availability x success / (1 + latency x (outstanding + 1))
//
//   - availability is 1, or for a backend that issues leases the share of the connection's lease that is
//     left over the requests already waiting on it: left / (left + outstanding + 1);
//   - success is a time-decayed average of request outcomes (1 = answered, 0 = failed), so an instance
//     that fails fast does not attract traffic; its failure share fades while the connection gets no
//     samples, so an avoided connection is tried again;
//   - latency is the predicted latency: the streaming median of the connection's recent round trips,
//     pushed away from the band between its 20th and 80th percentile estimates by (1 + distance/band)^4
//     (a connection that is slower than its usual self is punished hard, one faster than usual is
//     favoured), decayed towards 0 while the connection gets no samples (an idle instance is tried again);
//   - a connection with requests outstanding and no sample yet (a new connection) has the startup
//     penalty as its latency: it takes one request at a time until its first answer.
//
// The estimates are updated under the member's mutex in Done (one more multiply-add per quantile) and read
// with atomic loads in Pick: Pick stays lock-free and does not allocate.

// quantiles is a member's latency sketch: three streaming quantile estimates (nanoseconds, float64 bits).
// Each follows the samples with multiplicative steps: up by a factor (1 + rate x q) for a sample above
// the estimate, down by (1 - rate x (1-q)) for one below, which settles where a share q of the samples
// lies below (stochastic gradient descent on the pinball loss, in log space so the step scales with the
// value). The first sample initialises all three.
type quantiles struct {
	low, median, high atomic.Uint64 // q = 0.2, 0.5, 0.8
	success           atomic.Uint64 // decayed success average, 1 = all answered; float64 bits
}

const (
	quantileRate = 0.1
	qLow         = 0.2
	qHigh        = 0.8
	// startupPenalty is the latency of a connection with requests outstanding and no sample yet
	// (rsocket-java: Long.MAX_VALUE >> 12 ns); like the peak EWMA penalty it keeps + outstanding exact.
	startupPenalty = float64(1 << 46)
)

// reset forgets the samples (a new connection in the slot).
func (q *quantiles) reset() {
	q.low.Store(0)
	q.median.Store(0)
	q.high.Store(0)
	q.success.Store(math.Float64bits(1))
}

func stepQuantile(v *atomic.Uint64, x, q float64) {
	e := math.Float64frombits(v.Load())
	switch {
	case e == 0:
		e = x
	case x > e:
		e *= 1 + quantileRate*q
		if e > x {
			e = x
		}
	case x < e:
		e *= 1 - quantileRate*(1-q)
		if e < x {
			e = x
		}
	}
	v.Store(math.Float64bits(e))
}

// observe folds one answered request's round trip (ns) into the sketch, or a failure into the success
// average. w is the weight the previous average keeps (exp(-dt/tau)). Caller holds the member's mutex.
func (q *quantiles) observe(rtt float64, failed bool, w float64) {
	s := math.Float64frombits(q.success.Load())
	if failed {
		q.success.Store(math.Float64bits(s * w))
		return
	}
	q.success.Store(math.Float64bits(s*w + (1 - w)))
	if rtt < 1 {
		rtt = 1
	}
	stepQuantile(&q.low, rtt, qLow)
	stepQuantile(&q.median, rtt, 0.5)
	stepQuantile(&q.high, rtt, qHigh)
}

// weight is the member's weighted-balancer score at pool clock ref (higher is better). The latency
// estimate decays towards 0 with the time since the member's last sample, measured to ref, the newer of
// the two compared members' sample times (no clock read in Pick; see cheaper).
func (m *Member) weight(ref int64) float64 {
	out := float64(m.outstanding.Load())
	q := &m.quant
	decay := 1.0
	if dt := ref - m.stamp.Load(); dt > 0 {
		decay = math.Exp(-float64(dt) / m.pool.tau)
	}
	lat := math.Float64frombits(q.median.Load())
	if lat == 0 {
		if out > 0 {
			lat = startupPenalty + out
		}
	} else {
		lat *= decay
		low := math.Float64frombits(q.low.Load()) * decay
		high := max(math.Float64frombits(q.high.Load())*decay, low*1.001)
		band := max(high-low, 1)
		switch {
		case lat < low:
			lat /= bandFactor((low - lat) / band)
		case lat > high:
			lat *= bandFactor((lat - high) / band)
		}
	}
	// The failure share decays like the latency: a connection that failed and was avoided since is tried
	// again after a while instead of being starved for good.
	avail := 1 - (1-math.Float64frombits(q.success.Load()))*decay
	if m.pool.backend.Lease {
		if c := m.conn.Load(); c != nil {
			left, _ := c.LeaseLeft()
			avail *= float64(left) / (float64(left) + out + 1)
		}
	}
	return avail / (1 + lat*(out+1))
}

// bandFactor is (1 + alpha)^4, the out-of-band factor (rsocket-java's EXP_FACTOR is 4).
func bandFactor(alpha float64) float64 {
	f := 1 + alpha
	f *= f
	return f * f
}

// better returns the member with the higher weight; a is already a random one of the two, so ties go to a.
func better(a, b *Member) *Member {
	ref := max(a.stamp.Load(), b.stamp.Load())
	if b.weight(ref) > a.weight(ref) {
		return b
	}
	return a
}

// compare returns the preferred member of a pair under the pool's balancer.
func (p *Pool) compare(a, b *Member) *Member {
	if p.weighted {
		return better(a, b)
	}
	return cheaper(a, b)
}
