package rsocket

import (
	"sync"
	"time"

	"github.com/rsgate/rsgate/rsocket/frame"
)

// leaseState is the LEASE accounting of both directions ("Lease Semantics"). required and enforce are
// fixed when the connection is set up (the client's L flag); the rest is guarded by mu.
type leaseState struct {
	required bool             // we must hold a lease from the peer to send requests
	enforce  bool             // requests from the peer need a lease we issued (else ERROR[REJECTED])
	now      func() time.Time // the clock of expiry (Options.Now)

	mu           sync.Mutex
	left         uint32    // requests the peer's newest LEASE still allows
	expiry       time.Time // ... until then
	issuedLeft   uint32    // requests our newest LEASE still allows the peer
	issuedExpiry time.Time
}

// take consumes one request of the peer's lease: ErrNoLease when none is valid. Fails fast, so that a
// pool can pick another connection.
func (l *leaseState) take() error {
	if !l.required {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.left == 0 || !l.now().Before(l.expiry) {
		return ErrNoLease
	}
	l.left--
	return nil
}

// takeIssued consumes one request of the lease we issued; false: reject the request.
func (l *leaseState) takeIssued() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.issuedLeft == 0 || !l.now().Before(l.issuedExpiry) {
		return false
	}
	l.issuedLeft--
	return true
}

// onLease records a LEASE from the peer: the newest replaces any earlier one.
func (c *Conn) onLease(ttlMillis, requests uint32) {
	if !c.lease.required {
		return // we did not negotiate leases; ignore
	}
	c.lease.mu.Lock()
	c.lease.left = requests
	c.lease.expiry = c.lease.now().Add(time.Duration(ttlMillis) * time.Millisecond)
	c.lease.mu.Unlock()
}

// LeaseAvailable reports whether a request may be sent now: false while draining or closed; true when
// the peer does not require leases, otherwise whether its newest LEASE is unexpired and not used up.
func (c *Conn) LeaseAvailable() bool {
	if c.Draining() {
		return false
	}
	if !c.lease.required {
		return true
	}
	c.lease.mu.Lock()
	defer c.lease.mu.Unlock()
	return c.lease.left > 0 && c.lease.now().Before(c.lease.expiry)
}

// SendLease issues a lease to the peer: it may send up to requests requests within ttl (millisecond
// resolution). It replaces the previous lease. Requests beyond it are answered with ERROR[REJECTED] when
// leases were negotiated (SETUP with L).
func (c *Conn) SendLease(ttl time.Duration, requests uint32, md []byte) error {
	if requests > frame.MaxRequestN {
		requests = frame.MaxRequestN
	}
	ms := durationMillis(ttl)
	c.lease.mu.Lock()
	c.lease.issuedLeft = requests
	c.lease.issuedExpiry = c.lease.now().Add(time.Duration(ms) * time.Millisecond)
	c.lease.mu.Unlock()
	return c.sendControl(control{t: frame.TypeLease, ttl: ms, n: requests, data: md})
}
