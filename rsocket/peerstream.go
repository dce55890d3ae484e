package rsocket

// PeerStream returns the open stream that the peer started with id (a request this side is responding
// to), or nil when there is none: id has this side's parity, the stream has ended, or it is a stream this
// side requested. A relay uses it to answer a second request on an id still in use (see
// ingress/ws_rsocket_strict.go); the core itself ignores such a request, as Protocol.md's "Handling the
// Unexpected" says.
func (c *Conn) PeerStream(id uint32) *Stream {
	if id == 0 || !c.isPeerID(id) {
		return nil
	}
	s := c.lookup(id)
	if s == nil || s.requester {
		return nil
	}
	return s
}
