package transport

import (
	"github.com/rsgate/rsgate/rsocket/internal/bufpool"

	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
)

// Stream framing: every frame is preceded by its length as a 24-bit big-endian integer that does
// not count the prefix itself (RSocket 1.0, "Framing Format", "Frame Length").
const prefixLen = 3

const (
	// scratchInitial is the first scratch chunk allocated for a write batch.
	scratchInitial = 4 << 10
	// scratchRetain is the largest scratch chunk kept across batches; bigger ones are dropped
	// after Flush.
	scratchRetain = 256 << 10
	// maxEmptyReads bounds consecutive (0, nil) reads before giving up with io.ErrNoProgress.
	maxEmptyReads = 100
)

// DialTCP connects to addr ("host:port"). With a non-nil cfg the connection is TLS; when
// cfg.ServerName is empty it is taken from addr. The TLS handshake is done before returning.
func DialTCP(ctx context.Context, addr string, cfg *tls.Config) (Conn, error) {
	return DialTCPWith(ctx, addr, cfg, Options{})
}

// DialTCPWith is DialTCP with Options.
func DialTCPWith(ctx context.Context, addr string, cfg *tls.Config, opts Options) (Conn, error) {
	var nc net.Conn
	var err error
	if cfg == nil {
		var d net.Dialer
		nc, err = d.DialContext(ctx, "tcp", addr)
	} else {
		d := tls.Dialer{Config: cfg}
		nc, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	return NewTCPConnWith(nc, opts), nil
}

// ListenTCP listens on addr ("host:port", port 0 for an ephemeral one). With a non-nil cfg the
// accepted connections are TLS. Accept does not wait for the TLS handshake (a slow client must
// not stall the accept loop): it runs on the Conn's first ReadFrame or Flush, and the client's
// DialTCP waits for it, so servers should start reading promptly.
func ListenTCP(addr string, cfg *tls.Config) (Listener, error) {
	return ListenTCPWith(addr, cfg, Options{})
}

// ListenTCPWith is ListenTCP with Options applied to every accepted Conn.
func ListenTCPWith(addr string, cfg *tls.Config, opts Options) (Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	return &tcpListener{ln: ln, opts: opts}, nil
}

type tcpListener struct {
	ln   net.Listener
	opts Options
}

func (l *tcpListener) Accept() (Conn, error) {
	c, err := l.ln.Accept()
	if err != nil {
		return nil, err
	}
	return NewTCPConnWith(c, l.opts), nil
}

func (l *tcpListener) Close() error   { return l.ln.Close() }
func (l *tcpListener) Addr() net.Addr { return l.ln.Addr() }

// NewTCPConn wraps any byte stream (TCP, TLS, Unix socket, net.Pipe) with RSocket's 24-bit
// length-prefix framing. The Conn owns c: Close closes it. TCP_NODELAY is switched on for TCP.
func NewTCPConn(c net.Conn) Conn { return NewTCPConnWith(c, Options{}) }

// NewTCPConnWith is NewTCPConn with Options.
func NewTCPConnWith(c net.Conn, opts Options) Conn {
	writev := false
	var raw rawReadWriter
	switch tc := c.(type) {
	case *net.TCPConn:
		_ = tc.SetNoDelay(true)
		writev = true
		raw = newRawTCP(tc) // Unix: raw read and writev (rawtcp_unix.go)
	case *net.UnixConn:
		writev = true
	}
	var rw io.ReadWriter = c
	if raw != nil {
		rw = raw
	}
	sc := newStreamConn(rw, opts, writev)
	sc.nc = c
	sc.raw = raw
	return sc
}

// rawReadWriter is a connection read and written with raw system calls (*rawio.Conn).
type rawReadWriter interface {
	io.ReadWriter
	Writev(bufs [][]byte) (int64, error)
	// TryWritev: Writev that stops at a full socket (done false) instead of waiting.
	TryWritev(bufs [][]byte) (n int64, done bool, err error)
	// StopWaiting: later writes stop at a full socket (EAGAIN); true when a write waits right now.
	StopWaiting() (waiting bool)
}

// streamConn implements length-prefixed framing over an io.ReadWriter.
type streamConn struct {
	nc  net.Conn // nil when built over a bare io.ReadWriter (tests, fuzzing)
	rw  io.ReadWriter
	raw rawReadWriter // rw when it is the raw TCP path (Unix), else nil
	max int

	// Read side, used only by the reading goroutine.
	rbuf       []byte          // fixed size; frames that fit are returned as views into it
	rpos, rend int             // buffered bytes are rbuf[rpos:rend]
	big        *bufpool.Buffer // pooled buffer holding the last returned large frame
	rerr       error           // sticky

	// Write side, used only by the writing goroutine.
	bufs        net.Buffers // the queued batch
	out         net.Buffers // consumed by WriteTo; a field so that WriteTo does not allocate
	scratch     []byte      // current chunk for copied pieces; earlier chunks stay alive via bufs
	lastScratch bool        // bufs[len-1] is a slice of scratch ending at len(scratch)
	copyMax     int
	werr        error // sticky

	// StopWaiting (stopwaiting.go): nowait is set once for good; inWrite is the size on the wire (at
	// most) of the batch Flush is writing through the net.Conn, 0 when none (the raw path tracks its
	// waiting itself).
	nowait  atomic.Bool
	inWrite atomic.Int64

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

func newStreamConn(rw io.ReadWriter, opts Options, writev bool) *streamConn {
	c := &streamConn{
		rw:   rw,
		max:  opts.maxFrameLen(),
		rbuf: make([]byte, opts.readBufferSize()),
	}
	switch {
	case opts.WriteCopyThreshold < 0:
		c.copyMax = 0
	case opts.WriteCopyThreshold > 0:
		c.copyMax = opts.WriteCopyThreshold
	case writev:
		c.copyMax = defaultCopyWritev
	default:
		c.copyMax = defaultCopyOther
	}
	return c
}

func (c *streamConn) ReadFrame() ([]byte, error) {
	if c.big != nil {
		bufpool.Put(c.big)
		c.big = nil
	}
	if c.rerr != nil {
		return nil, c.rerr
	}
	if c.rend-c.rpos < prefixLen {
		if err := c.fill(prefixLen); err != nil {
			return nil, c.readFailed(err, c.rend == c.rpos)
		}
	}
	p := c.rbuf[c.rpos : c.rpos+prefixLen]
	n := int(p[0])<<16 | int(p[1])<<8 | int(p[2])
	if n > c.max {
		c.rerr = &FrameSizeError{Op: "read", Size: n, Limit: c.max}
		return nil, c.rerr
	}
	c.rpos += prefixLen
	if n <= len(c.rbuf) {
		if c.rend-c.rpos < n {
			if err := c.fill(n); err != nil {
				return nil, c.readFailed(err, false)
			}
		}
		f := c.rbuf[c.rpos : c.rpos+n : c.rpos+n]
		c.rpos += n
		return f, nil
	}
	// Larger than the read buffer: the buffered head of the frame is copied, the rest is read
	// straight into the pooled frame buffer.
	c.big = bufpool.GetUncounted(n)
	f := c.big.B[:n:n]
	k := copy(f, c.rbuf[c.rpos:c.rend])
	c.rpos, c.rend = 0, 0
	if _, err := io.ReadFull(c.rw, f[k:]); err != nil {
		return nil, c.readFailed(err, false)
	}
	return f, nil
}

// Buffered implements ReaderFlusher: a whole frame is buffered.
func (c *streamConn) Buffered() bool {
	k := c.rend - c.rpos
	if k < prefixLen || c.rerr != nil {
		return false
	}
	p := c.rbuf[c.rpos:]
	return k-prefixLen >= int(p[0])<<16|int(p[1])<<8|int(p[2])
}

// fill reads until at least need (<= len(rbuf)) bytes are buffered from rpos.
func (c *streamConn) fill(need int) error {
	if c.rpos == c.rend {
		c.rpos, c.rend = 0, 0
	} else if len(c.rbuf)-c.rpos < need {
		c.rend = copy(c.rbuf, c.rbuf[c.rpos:c.rend])
		c.rpos = 0
	}
	empty := 0
	for c.rend-c.rpos < need {
		m, err := c.rw.Read(c.rbuf[c.rend:])
		c.rend += m
		if c.rend-c.rpos >= need {
			return nil // a concurrent error will be seen again by the next Read
		}
		if err != nil {
			return err
		}
		if m == 0 {
			if empty++; empty >= maxEmptyReads {
				return io.ErrNoProgress
			}
		}
	}
	return nil
}

// readFailed maps a read error and makes it sticky. atBoundary says no byte of a next frame had
// been received, so io.EOF is a clean close.
func (c *streamConn) readFailed(err error, atBoundary bool) error {
	if err == io.EOF {
		err = eofAt(atBoundary)
	}
	c.rerr = err
	return err
}

func (c *streamConn) WriteFrame(head, metadata, data []byte) error {
	n := len(head) + len(metadata) + len(data)
	if err := writeCheck(c.werr, &c.closed, n, c.max); err != nil {
		return err
	}
	c.queueCopy([]byte{byte(n >> 16), byte(n >> 8), byte(n)})
	c.queue(head)
	c.queue(metadata)
	c.queue(data)
	return nil
}

func (c *streamConn) queue(p []byte) {
	if len(p) == 0 {
		return
	}
	if len(p) <= c.copyMax {
		c.queueCopy(p)
		return
	}
	c.bufs = append(c.bufs, p)
	c.lastScratch = false
}

// queueCopy copies p into the scratch chunk. A full chunk is replaced by a new one; slices of the
// old chunk already in bufs stay valid because the old array is never written again in this
// batch.
func (c *streamConn) queueCopy(p []byte) {
	if cap(c.scratch)-len(c.scratch) < len(p) {
		size := max(2*cap(c.scratch), scratchInitial, len(p))
		c.scratch = make([]byte, 0, size)
		c.lastScratch = false
	}
	start := len(c.scratch)
	c.scratch = append(c.scratch, p...)
	if c.lastScratch {
		last := len(c.bufs) - 1
		c.bufs[last] = c.bufs[last][:len(c.bufs[last])+len(p)]
		return
	}
	c.bufs = append(c.bufs, c.scratch[start:len(c.scratch)])
	c.lastScratch = true
}

func (c *streamConn) Flush() error {
	if c.werr != nil {
		return c.werr
	}
	if len(c.bufs) == 0 {
		if c.closed.Load() {
			return ErrClosed
		}
		return nil
	}
	var err error
	if c.raw != nil {
		_, err = c.raw.Writev(c.bufs)
	} else {
		wire := c.queued() + len(c.bufs)*recordOverhead
		c.inWrite.Store(int64(wire))
		if c.nowait.Load() && !writableNow(c.nc, wire) {
			err = ErrWouldBlock
		} else {
			c.out = c.bufs
			_, err = c.out.WriteTo(c.rw)
			c.out = nil
		}
		c.inWrite.Store(0)
	}
	return c.flushed(err)
}

// TryFlush implements ReaderFlusher. Without the raw TCP path it writes nothing (done false): a write
// through the net package cannot stop at a full socket.
func (c *streamConn) TryFlush() (done bool, err error) {
	if c.raw == nil || c.werr != nil || len(c.bufs) == 0 {
		return false, nil // Flush reports what there is to report
	}
	_, done, err = c.raw.TryWritev(c.bufs)
	if err == nil && !done {
		return false, nil // the socket is full: bufs hold the rest (resliced as they went out)
	}
	return err == nil, c.flushed(err)
}

// flushed ends a batch that Flush or TryFlush wrote (err nil) or failed to write.
func (c *streamConn) flushed(err error) error {
	if err != nil && c.raw != nil && c.nowait.Load() && errors.Is(err, syscall.EAGAIN) {
		err = fmt.Errorf("%w: %w", ErrWouldBlock, err)
	}
	clear(c.bufs) // drop references to the caller's slices (WriteTo resliced the entries)
	c.bufs = c.bufs[:0]
	c.lastScratch = false
	if cap(c.scratch) > scratchRetain {
		c.scratch = nil
	} else {
		c.scratch = c.scratch[:0]
	}
	if err != nil {
		if c.closed.Load() {
			err = ErrClosed
		}
		c.werr = err
		return err
	}
	return nil
}

// queued is the number of bytes of the queued batch.
func (c *streamConn) queued() int {
	n := 0
	for _, b := range c.bufs {
		n += len(b)
	}
	return n
}

// StopWaiting implements WaitStopper: a write waiting now is ended by closing the Conn; later ones stop
// at a full socket (raw TCP path) or, over another net.Conn, write only a small batch to a writable
// socket (writableNow). Over another net.Conn (TLS), a write in progress goes on when its batch is small
// and the socket writable now, so that it cannot wait (the final frames queued before Close reach a
// reading peer); otherwise it is ended by closing the Conn. Close then skips TLS's close_notify unless
// the socket takes it at once.
func (c *streamConn) StopWaiting() {
	c.nowait.Store(true)
	var busy bool
	if c.raw != nil {
		busy = c.raw.StopWaiting()
	} else if m := c.inWrite.Load(); m > 0 { // set before Flush looks at nowait: one of the two sees the other
		busy = !writableNow(c.nc, int(m))
	}
	if busy {
		_ = c.Close()
	}
}

func (c *streamConn) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		switch {
		case isTLS(c.nc) && c.nowait.Load() && !writableNow(c.nc, FinalWriteMax):
			c.closeErr = closeNow(c.nc) // no close_notify: it would wait up to 5 s
		case c.nc != nil:
			c.closeErr = c.nc.Close()
		default:
			if cl, ok := c.rw.(io.Closer); ok {
				c.closeErr = cl.Close()
			}
		}
	})
	return c.closeErr
}

func (c *streamConn) LocalAddr() net.Addr {
	if c.nc == nil {
		return nil
	}
	return c.nc.LocalAddr()
}

func (c *streamConn) RemoteAddr() net.Addr {
	if c.nc == nil {
		return nil
	}
	return c.nc.RemoteAddr()
}
