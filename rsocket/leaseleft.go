package rsocket

// LeaseLeft returns how many more requests the peer's newest LEASE allows now: 0 when it has expired or
// is used up, and 0 while the connection drains or after it closed. leased is false when the connection
// did not negotiate leases (then requests are not limited by them and n is 0).
func (c *Conn) LeaseLeft() (n uint32, leased bool) {
	if !c.lease.required {
		return 0, false
	}
	if c.Draining() {
		return 0, true
	}
	c.lease.mu.Lock()
	defer c.lease.mu.Unlock()
	if !c.lease.now().Before(c.lease.expiry) {
		return 0, true
	}
	return c.lease.left, true
}
