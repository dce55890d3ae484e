//go:build !linux

package ingress

import "net"

// disconnectWatch is available on Linux only; elsewhere a gone client is noticed on the next write.
type disconnectWatch struct{}

func watchDisconnect(net.Conn, *callCtx) *disconnectWatch { return nil }

func (w *disconnectWatch) stop() {}
