package rsocket

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/rsgate/rsgate/rsocket/frame"
	"github.com/rsgate/rsgate/rsocket/transport"
)

// binding joins a session to one transport.Conn: a reader goroutine that reads and dispatches frames,
// and the target of the session's writer. A session has at most one binding at a time; with resumption
// it gets a new one after the old one failed.
type binding struct {
	c          *Conn
	tc         transport.Conn
	rf         transport.ReaderFlusher // tc when its reader can write without waiting, else nil
	closeOnce  sync.Once
	readerDone chan struct{}
}

// errDetached: the session has no binding (the writer found none).
var errDetached = errors.New("rsocket: session detached from its transport")

func newBinding(c *Conn, tc transport.Conn) *binding {
	return &binding{c: c, tc: tc, rf: transport.ReaderFlusherOf(tc), readerDone: make(chan struct{})}
}

// close closes the transport without waiting for the peer: it stops the transport's waiting first
// (transport.WaitStopper), so that a write blocked on a peer that does not read fails at once and the
// transport's own Close sends no closing handshake that would wait.
func (b *binding) close() {
	b.closeOnce.Do(func() {
		transport.StopWaiting(b.tc)
		_ = b.tc.Close()
	})
}

// stopWaiting makes the binding's remaining writes not wait (session shutdown, before the final flush):
// what the transport takes at once is written, a write that would wait fails (and the writer's finish
// closes the transport). A transport without that capability is closed at once instead: its final
// frames are not sent.
func (b *binding) stopWaiting() {
	if !transport.StopWaiting(b.tc) {
		b.close()
	}
}

// bind makes b the session's binding and starts its reader and, for what is queued, the writer. The
// previous binding (if any) must be detached and its reader gone.
func (c *Conn) bind(b *binding) {
	c.bmu.Lock()
	if c.loadState() == stateClosed {
		// Closed before it was bound (an Acceptor's caller closed it, or Close raced a resume):
		// teardown has run or will find no binding; this transport is ours to close.
		c.bmu.Unlock()
		b.close()
		return
	}
	c.lastReader = b.readerDone
	c.b.Store(b)
	c.bmu.Unlock()
	c.gotFrame.Store(true)
	go b.readLoop()
	c.q.resume()
}

// detach drops binding b after it failed with cause. Without resumption (or once the session is closed)
// the session ends with it; with resumption the session waits for a resume (resume.go): the queue keeps
// frames, streams stay open.
func (c *Conn) detach(b *binding, cause error) {
	if c.res == nil || c.loadState() == stateClosed {
		c.shutdown(cause, nil)
		return
	}
	c.bmu.Lock()
	ok := c.b.CompareAndSwap(b, nil)
	if ok {
		c.q.pause()
	}
	c.bmu.Unlock()
	b.close()
	if ok {
		// Not inline: a resume in progress holds the resume lock while it waits for this binding's
		// reader and writer to stop, and this may be one of them.
		go c.res.detached(c, cause)
	}
}

// readLoop is the binding's reader; the session's reader-owned state is handed from one binding's reader
// to the next (a new binding starts only after the old reader has returned).
//
// Over a transport that lets it (transport.ReaderFlusher), the reader also writes: the frames queued while
// it dispatches the whole frames of one read (a handler's answer given at once, credit, and whatever other
// goroutines queue meanwhile) go out in one batch that the reader writes itself before it reads again
// (writeQueue.flushFromReader), not through a writer goroutine woken for them.
func (b *binding) readLoop() {
	c := b.c
	deferred := false // the queue waits for this reader's flushFromReader
	for {
		buf, err := b.tc.ReadFrame()
		if err != nil {
			if deferred {
				c.q.stopDeferring()
			}
			// Done with the session's reader-owned state: a resume waiting for this reader may go on.
			close(b.readerDone)
			if c.loadState() == stateClosed {
				return
			}
			if errors.Is(err, io.EOF) {
				err = io.EOF
			}
			c.detach(b, fmt.Errorf("read: %w", err))
			return
		}
		if !c.gotFrame.Load() {
			c.gotFrame.Store(true)
		}
		if b.rf != nil && !deferred {
			c.q.deferToReader()
			deferred = true
		}
		c.inReader.Store(true)
		ok := c.handleFrame(buf)
		c.inReader.Store(false)
		if deferred && !ok {
			c.q.stopDeferring()
		} else if deferred && !b.rf.Buffered() {
			deferred = false
			c.q.flushFromReader()
		}
		if !ok {
			close(b.readerDone)
			return
		}
	}
}

// writeBatch writes a batch to the current binding (the writeQueue's sink) and flushes it.
func (c *Conn) writeBatch(q []wframe, buf []byte) error {
	b, err := c.queueBatch(q, buf)
	if err != nil {
		return err
	}
	if err := b.tc.Flush(); err != nil {
		return b.failed(err)
	}
	return nil
}

// tryWriteBatch is writeBatch without waiting for the peer (the reader's flush, writeQueue.flushFromReader):
// done false leaves the rest of the batch in the transport for flushRest.
func (c *Conn) tryWriteBatch(q []wframe, buf []byte) (bool, error) {
	b, err := c.queueBatch(q, buf)
	if err != nil {
		return false, err
	}
	if b.rf == nil { // cannot stop at a full socket: write it all
		if err := b.tc.Flush(); err != nil {
			return false, b.failed(err)
		}
		return true, nil
	}
	done, err := b.rf.TryFlush()
	if err != nil {
		return false, b.failed(err)
	}
	return done, nil
}

// flushRest writes what tryWriteBatch left in the transport, waiting for the peer as needed. The binding
// is still the one tryWriteBatch wrote to (a new one is bound only once the writer is idle), or none.
func (c *Conn) flushRest() error {
	b := c.b.Load()
	if b == nil {
		return errDetached
	}
	if err := b.tc.Flush(); err != nil {
		return b.failed(err)
	}
	return nil
}

// queueBatch hands a batch's frames to the current binding's transport, unflushed. With resumption, the
// resumable frames of the batch enter the resume buffer first, so that a failed write loses none.
func (c *Conn) queueBatch(q []wframe, buf []byte) (*binding, error) {
	if c.res != nil {
		c.res.record(c, q, buf)
	}
	b := c.b.Load()
	if b == nil {
		return nil, errDetached
	}
	for i := range q {
		f := &q[i]
		if err := b.tc.WriteFrame(buf[f.off:f.end], f.md, f.data); err != nil {
			return nil, b.failed(err)
		}
	}
	return b, nil
}

// failed reports a write error of this binding to the session: detach (resume) or end.
func (b *binding) failed(err error) error {
	b.c.detach(b, fmt.Errorf("write: %w", err))
	return err
}

// writeFailed tells the queue whether to pause (the session waits for a resume) or drop.
func (c *Conn) writeFailed(error) bool {
	return c.res != nil && c.loadState() != stateClosed
}

// finish runs on the writer after close: the final frames are out, or the transport did not take them
// without waiting (shutdown stopped its waiting).
func (c *Conn) finish() {
	c.closeBinding()
	close(c.writerEnd)
}

// sendControl queues a frame without a caller payload (see control).
func (c *Conn) sendControl(ctl control) error {
	if err := c.q.lock(); err != nil {
		return err
	}
	c.q.appendControl(&ctl)
	c.q.unlock()
	return nil
}

func (c *Conn) sendRequestN(id, n uint32) error {
	return c.sendControl(control{t: frame.TypeRequestN, id: id, n: n})
}

func (c *Conn) sendCancel(id uint32) error {
	return c.sendControl(control{t: frame.TypeCancel, id: id})
}

func (c *Conn) sendError(id uint32, code frame.ErrorCode, msg string) error {
	return c.sendControl(control{t: frame.TypeError, id: id, code: code, msg: msg})
}

// checkFrameSize rejects a frame that cannot be sent unfragmented.
func (c *Conn) checkFrameSize(t frame.Type, md, data []byte) error {
	if c.cfg.mtu == 0 && frame.FrameLen(t, len(md), len(data), md != nil) > frame.MaxFrameLen {
		return fmt.Errorf("%w: frame of %d bytes exceeds %d bytes and no MTU is set for fragmentation",
			ErrTooLarge, frame.FrameLen(t, len(md), len(data), md != nil), frame.MaxFrameLen)
	}
	if len(md) > frame.MaxMetadataLen {
		return fmt.Errorf("%w: metadata of %d bytes exceeds %d bytes", ErrTooLarge, len(md), frame.MaxMetadataLen)
	}
	return nil
}

// enqueuePayload queues one logical REQUEST_*/PAYLOAD frame (see writeQueue.appendPayload).
func (c *Conn) enqueuePayload(t frame.Type, id uint32, flags frame.Flags, initialN uint32, md, data []byte, zeroCopy bool, n *notifier) error {
	if err := c.checkFrameSize(t, md, data); err != nil {
		return err
	}
	if err := c.q.lock(); err != nil {
		return err
	}
	c.q.appendPayload(c.cfg.mtu, t, id, flags, initialN, md, data, zeroCopy, n)
	c.q.unlock()
	return nil
}
