package ingress

import "net"

// under returns the first of c and the connections it wraps (a few layers deep, through NetConn: *tls.Conn
// and our listener wrappers; UnsafeConn: fasthttp's hijacked connection) for which match holds, or the
// zero T. The limits, the lingering close and the server-side cut all need something under the
// connection fasthttp hands out: the limitedConn, the socket to duplicate, the TCP connection's linger.
func under[T any](c net.Conn, match func(net.Conn) (T, bool)) T {
	for range 8 {
		if c == nil {
			break
		}
		if v, ok := match(c); ok {
			return v
		}
		switch u := c.(type) {
		case interface{ NetConn() net.Conn }:
			c = u.NetConn()
		case interface{ UnsafeConn() net.Conn }:
			c = u.UnsafeConn()
		default:
			c = nil
		}
	}
	var zero T
	return zero
}

// setLingerZero makes the close of c (or of the TCP connection under its wrappers) send a reset instead
// of a FIN: a refused or cut connection then looks broken to the peer, as on a real network failure.
func setLingerZero(c net.Conn) {
	type linger interface{ SetLinger(sec int) error } // *net.TCPConn, leanConn
	if l := under(c, func(c net.Conn) (linger, bool) { l, ok := c.(linger); return l, ok }); l != nil {
		_ = l.SetLinger(0)
	}
}
