package transport

import (
	"io"
	"net"
	"sync"
)

// PipeCapacity is how many flushed frames each direction of a Pipe holds before Flush blocks
// waiting for the peer to read.
const PipeCapacity = 64

// Pipe returns the two ends of an in-memory connection for tests. It behaves like a stream
// transport: WriteFrame copies the frame (so the caller's slices are free as soon as it
// returns), Flush hands the queued frames to the peer, blocking while the peer's queue holds
// PipeCapacity unread frames. Frames flushed before a Close are still delivered; after them the
// peer's ReadFrame returns io.EOF. WriteFrame and Flush after the local Close return ErrClosed,
// Flush after the peer's Close returns io.ErrClosedPipe, Flush after StopWaiting returns ErrWouldBlock
// instead of waiting for a full queue. The maximum frame size is MaxFrameLen.
func Pipe() (Conn, Conn) {
	ab := make(chan []byte, PipeCapacity)
	ba := make(chan []byte, PipeCapacity)
	// Frame buffers go back from the reader to the writer of their direction: no allocation per frame once
	// both free lists hold buffers of the sizes in use.
	abFree := make(chan []byte, pipeFree)
	baFree := make(chan []byte, pipeFree)
	a := &pipeConn{in: ba, out: ab, inFree: baFree, outFree: abFree, done: make(chan struct{}), nowait: make(chan struct{}), max: MaxFrameLen, name: "pipe-a"}
	b := &pipeConn{in: ab, out: ba, inFree: abFree, outFree: baFree, done: make(chan struct{}), nowait: make(chan struct{}), max: MaxFrameLen, name: "pipe-b"}
	a.peer, b.peer = b, a
	return a, b
}

// pipeFree is how many read frame buffers each direction keeps for reuse; pipeFreeMax is the largest buffer
// kept (bigger ones are left to the GC).
const (
	pipeFree    = 2 * PipeCapacity
	pipeFreeMax = 64 << 10
)

type pipeConn struct {
	in, out chan []byte
	// inFree takes the buffers of frames this end has read (reused by the peer's writes); outFree gives
	// buffers to this end's writes.
	inFree, outFree chan []byte
	last            []byte        // the frame ReadFrame returned last: recycled by the next ReadFrame
	done            chan struct{} // closed by Close
	nowait          chan struct{} // closed by StopWaiting
	peer            *pipeConn
	max             int
	name            string

	pending   [][]byte // written, not yet flushed; writer goroutine only
	closeOnce sync.Once
	stopOnce  sync.Once
}

func (p *pipeConn) ReadFrame() ([]byte, error) {
	if p.last != nil {
		if cap(p.last) <= pipeFreeMax {
			select {
			case p.inFree <- p.last[:0]:
			default:
			}
		}
		p.last = nil
	}
	f, err := p.readFrame()
	p.last = f
	return f, err
}

func (p *pipeConn) readFrame() ([]byte, error) {
	select {
	case <-p.done:
		return nil, ErrClosed
	default:
	}
	select {
	case f := <-p.in:
		return f, nil
	case <-p.done:
		return nil, ErrClosed
	case <-p.peer.done:
		// Deliver what the peer flushed before closing, then report the clean end.
		select {
		case f := <-p.in:
			return f, nil
		default:
			return nil, io.EOF
		}
	}
}

func (p *pipeConn) WriteFrame(head, metadata, data []byte) error {
	select {
	case <-p.done:
		return ErrClosed
	default:
	}
	n := len(head) + len(metadata) + len(data)
	if n > p.max {
		return &FrameSizeError{Op: "write", Size: n, Limit: p.max}
	}
	var f []byte
	select {
	case f = <-p.outFree:
		if cap(f) < n {
			f = make([]byte, 0, n)
		}
	default:
		f = make([]byte, 0, n)
	}
	f = append(append(append(f, head...), metadata...), data...)
	p.pending = append(p.pending, f)
	return nil
}

func (p *pipeConn) Flush() error {
	for i, f := range p.pending {
		select {
		case <-p.done:
			p.dropPending()
			return ErrClosed
		case <-p.peer.done:
			p.dropPending()
			return io.ErrClosedPipe
		default:
		}
		select {
		case p.out <- f:
			p.pending[i] = nil
		case <-p.done:
			p.dropPending()
			return ErrClosed
		case <-p.peer.done:
			p.dropPending()
			return io.ErrClosedPipe
		case <-p.nowait:
			// StopWaiting: hand over the frame if the peer's queue takes it now (select picked this
			// case at random among the ready ones), else fail rather than wait.
			select {
			case p.out <- f:
				p.pending[i] = nil
			default:
				p.dropPending()
				return ErrWouldBlock
			}
		}
	}
	p.pending = p.pending[:0]
	select {
	case <-p.done:
		return ErrClosed
	default:
		return nil
	}
}

func (p *pipeConn) dropPending() {
	clear(p.pending)
	p.pending = p.pending[:0]
}

// StopWaiting implements WaitStopper: a Flush waiting for the peer's queue fails at once with
// ErrWouldBlock, later ones hand over what the queue takes and fail with ErrWouldBlock for the rest.
func (p *pipeConn) StopWaiting() { p.stopOnce.Do(func() { close(p.nowait) }) }

func (p *pipeConn) Close() error {
	p.closeOnce.Do(func() { close(p.done) })
	return nil
}

func (p *pipeConn) LocalAddr() net.Addr  { return pipeAddr(p.name) }
func (p *pipeConn) RemoteAddr() net.Addr { return pipeAddr(p.peer.name) }

type pipeAddr string

func (a pipeAddr) Network() string { return "pipe" }
func (a pipeAddr) String() string  { return string(a) }
