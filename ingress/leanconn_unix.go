//go:build unix

package ingress

import (
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/rsgate/rsgate/internal/rawio"
)

// leanChunkSize is the size of the pooled buffer a lean connection reads a new request into: a request line,
// typical headers and a small body arrive in one read.
const leanChunkSize = 4 << 10

// leanYieldBudget bounds the yields before an idle read (see Read) between two wake-ups by the network
// poller, counted over the connections of one listener.
const leanYieldBudget = 64

var leanChunks = sync.Pool{New: func() any { b := make([]byte, leanChunkSize); return &b }}

// leanConn is a plain TCP client connection. In fasthttp's ReduceMemoryUsage mode, fasthttp gives
// its read buffer back between requests and waits for the next one with a 1-byte Read; it then reads the
// rest of the request with a second read. That costs one extra system call per request, and system calls
// are most of the gateway's CPU time.
//
// leanConn turns the small read into one read of a whole request, still without holding memory while the
// connection is idle: it tries the read into a pooled chunk and, when nothing is there yet, gives the chunk
// back before it waits for the socket to become readable. The bytes beyond what the caller asked for stay
// in the chunk and are handed out by the next Reads (fasthttp reads them at once through its own buffer),
// after which the chunk goes back to the pool. Reads of a chunk's size or more go straight to the socket.
// Reads and writes use raw system calls (internal/rawio) through the connection's syscall.RawConn, which
// waits for readiness and keeps the deadlines.
//
// A leanConn is read by one goroutine at a time, as any net.Conn that fasthttp serves; writes may come
// from several (a WebSocket session's). The other methods are the TCP connection's. A chunk still held
// when the connection closes is left to the garbage collector (Close may run on another goroutine, so it
// does not touch the chunk).
type leanConn struct {
	*net.TCPConn
	rc    syscall.RawConn
	chunk *[]byte // bytes read from the socket and not yet handed out: (*chunk)[r:w]; nil when none
	r, w  int

	// the read in progress (one reader at a time)
	readFD     func(fd uintptr) bool // c.readFromFD, made once so that a read allocates nothing
	dst        []byte                // read into dst; nil: into a pooled chunk
	pending    *[]byte               // the chunk readFromFD filled
	pendingN   int
	pendingErr syscall.Errno
	waited     bool          // the read in progress found nothing and waited for readability
	yields     *atomic.Int32 // yields since the last poller wake-up, shared by the listener's connections

	// the write in progress, under wmu
	wmu     sync.Mutex
	writeFD func(fd uintptr) bool // c.writeToFD, made once
	wp      []byte
	wn      int
	werr    syscall.Errno
}

// newLeanConn wraps c when it is a plain TCP connection; any other connection is returned as it is.
// yields is the yield counter of c's listener (see Read).
func newLeanConn(c net.Conn, yields *atomic.Int32) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	lc := &leanConn{TCPConn: tc, rc: rc, yields: yields}
	lc.readFD = lc.readFromFD
	lc.writeFD = lc.writeToFD
	return lc
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
	if len(p) == 0 {
		return 0, nil
	}
	if len(p) >= leanChunkSize {
		c.dst = p
		n, err := c.read()
		c.dst = nil
		return n, err
	}
	// fasthttp asks for the next request right after writing a response, when the client has rarely sent
	// it yet: a read now mostly fails (EAGAIN) and waits on the poller. Yielding first lets the other
	// runnable goroutines go, which gives the client that time, and the read then finds the request. But
	// the scheduler polls the network only when its run queues are empty (or from sysmon, every 10 ms),
	// and yielding goroutines keep them full: on a saturated gateway, requests on connections waiting for
	// readiness would wait for that poll. So yielding stops after leanYieldBudget yields with no
	// connection woken by the poller in between, and resumes with the next wake-up (readFromFD).
	if c.yields.Load() < leanYieldBudget {
		c.yields.Add(1)
		runtime.Gosched()
	}
	n, err := c.read()
	if err != nil {
		return 0, err
	}
	chunk := c.pending
	c.pending = nil
	k := copy(p, (*chunk)[:n])
	if k < n {
		c.chunk, c.r, c.w = chunk, k, n
	} else {
		leanChunks.Put(chunk)
	}
	return k, nil
}

// read does one read(2) into c.dst or, when c.dst is nil, into a pooled chunk left in c.pending, waiting
// for readability without holding the chunk.
func (c *leanConn) read() (int, error) {
	err := c.rc.Read(c.readFD)
	n, errno := c.pendingN, c.pendingErr
	c.pendingN, c.pendingErr = 0, 0
	if err == nil && errno != 0 {
		err = os.NewSyscallError("read", errno)
	}
	if err == nil && n == 0 {
		err = io.EOF
	}
	if err != nil {
		if c.pending != nil {
			leanChunks.Put(c.pending)
			c.pending = nil
		}
		if err == io.EOF {
			return 0, io.EOF
		}
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	}
	return n, nil
}

// readFromFD is the syscall.RawConn read function of read: one read(2); when the socket has nothing yet a
// chunk taken for it goes back to the pool and false makes RawConn wait for readability.
func (c *leanConn) readFromFD(fd uintptr) bool {
	dst, chunk := c.dst, (*[]byte)(nil)
	if dst == nil {
		chunk = leanChunks.Get().(*[]byte)
		dst = *chunk
	}
	n, errno := rawio.Read(fd, dst)
	if errno == syscall.EAGAIN {
		if chunk != nil {
			leanChunks.Put(chunk)
		}
		c.waited = true
		return false
	}
	if c.waited { // woken by the network poller: it runs, so yielding may go on (see Read)
		c.waited = false
		if c.yields.Load() != 0 {
			c.yields.Store(0)
		}
	}
	c.pending, c.pendingN, c.pendingErr = chunk, n, errno
	return true
}

// Write implements net.Conn: all of p, waiting for writability (and within the write deadline) as needed.
func (c *leanConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	c.wp, c.wn, c.werr = p, 0, 0
	err := c.rc.Write(c.writeFD)
	n, errno := c.wn, c.werr
	c.wp = nil
	c.wmu.Unlock()
	if err == nil && errno != 0 {
		err = os.NewSyscallError("write", errno)
	}
	if err != nil {
		return n, &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	}
	return n, nil
}

// writeToFD is the syscall.RawConn write function of Write.
func (c *leanConn) writeToFD(fd uintptr) bool {
	for c.wn < len(c.wp) {
		n, errno := rawio.Write(fd, c.wp[c.wn:])
		if errno == syscall.EAGAIN {
			return false
		}
		if errno != 0 {
			c.werr = errno
			return true
		}
		c.wn += n
	}
	return true
}

// WriteTo implements io.WriterTo through Read, so that bytes held in a chunk are not skipped
// (*net.TCPConn's WriteTo would read the socket directly).
func (c *leanConn) WriteTo(w io.Writer) (int64, error) { return io.Copy(w, readerOnly{c}) }

// readerOnly hides every method but Read (io.Copy would otherwise call WriteTo again).
type readerOnly struct{ io.Reader }
