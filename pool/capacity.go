package pool

import "math"

// Capacity returns how many more requests the pool can take right now: 0 without a ready connection,
// else the max_inflight headroom, and for a backend that issues leases at most the requests its current
// leases still allow. The ingress sizes the leases it issues to its own RSocket clients from it
// (ws_lease.go). It reads every member when leases are on; call it periodically, not per request.
func (p *Pool) Capacity() int64 {
	if !p.Ready() {
		return 0
	}
	c := int64(math.MaxInt64)
	if p.maxInflight > 0 {
		c = max(p.maxInflight-p.inflight.Load(), 0)
	}
	if p.backend.Lease {
		c = min(c, int64(p.leaseLeft()))
	}
	return c
}
