package transport

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
)

// ErrWouldBlock is the error of a write after StopWaiting that the transport could not take without
// waiting for the peer. The frame may have been cut: the Conn is unusable and should be closed.
var ErrWouldBlock = errors.New("transport: write would block (the Conn stopped waiting for its peer)")

// WaitStopper is implemented by Conns whose writes can stop waiting for the peer. Every Conn of this
// package implements it. A session calls StopWaiting when it ends, before its last flush and before
// Close, so that neither blocks while the peer does not read (its receive window and our send buffer
// full):
//
//   - a write that is waiting for the peer at that moment fails at once (the Conn may be closed for it;
//     over TLS and WebSocket a write in progress is ended unless its batch is small and the socket
//     writable);
//   - later writes write what the transport takes without waiting and fail with an error matching
//     ErrWouldBlock otherwise: plain TCP (on Unix) writes up to what the kernel's send buffer takes; the
//     pipe what fits in the peer's queue; TLS, WebSocket and other connections over a net.Conn, which
//     cannot write part of a buffer without waiting, write a batch of at most FinalWriteMax bytes when
//     the socket reports itself writable (poll, no wait) and fail otherwise;
//   - Close no longer waits to send a closing handshake (WebSocket close message, TLS close_notify)
//     that the socket does not take at once.
//
// It is called from any goroutine, any number of times, and only ever stops waiting: there is no way
// back.
type WaitStopper interface {
	StopWaiting()
}

// FinalWriteMax is the largest batch (bytes on the wire) that a TLS or WebSocket Conn writes after
// StopWaiting, and only when the socket is writable: a socket that polls writable has at least a third
// of its send buffer (4.6 KiB at the very least) free, so a write this small never waits.
const FinalWriteMax = 1 << 10

// recordOverhead bounds what TLS adds on the wire to each buffer of a batch written through a
// net.Conn (net.Buffers writes them one by one, one record each): a 5-byte header, an 8-byte explicit
// nonce (TLS 1.2 AES-GCM) or a content type byte (TLS 1.3), and a 16-byte tag.
const recordOverhead = 32

// StopWaiting calls tc's StopWaiting when tc implements WaitStopper and reports whether it did.
func StopWaiting(tc Conn) bool {
	if ws, ok := tc.(WaitStopper); ok {
		ws.StopWaiting()
		return true
	}
	return false
}

// writableNow reports whether a write of n bytes to nc surely does not wait: n is at most FinalWriteMax
// and nc's socket polls writable now. false when that cannot be known (no socket, another OS).
func writableNow(nc net.Conn, n int) bool {
	if n > FinalWriteMax || nc == nil {
		return false
	}
	rc := rawConnOf(nc)
	if rc == nil {
		return false
	}
	writable := false
	if err := rc.Control(func(fd uintptr) { writable = pollWritable(fd) }); err != nil {
		return false
	}
	return writable
}

// rawConnOf finds the socket under nc: nc itself when it is a syscall.Conn, else what it wraps, through
// a few layers of wrappers that expose it (tls.Conn and others: NetConn; fasthttp's hijacked connection:
// UnsafeConn). nil when there is none.
func rawConnOf(nc net.Conn) syscall.RawConn {
	for range 4 {
		if sc, ok := nc.(syscall.Conn); ok {
			if rc, err := sc.SyscallConn(); err == nil {
				return rc
			}
		}
		switch u := nc.(type) {
		case interface{ NetConn() net.Conn }:
			nc = u.NetConn()
		case interface{ UnsafeConn() net.Conn }:
			nc = u.UnsafeConn()
		default:
			return nil
		}
		if nc == nil {
			return nil
		}
	}
	return nil
}

// closeNow closes nc without a closing handshake that could wait (TLS: the close_notify alert, which
// crypto/tls sends with a 5 s deadline): it closes the connection underneath.
func closeNow(nc net.Conn) error {
	if t, ok := nc.(*tls.Conn); ok {
		return t.NetConn().Close()
	}
	return nc.Close()
}

func isTLS(nc net.Conn) bool {
	_, ok := nc.(*tls.Conn)
	return ok
}
