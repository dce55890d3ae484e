//go:build !unix

package transport

import "net"

// newRawTCP: no raw path outside Unix (rawtcp_unix.go); TCP goes through the net package.
func newRawTCP(*net.TCPConn) rawReadWriter { return nil }
