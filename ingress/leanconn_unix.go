//go:build unix

package ingress

import (
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
)

// leanChunkSize is the size of the pooled buffer a lean connection reads a new request into: a request line,
// typical headers and a small body arrive in one read.
const leanChunkSize = 4 << 10

var leanChunks = sync.Pool{New: func() any { b := make([]byte, leanChunkSize); return &b }}

// leanConn is a plain TCP client connection for fasthttp's ReduceMemoryUsage mode, in which fasthttp gives
// its read buffer back between requests and waits for the next one with a 1-byte Read; it then reads the
// rest of the request with a second read. That costs one extra system call per request, and system calls
// are most of the gateway's CPU time.
//
// leanConn turns the small read into one read of a whole request, still without holding memory while the
// connection is idle: it tries the read into a pooled chunk and, when nothing is there yet, gives the chunk
// back before it waits for the socket to become readable. The bytes beyond what the caller asked for stay
// in the chunk and are handed out by the next Reads (fasthttp reads them at once through its own buffer),
// after which the chunk goes back to the pool. Reads of a chunk's size or more go straight to the socket.
//
// A leanConn is read by one goroutine at a time, as any net.Conn that fasthttp serves; the other methods
// are the TCP connection's. A chunk still held when the connection closes is left to the garbage collector
// (Close may run on another goroutine, so it does not touch the chunk).
type leanConn struct {
	*net.TCPConn
	rc    syscall.RawConn
	chunk *[]byte // bytes read from the socket and not yet handed out: (*chunk)[r:w]; nil when none
	r, w  int

	readFD     func(fd uintptr) bool // c.readFromFD, made once
	pending    *[]byte               // readFromFD's result, taken by readChunk
	pendingN   int
	pendingErr error
}

// newLeanConn wraps c when it is a plain TCP connection; any other connection is returned as it is.
func newLeanConn(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	c2 := &leanConn{TCPConn: tc, rc: rc}
	c2.readFD = c2.readFromFD
	return c2
}

// Read implements net.Conn.
func (c *leanConn) Read(p []byte) (int, error) {
	if c.chunk != nil {
		n := copy(p, (*c.chunk)[c.r:c.w])
		c.r += n
		if c.r == c.w {
			leanChunks.Put(c.chunk)
			c.chunk = nil
		}
		return n, nil
	}
	if len(p) == 0 || len(p) >= leanChunkSize {
		return c.TCPConn.Read(p)
	}
	// fasthttp asks for the next request right after writing a response, when the client has rarely sent
	// it yet: a read now would mostly fail (EAGAIN) and park on the poller. Letting the other runnable
	// goroutines (other connections' responses) go first gives the client that time, and the read then
	// finds the request: one system call per request instead of two when the gateway is busy, and no
	// cost worth naming when it is not.
	runtime.Gosched()
	return c.readChunk(p)
}

// readChunk reads what the socket has into a pooled chunk, waiting for readability without the chunk.
func (c *leanConn) readChunk(p []byte) (int, error) {
	err := c.rc.Read(c.readFD)
	chunk, n, rerr := c.pending, c.pendingN, c.pendingErr
	c.pending, c.pendingErr = nil, nil
	if err == nil && rerr != nil {
		err = os.NewSyscallError("read", rerr)
	}
	if err == nil && n <= 0 {
		err = io.EOF
	}
	if err != nil {
		if chunk != nil {
			leanChunks.Put(chunk)
		}
		if err == io.EOF {
			return 0, io.EOF
		}
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	}
	k := copy(p, (*chunk)[:n])
	if k < n {
		c.chunk, c.r, c.w = chunk, k, n
	} else {
		leanChunks.Put(chunk)
	}
	return k, nil
}

// readFromFD is the syscall.RawConn read function of readChunk (kept as c.readFD so that a read allocates
// nothing): one read(2) into a pooled chunk; when the socket has nothing yet the chunk goes back to the pool
// and false makes RawConn wait for readability.
func (c *leanConn) readFromFD(fd uintptr) bool {
	chunk := leanChunks.Get().(*[]byte)
	var (
		n   int
		err error
	)
	for {
		n, err = syscall.Read(int(fd), *chunk)
		if err != syscall.EINTR {
			break
		}
	}
	if err == syscall.EAGAIN {
		leanChunks.Put(chunk)
		return false
	}
	c.pending, c.pendingN, c.pendingErr = chunk, n, err
	return true
}
