package ingress

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/frame"
)

// Leases to RSocket clients (interaction rsocket). A client whose SETUP sets the L flag ("honor lease")
// may send requests only within the LEASEs the gateway issues, and the gateway issues them from the
// capacity it sees on the route's backend (pool.Capacity: the max_inflight headroom, and for a backend
// that leases to the gateway, the requests its leases still allow), shared evenly between the route's
// leased sessions of that backend:
//
//   - right after the handshake and then every clientLeaseEvery, a LEASE of clientLeaseTTL for
//     max(1, capacity / sessions) requests;
//   - when the backend has no capacity (every connection down, max_inflight reached, its own leases used
//     up), a LEASE of 1 request for 1 ms, which replaces the previous one ("the newest LEASE replaces
//     earlier ones"): the client holds its requests instead of having them REJECTED, and resumes with the
//     next renewal after capacity returns.
//
// A client that ignores its lease gets ERROR[REJECTED] from the rsocket core for the excess requests.
// Clients without the L flag are unaffected.

const (
	clientLeaseTTL   = time.Second
	clientLeaseEvery = 500 * time.Millisecond
)

// leaseKey identifies the leased sessions of one backend on one server.
type leaseKey struct {
	s       *Server
	backend string
}

var leaseSessions struct {
	mu sync.Mutex
	m  map[leaseKey]*atomic.Int64
}

func leaseSessionCount(s *Server, backend string) *atomic.Int64 {
	leaseSessions.mu.Lock()
	defer leaseSessions.mu.Unlock()
	if leaseSessions.m == nil {
		leaseSessions.m = map[leaseKey]*atomic.Int64{}
	}
	k := leaseKey{s, backend}
	n := leaseSessions.m[k]
	if n == nil {
		n = new(atomic.Int64)
		leaseSessions.m[k] = n
	}
	return n
}

// leaseGrant is the number of requests the next LEASE to one of sessions clients allows (0: none now).
func leaseGrant(capacity, sessions int64) uint32 {
	if capacity <= 0 {
		return 0
	}
	g := capacity / max(sessions, 1)
	return uint32(min(max(g, 1), frame.MaxRequestN))
}

// startLeases issues leases to the client connection c until it ends.
func (ss *rsSession) startLeases(c *rsocket.Conn) {
	backend := ss.rt.backend
	sessions := leaseSessionCount(ss.s, backend)
	sessions.Add(1)
	send := func() bool {
		var capacity int64
		if p := ss.s.pools.Get(backend); p != nil {
			capacity = p.Capacity()
		}
		var err error
		if n := leaseGrant(capacity, sessions.Load()); n > 0 {
			err = c.SendLease(clientLeaseTTL, n, nil)
		} else {
			err = c.SendLease(time.Millisecond, 1, nil)
		}
		return err == nil
	}
	if !send() {
		sessions.Add(-1)
		return
	}
	go func() {
		defer sessions.Add(-1)
		t := time.NewTicker(clientLeaseEvery)
		defer t.Stop()
		for {
			select {
			case <-c.Done():
				return
			case <-t.C:
				if !send() {
					return
				}
			}
		}
	}()
}
