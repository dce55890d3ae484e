//go:build unix

package rawio

import (
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// MaxIovecs is the most buffers one Writev system call takes (Linux's IOV_MAX).
const MaxIovecs = 1024

// Conn reads and writes a TCP connection with this package's calls, through the connection's
// syscall.RawConn: RawConn waits for readiness and keeps the deadlines and Close semantics of the net
// package. Errors are *net.OpError values as the net package returns them, and a read of 0 bytes is io.EOF.
//
// One goroutine reads at a time. Writes (Write, Writev) may come from several goroutines; they are
// serialised. A Conn allocates nothing per call.
type Conn struct {
	tc *net.TCPConn
	rc syscall.RawConn

	// the read in progress
	readFn func(fd uintptr) bool // c.readFD, made once
	rdst   []byte                // read into rdst, or, when nil, into a buffer from rpool
	rpool  *sync.Pool            // of *[]byte
	rbuf   *[]byte               // the pooled buffer the read filled
	rn     int
	rerr   syscall.Errno
	waited bool // the last read found nothing at first and waited for readability

	// the write in progress, under wmu
	wmu     sync.Mutex
	writeFn func(fd uintptr) bool // c.writeFD, made once
	wbufs   [][]byte              // what is left to write; entries are resliced as they go out
	one     [1][]byte             // wbufs of Write
	iov     []syscall.Iovec
	wn      int64
	werr    syscall.Errno

	// StopWaiting: nowait is set once for good; waiting is set while a write found the socket full and
	// is about to wait (or waits) for writability.
	nowait  atomic.Bool
	waiting atomic.Bool

	// TryWritev, under wmu: try makes a full socket end the write (blocked) instead of waiting.
	try, blocked bool
}

// NewConn returns the raw reader and writer of tc.
func NewConn(tc *net.TCPConn) (*Conn, error) {
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil, err
	}
	c := &Conn{tc: tc, rc: rc}
	c.readFn = c.readFD
	c.writeFn = c.writeFD
	return c, nil
}

func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.tc.LocalAddr(), Addr: c.tc.RemoteAddr(), Err: err}
}

// Read implements io.Reader: one read(2), waiting for readability first when nothing is there.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rdst = p
	n, err := c.read()
	c.rdst = nil
	return n, err
}

// ReadPooled is Read into a buffer from pool (of *[]byte), taken for each attempt and given back when the
// socket has nothing yet, so that a read waiting for its peer holds no buffer. It returns the buffer with
// n > 0 bytes read into it (the caller puts it back), or nil and the error.
func (c *Conn) ReadPooled(pool *sync.Pool) (*[]byte, int, error) {
	c.rpool = pool
	n, err := c.read()
	c.rpool = nil
	b := c.rbuf
	c.rbuf = nil
	if err != nil {
		if b != nil {
			pool.Put(b)
		}
		return nil, 0, err
	}
	return b, n, nil
}

// Waited reports whether the last read found nothing at first and waited for readability: the network
// poller woke it.
func (c *Conn) Waited() bool { return c.waited }

func (c *Conn) read() (int, error) {
	c.waited = false
	err := c.rc.Read(c.readFn)
	n, errno := c.rn, c.rerr
	c.rn, c.rerr = 0, 0
	if err == nil && errno != 0 {
		err = os.NewSyscallError("read", errno)
	}
	if err != nil {
		return 0, c.opError("read", err)
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (c *Conn) readFD(fd uintptr) bool {
	dst := c.rdst
	var b *[]byte
	if dst == nil {
		b = c.rpool.Get().(*[]byte)
		dst = *b
	}
	n, errno := Read(fd, dst)
	if errno == syscall.EAGAIN {
		if b != nil {
			c.rpool.Put(b)
		}
		c.waited = true
		return false
	}
	c.rbuf, c.rn, c.rerr = b, n, errno
	return true
}

// Write implements io.Writer: all of p, waiting for writability (within the write deadline) as needed.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	c.one[0] = p
	n, err := c.writev(c.one[:])
	c.one[0] = nil
	c.wmu.Unlock()
	return int(n), err
}

// Writev writes every buffer of bufs in order with writev(2), waiting for writability as needed. It
// reslices the entries of bufs as they go out.
func (c *Conn) Writev(bufs [][]byte) (int64, error) {
	c.wmu.Lock()
	n, err := c.writev(bufs)
	c.wmu.Unlock()
	return n, err
}

func (c *Conn) writev(bufs [][]byte) (int64, error) {
	c.wbufs, c.wn, c.werr = bufs, 0, 0
	err := c.rc.Write(c.writeFn)
	n, errno := c.wn, c.werr
	if c.waiting.Load() {
		c.waiting.Store(false)
	}
	c.wbufs = nil
	clear(c.iov)
	c.iov = c.iov[:0]
	if err == nil && errno != 0 {
		err = os.NewSyscallError("write", errno)
	}
	if err != nil {
		return n, c.opError("write", err)
	}
	return n, nil
}

// TryWritev is Writev without waiting: it writes what the socket takes now and reports done = false,
// with a nil error, when the socket filled up before the end. The entries of bufs are resliced as they go
// out, so a later Writev of the same bufs writes the rest.
func (c *Conn) TryWritev(bufs [][]byte) (n int64, done bool, err error) {
	c.wmu.Lock()
	c.try, c.blocked = true, false
	n, err = c.writev(bufs)
	done = err == nil && !c.blocked
	c.try = false
	c.wmu.Unlock()
	return n, done, err
}

// StopWaiting makes writes stop waiting for writability, for good: from now on a write that finds the
// socket full returns what it wrote and an error matching syscall.EAGAIN instead of waiting. It reports
// whether a write is waiting for writability at this moment; that write goes on waiting (close the
// connection to end it). Safe from any goroutine.
//
// With the write's own check the two cannot both miss each other: a write that finds the socket full
// marks itself waiting before it looks at nowait, and StopWaiting sets nowait before it looks at waiting.
func (c *Conn) StopWaiting() (waiting bool) {
	c.nowait.Store(true)
	return c.waiting.Load()
}

// full handles EAGAIN in writeFD: wait (false), or end the write (true): in TryWritev, and after
// StopWaiting with EAGAIN.
func (c *Conn) full() bool {
	if c.try {
		c.blocked = true
		return true
	}
	c.waiting.Store(true)
	if c.nowait.Load() {
		c.werr = syscall.EAGAIN
		return true
	}
	return false
}

func (c *Conn) writeFD(fd uintptr) bool {
	if c.waiting.Load() {
		c.waiting.Store(false) // woken: writing, not waiting, until the socket is full again
	}
	for {
		for len(c.wbufs) > 0 && len(c.wbufs[0]) == 0 {
			c.wbufs = c.wbufs[1:]
		}
		if len(c.wbufs) == 0 {
			return true
		}
		if len(c.wbufs) == 1 { // write(2): no iovec to build and copy
			n, errno := Write(fd, c.wbufs[0])
			if errno == syscall.EAGAIN {
				return c.full()
			}
			if errno != 0 {
				c.werr = errno
				return true
			}
			c.wn += int64(n)
			c.wbufs[0] = c.wbufs[0][n:]
			continue
		}
		c.iov = c.iov[:0]
		for _, b := range c.wbufs {
			if len(b) == 0 {
				continue
			}
			c.iov = append(c.iov, syscall.Iovec{Base: unsafe.SliceData(b)})
			c.iov[len(c.iov)-1].SetLen(len(b))
			if len(c.iov) == MaxIovecs {
				break
			}
		}
		n, errno := Writev(fd, c.iov)
		if errno == syscall.EAGAIN {
			return c.full()
		}
		if errno != 0 {
			c.werr = errno
			return true
		}
		c.wn += int64(n)
		for n > 0 {
			k := min(n, len(c.wbufs[0]))
			c.wbufs[0] = c.wbufs[0][k:]
			n -= k
			if len(c.wbufs[0]) == 0 {
				c.wbufs = c.wbufs[1:]
			}
		}
	}
}
