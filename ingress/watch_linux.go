package ingress

import (
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// disconnectWatch notices a client that closes (FIN) or resets (RST) its connection while a stream is being
// served and nothing is being written, by waiting for the socket to become readable and peeking at it. It
// works on plain TCP connections (net.Conn implementing syscall.Conn); TLS and in-memory connections are not
// watched (nil watch). While it runs nobody else reads the connection: fasthttp reads the next request only
// after the response, and stop is called before the response ends.
type disconnectWatch struct {
	conn     net.Conn
	stopping atomic.Bool
	exited   chan struct{}
}

// aLongTimeAgo is a read deadline in the past: it wakes a goroutine waiting for readability.
var aLongTimeAgo = time.Unix(1, 0)

func watchDisconnect(conn net.Conn, c *callCtx) *disconnectWatch {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	// fasthttp's per-request read deadline may pass while the stream runs; the watch must not end then.
	// fasthttp sets the deadline again before it reads the next request.
	if conn.SetReadDeadline(time.Time{}) != nil {
		return nil
	}
	w := &disconnectWatch{conn: conn, exited: make(chan struct{})}
	go func() {
		defer close(w.exited)
		gone := false
		_ = rc.Read(func(fd uintptr) bool {
			if w.stopping.Load() {
				return true
			}
			var b [1]byte
			for {
				n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
				switch {
				case err == syscall.EINTR:
					continue
				case err == syscall.EAGAIN:
					return false // nothing yet: wait for readability
				case err != nil, n == 0:
					gone = true // reset, or orderly shutdown (FIN)
				}
				// n > 0: the client sent more (a pipelined request); it is still there and we cannot
				// tell more without reading, so stop watching.
				return true
			}
		})
		if gone && !w.stopping.Load() {
			c.cancel(&ErrClientGone)
		}
	}()
	return w
}

// stop ends the watch and waits for its goroutine. Safe on a nil watch.
func (w *disconnectWatch) stop() {
	if w == nil {
		return
	}
	w.stopping.Store(true)
	_ = w.conn.SetReadDeadline(aLongTimeAgo)
	<-w.exited
	_ = w.conn.SetReadDeadline(time.Time{})
}
