//go:build !unix

package ingress

import (
	"net"
	"sync/atomic"
)

// newLeanConn returns c unchanged: the lean read path (leanconn_unix.go) needs Unix read(2) on the socket.
func newLeanConn(c net.Conn, _ *atomic.Int32) net.Conn { return c }
