package transport

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"

	"github.com/rsgate/rsgate/rsocket/frame"
)

// MaxFrameLen is the largest frame a 24-bit length prefix can describe (16,777,215 bytes) and the
// default limit of every Conn in this package.
const MaxFrameLen = frame.MaxFrameLen

// Conn is one transport connection carrying whole RSocket frames. See the package comment for
// the ownership and concurrency rules.
type Conn interface {
	// ReadFrame returns the next whole frame without any length prefix. The slice is valid until
	// the next ReadFrame call. Only one goroutine reads. Frames over the configured limit ->
	// error matching ErrFrameTooLarge.
	ReadFrame() ([]byte, error)
	// WriteFrame queues one frame made of head+metadata+data (any may be empty). The slices must
	// stay unmodified until Flush returns. Only one goroutine writes.
	WriteFrame(head, metadata, data []byte) error
	// Flush writes everything queued (TCP: one writev over net.Buffers with 24-bit prefixes).
	Flush() error
	// Close closes the connection; safe from any goroutine and idempotent (later calls return
	// the first call's result).
	Close() error
	LocalAddr() net.Addr
	RemoteAddr() net.Addr
}

// ReaderFlusher is implemented by Conns that let the reading goroutine write as well, without waiting
// for the peer: plain TCP on Unix (see ReaderFlusherOf). A session's reader uses it to write the frames
// that the frames it has just read produced (the answers of handlers that answer at once) itself, once
// it has read every whole frame received, instead of waking a writer goroutine for them.
type ReaderFlusher interface {
	// Buffered reports whether the next ReadFrame returns a frame without reading the connection.
	// Only the reading goroutine calls it.
	Buffered() bool
	// TryFlush is Flush that does not wait: it writes what the socket takes now. done false with a nil
	// error means the rest is still queued and a Flush (which may wait) must follow before anything is
	// queued again. It is called by the one goroutine writing at the time, as Flush.
	TryFlush() (done bool, err error)
}

// ReaderFlusherOf returns tc as a ReaderFlusher when its writes can stop at a full socket, or nil.
func ReaderFlusherOf(tc Conn) ReaderFlusher {
	if sc, ok := tc.(*streamConn); ok && sc.raw != nil {
		return sc
	}
	return nil
}

// Listener yields server-side Conns.
type Listener interface {
	// Accept waits for the next connection. After Close it returns an error matching ErrClosed.
	Accept() (Conn, error)
	// Close stops accepting. Conns already returned by Accept stay open.
	Close() error
	Addr() net.Addr
}

// Options tunes a Conn. The zero value is valid and gives the documented defaults.
type Options struct {
	// MaxFrameLen is the largest frame, in bytes and without prefix, that is read or written.
	// 0 means MaxFrameLen (16,777,215), which is also the ceiling: larger values are clamped.
	MaxFrameLen int
	// ReadBufferSize is the size in bytes of the read buffer of stream transports. Frames that
	// fit are returned as views into it (no copy); larger frames are read directly into a pooled
	// buffer of the frame's size class. 0 means 32 KiB; values under 64 bytes become 64.
	ReadBufferSize int
	// WriteCopyThreshold: on stream transports, head/metadata/data pieces up to this many bytes
	// are copied into a batch scratch buffer (so many small frames become few iovecs); larger
	// pieces are referenced in place (zero copy). 0 means 512 bytes for plain TCP (writev) and
	// 16 KiB for other connections such as TLS, where every separate piece would otherwise
	// become its own Write and TLS record. Negative means never copy.
	WriteCopyThreshold int
}

const (
	defaultReadBufferSize = 32 << 10
	minReadBufferSize     = 64
	defaultCopyWritev     = 512
	defaultCopyOther      = 16 << 10
)

func (o Options) maxFrameLen() int {
	if o.MaxFrameLen <= 0 || o.MaxFrameLen > MaxFrameLen {
		return MaxFrameLen
	}
	return o.MaxFrameLen
}

func (o Options) readBufferSize() int {
	switch {
	case o.ReadBufferSize == 0:
		return defaultReadBufferSize
	case o.ReadBufferSize < minReadBufferSize:
		return minReadBufferSize
	}
	return o.ReadBufferSize
}

// ErrClosed is returned by operations on a Conn or Listener after its own Close. It is
// net.ErrClosed, so errors.Is(err, net.ErrClosed) works too.
var ErrClosed = net.ErrClosed

// ErrFrameTooLarge is matched (errors.Is) by every *FrameSizeError.
var ErrFrameTooLarge = errors.New("transport: frame too large")

// ErrTextMessage is returned by a WebSocket Conn that received a text message: RSocket frames
// travel only in binary messages.
var ErrTextMessage = errors.New("transport: websocket text message, RSocket needs binary messages")

// FrameSizeError reports a frame over the configured limit.
type FrameSizeError struct {
	Op    string // "read" or "write"
	Size  int    // the frame's length in bytes; 0 when only known to exceed Limit (WebSocket reads)
	Limit int    // the configured maximum
}

func (e *FrameSizeError) Error() string {
	if e.Size == 0 {
		return fmt.Sprintf("transport: %s: frame larger than the limit of %d bytes", e.Op, e.Limit)
	}
	return fmt.Sprintf("transport: %s: frame of %d bytes exceeds the limit of %d bytes", e.Op, e.Size, e.Limit)
}

// Is makes errors.Is(err, ErrFrameTooLarge) true.
func (e *FrameSizeError) Is(target error) bool { return target == ErrFrameTooLarge }

// writeCheck is the error WriteFrame returns for a frame of n bytes before writing anything: the sticky
// write error, ErrClosed, or a *FrameSizeError over max; nil when the frame may be written.
func writeCheck(werr error, closed *atomic.Bool, n, max int) error {
	if werr != nil {
		return werr
	}
	if closed.Load() {
		return ErrClosed
	}
	if n > max {
		return &FrameSizeError{Op: "write", Size: n, Limit: max}
	}
	return nil
}

// eofAt is the error for a stream that ended: io.EOF at a frame boundary, io.ErrUnexpectedEOF inside a
// frame.
func eofAt(atBoundary bool) error {
	if atBoundary {
		return io.EOF
	}
	return io.ErrUnexpectedEOF
}
