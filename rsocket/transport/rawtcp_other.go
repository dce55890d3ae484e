//go:build !linux

package transport

import "net"

// rawTCP is Linux only (rawtcp_linux.go); elsewhere TCP goes through the net package.
type rawTCP struct{}

func newRawTCP(*net.TCPConn) *rawTCP { return nil }

func (*rawTCP) Read([]byte) (int, error)         { panic("unreachable") }
func (*rawTCP) Write([]byte) (int, error)        { panic("unreachable") }
func (*rawTCP) writeVec([][]byte) (int64, error) { panic("unreachable") }
