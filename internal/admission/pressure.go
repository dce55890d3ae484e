package admission

import (
	"runtime/metrics"
	"time"
)

// Pressure measures whether the gateway is short of CPU: the 99th percentile of goroutine scheduling
// latency (the time runnable goroutines wait for a processor, from runtime/metrics) over the last interval.
// When thousands of goroutines of a saturated route keep the run queues full, every other request waits
// in them too; that wait is what a fast route's tail latency is made of.
type Pressure struct {
	threshold time.Duration
	samples   []metrics.Sample
	prev      []uint64 // bucket counts of the previous reading
	level     int
	last      time.Duration
}

// DefaultPressureThreshold is the scheduling-latency p99 above which the gateway counts as short of CPU.
const DefaultPressureThreshold = 2 * time.Millisecond

const schedLatencies = "/sched/latencies:seconds"

// NewPressure returns a monitor that reports pressure when the scheduling-latency p99 of an interval is
// above threshold (<= 0: DefaultPressureThreshold).
func NewPressure(threshold time.Duration) *Pressure {
	if threshold <= 0 {
		threshold = DefaultPressureThreshold
	}
	p := &Pressure{threshold: threshold, samples: []metrics.Sample{{Name: schedLatencies}}}
	p.Sample()
	p.level = 0
	return p
}

// Sample reads the scheduler histogram and returns the pressure level: 0 when the p99 scheduling latency
// since the previous Sample was under the threshold, else the number of consecutive intervals it was over.
func (p *Pressure) Sample() int {
	metrics.Read(p.samples)
	if p.samples[0].Value.Kind() != metrics.KindFloat64Histogram {
		return 0
	}
	h := p.samples[0].Value.Float64Histogram()
	if len(p.prev) != len(h.Counts) {
		p.prev = make([]uint64, len(h.Counts))
		copy(p.prev, h.Counts)
		return 0
	}
	var total uint64
	for i, c := range h.Counts {
		total += c - p.prev[i]
	}
	p.last = 0
	if total >= 20 {
		target := total - total/100 // the 99th percentile's rank
		var acc uint64
		for i, c := range h.Counts {
			acc += c - p.prev[i]
			if acc >= target {
				// Buckets[i] is the lower bound of bucket i (Counts has one entry fewer than Buckets).
				p.last = time.Duration(h.Buckets[i] * float64(time.Second))
				break
			}
		}
	}
	copy(p.prev, h.Counts)
	if p.last > p.threshold {
		p.level++
	} else {
		p.level = 0
	}
	return p.level
}

// Last returns the scheduling-latency p99 of the last interval.
func (p *Pressure) Last() time.Duration { return p.last }
