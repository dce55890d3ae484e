//go:build unix

package ingress

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

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
// connection is idle: rawio.Conn.ReadPooled reads into a pooled chunk taken only for each read attempt.
// The bytes beyond what the caller asked for stay in the chunk and are handed out by the next Reads
// (fasthttp reads them at once through its own buffer), after which the chunk goes back to the pool. Reads
// of a chunk's size or more go straight to the socket. Reads and writes use raw system calls
// (internal/rawio).
//
// A leanConn is read by one goroutine at a time, as any net.Conn that fasthttp serves; writes may come
// from several (a WebSocket session's). The other methods are the TCP connection's. A chunk still held
// when the connection closes is left to the garbage collector (Close may run on another goroutine, so it
// does not touch the chunk).
type leanConn struct {
	*net.TCPConn
	raw    *rawio.Conn
	chunk  *[]byte // bytes read from the socket and not yet handed out: (*chunk)[r:w]; nil when none
	r, w   int
	yields *atomic.Int32 // yields since the last poller wake-up, shared by the listener's connections
	rd     lazyDeadline  // the read deadline (see lazyDeadline)
}

// newLeanConn wraps c when it is a plain TCP connection; any other connection is returned as it is.
// yields is the yield counter of c's listener (see Read).
func newLeanConn(c net.Conn, yields *atomic.Int32) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	raw, err := rawio.NewConn(tc)
	if err != nil {
		return c
	}
	return &leanConn{TCPConn: tc, raw: raw, yields: yields}
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
	if len(p) >= leanChunkSize {
		for {
			n, err := c.raw.Read(p)
			if err == nil || !c.rd.early(err, c.TCPConn) {
				return n, err
			}
		}
	}
	if len(p) == 0 {
		return 0, nil
	}
	// fasthttp asks for the next request right after writing a response, when the client has rarely sent
	// it yet: a read now mostly fails (EAGAIN) and waits on the poller. Yielding first lets the other
	// runnable goroutines go, which gives the client that time, and the read then finds the request. But
	// the scheduler polls the network only when its run queues are empty (or from sysmon, every 10 ms),
	// and yielding goroutines keep them full: on a saturated gateway, requests on connections waiting for
	// readiness would wait for that poll. So yielding stops after leanYieldBudget yields with no
	// connection woken by the poller in between, and resumes with the next wake-up.
	if c.yields.Load() < leanYieldBudget {
		c.yields.Add(1)
		runtime.Gosched()
	}
	chunk, n, err := c.raw.ReadPooled(&leanChunks)
	for err != nil && c.rd.early(err, c.TCPConn) {
		chunk, n, err = c.raw.ReadPooled(&leanChunks)
	}
	if c.raw.Waited() && c.yields.Load() != 0 { // woken by the network poller: it runs, yielding may go on
		c.yields.Store(0)
	}
	if err != nil {
		return 0, err
	}
	k := copy(p, (*chunk)[:n])
	if k < n {
		c.chunk, c.r, c.w = chunk, k, n
	} else {
		leanChunks.Put(chunk)
	}
	return k, nil
}

// SetReadDeadline implements net.Conn through lazyDeadline.
func (c *leanConn) SetReadDeadline(t time.Time) error { return c.rd.set(t, c.TCPConn) }

// SetDeadline implements net.Conn: the read deadline through lazyDeadline, the write deadline as it is.
func (c *leanConn) SetDeadline(t time.Time) error {
	if err := c.rd.set(t, c.TCPConn); err != nil {
		return err
	}
	return c.TCPConn.SetWriteDeadline(t)
}

// Write implements net.Conn: all of p, waiting for writability (and within the write deadline) as needed.
func (c *leanConn) Write(p []byte) (int, error) { return c.raw.Write(p) }

// WriteTo implements io.WriterTo through Read, so that bytes held in a chunk are not skipped
// (*net.TCPConn's WriteTo would read the socket directly).
func (c *leanConn) WriteTo(w io.Writer) (int64, error) { return io.Copy(w, readerOnly{c}) }

// readerOnly hides every method but Read (io.Copy would otherwise call WriteTo again).
type readerOnly struct{ io.Reader }

// lazyDeadline keeps a socket's read deadline armed lazily. fasthttp sets it twice per request on a
// keep-alive connection (the idle timeout before waiting for the next request, the read timeout once its
// first byte came), and each set re-arms the socket's runtime timer: a lock, a timer-heap update (often on
// another P's heap) and a clock read, for deadlines tens of seconds away that almost never fire.
//
// Instead, the deadline the caller asked for (want) is only recorded, and the socket keeps the one it has
// (armed) as long as that fires no later than want. An earlier one that fires while want is still ahead is
// an early wake-up: the read sees the timeout, early re-arms the socket with want, and the read is tried
// again. A deadline therefore never fires late, and a connection that alternates between the idle (120 s)
// and read (30 s) timeouts re-arms about once per read timeout instead of twice per request. A deadline
// earlier than the armed one (a past one that interrupts a read, say) is armed at once.
type lazyDeadline struct {
	mu    sync.Mutex
	want  time.Time // zero: none
	armed time.Time // what the socket has; zero: none
}

// readDeadliner is the socket a lazyDeadline arms (*net.TCPConn).
type readDeadliner interface{ SetReadDeadline(time.Time) error }

// set records t as the read deadline and re-arms c only when its armed deadline would fire after t.
func (d *lazyDeadline) set(t time.Time, c readDeadliner) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.want = t
	if !d.armed.IsZero() && (t.IsZero() || !d.armed.After(t)) {
		return nil // fires no later than t; if early, the read re-arms (early)
	}
	d.armed = t
	return c.SetReadDeadline(t)
}

// early reports whether err is the armed deadline firing before the wanted one; it then re-arms c with
// the wanted deadline, and the caller reads again.
func (d *lazyDeadline) early(err error, c readDeadliner) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.want.IsZero() && !time.Now().Before(d.want) {
		return false // the wanted deadline has passed: a real timeout
	}
	d.armed = d.want
	return c.SetReadDeadline(d.want) == nil
}
