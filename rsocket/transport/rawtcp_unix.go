//go:build unix

package transport

import (
	"net"

	"github.com/rsgate/rsgate/internal/rawio"
)

// newRawTCP returns the raw reader and writer of tc (internal/rawio explains why), or nil.
func newRawTCP(tc *net.TCPConn) rawReadWriter {
	c, err := rawio.NewConn(tc)
	if err != nil {
		return nil
	}
	return c
}
