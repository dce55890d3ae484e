//go:build !unix

package ingress

import "net"

// newLeanConn returns c unchanged: the lean read path (leanconn_unix.go) needs Unix read(2) on the socket.
func newLeanConn(c net.Conn) net.Conn { return c }
