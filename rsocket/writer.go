package rsocket

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/rsgate/rsgate/rsocket/frame"
)

// The write queue (grpc-go controlbuf style): any goroutine appends frames under wmu; the writer goroutine
// swaps the whole queue out, writes every frame with transport.WriteFrame and flushes once per batch.
//
// A queued frame is wbuf[off:end] (the encoded header, or the whole frame when its payload was copied)
// followed by md and data, which are caller slices written in place (zero copy) when the enqueuer
// promised to keep them untouched until notified. The writer signals notify.wr after the Flush that
// carried the frame, or when the frame is dropped because the connection ended; every queued notify is
// signalled exactly once.
type wframe struct {
	off, end int
	md, data []byte
	notify   *Stream
}

const (
	// yieldBelow: the writer yields once before taking a batch of fewer frames.
	yieldBelow = 16
	// maxRetainedBatch: batch buffers with a larger capacity are dropped after a run of batches that
	// were all smaller than this.
	maxRetainedBatch = 256 << 10
	// closeFlushTimeout bounds how long the writer may take to flush the final frames after shutdown
	// before the transport is closed under it.
	closeFlushTimeout = 2 * time.Second
)

// lockQueue takes wmu if the queue still accepts frames; unlockQueue releases it.
func (c *Conn) lockQueue() error {
	c.wmu.Lock()
	if c.wclosed {
		err := c.err
		c.wmu.Unlock()
		return err
	}
	return nil
}

// lockQueueSpace is lockQueue that first waits (bounded by ctx) until the copied bytes waiting in the
// queue are below MaxQueuedBytes: the back-pressure of Stream.Send.
func (c *Conn) lockQueueSpace(ctx context.Context) error {
	c.wmu.Lock()
	for !c.wclosed && len(c.wbuf) >= c.cfg.maxQueued {
		c.spaceWaiters++
		c.wmu.Unlock()
		var ctxDone <-chan struct{}
		if ctx != nil {
			ctxDone = ctx.Done()
		}
		select {
		case <-c.space:
		case <-ctxDone:
			c.wmu.Lock()
			c.spaceWaiters--
			c.wmu.Unlock()
			return ctx.Err()
		}
		c.wmu.Lock()
		c.spaceWaiters--
	}
	if c.wclosed {
		err := c.err
		c.wmu.Unlock()
		return err
	}
	if c.spaceWaiters > 0 && len(c.wbuf) < c.cfg.maxQueued {
		select { // pass the wake-up on to the next waiter
		case c.space <- struct{}{}:
		default:
		}
	}
	return nil
}

// unlockQueue releases wmu and starts a writer when frames wait and none is running. A running writer
// looks at the queue under wmu before it exits, so it takes whatever was queued before that.
func (c *Conn) unlockQueue() {
	start := !c.writing && (len(c.wq) > 0 || c.wclosed)
	if start {
		c.writing = true
	}
	c.wmu.Unlock()
	if start {
		go c.writeFn()
	}
}

// push queues wbuf[off:] plus md and data. wmu must be held.
func (c *Conn) push(off int, md, data []byte, notify *Stream) {
	c.wq = append(c.wq, wframe{off: off, end: len(c.wbuf), md: md, data: data, notify: notify})
}

// appendPayloadLocked encodes one logical REQUEST_*/PAYLOAD frame, fragmented when it exceeds the MTU.
// zeroCopy: md and data are referenced, not copied; notify (only with zeroCopy) is signalled once the
// last fragment has been flushed. wmu must be held.
func (c *Conn) appendPayloadLocked(t frame.Type, id uint32, flags frame.Flags, initialN uint32, md, data []byte, zeroCopy bool, notify *Stream) {
	if !frame.NeedsFragmentation(c.cfg.mtu, t, md, data) {
		off := len(c.wbuf)
		c.wbuf = frame.AppendPrefix(c.wbuf, t, id, flags, initialN, len(md), md != nil)
		if zeroCopy {
			c.push(off, md, data, notify)
			return
		}
		c.wbuf = append(append(c.wbuf, md...), data...)
		c.push(off, nil, nil, nil)
		return
	}
	fr := frame.NewFragmenter(c.cfg.mtu, t, flags, initialN, md, data)
	for f, ok := fr.Next(); ok; f, ok = fr.Next() {
		off := len(c.wbuf)
		c.wbuf = f.AppendPrefix(c.wbuf, id)
		if zeroCopy {
			c.push(off, f.Metadata, f.Data, nil)
		} else {
			c.wbuf = append(append(c.wbuf, f.Metadata...), f.Data...)
			c.push(off, nil, nil, nil)
		}
	}
	c.wq[len(c.wq)-1].notify = notify
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

// enqueuePayload queues one logical REQUEST_*/PAYLOAD frame (see appendPayloadLocked).
func (c *Conn) enqueuePayload(t frame.Type, id uint32, flags frame.Flags, initialN uint32, md, data []byte, zeroCopy bool, notify *Stream) error {
	if err := c.checkFrameSize(t, md, data); err != nil {
		return err
	}
	if err := c.lockQueue(); err != nil {
		return err
	}
	c.appendPayloadLocked(t, id, flags, initialN, md, data, zeroCopy, notify)
	c.unlockQueue()
	return nil
}

// enqueueItem is enqueuePayload (copying) for Stream.Send: it waits for queue space first.
func (c *Conn) enqueueItem(ctx context.Context, id uint32, flags frame.Flags, md, data []byte) error {
	if err := c.checkFrameSize(frame.TypePayload, md, data); err != nil {
		return err
	}
	if err := c.lockQueueSpace(ctx); err != nil {
		return err
	}
	c.appendPayloadLocked(frame.TypePayload, id, flags, 0, md, data, false, nil)
	c.unlockQueue()
	return nil
}

func (c *Conn) sendRequestN(id, n uint32) error {
	if err := c.lockQueue(); err != nil {
		return err
	}
	off := len(c.wbuf)
	c.wbuf = frame.AppendRequestN(c.wbuf, id, n)
	c.push(off, nil, nil, nil)
	c.unlockQueue()
	return nil
}

func (c *Conn) sendCancel(id uint32) error {
	if err := c.lockQueue(); err != nil {
		return err
	}
	off := len(c.wbuf)
	c.wbuf = frame.AppendCancel(c.wbuf, id)
	c.push(off, nil, nil, nil)
	c.unlockQueue()
	return nil
}

func (c *Conn) sendError(id uint32, code frame.ErrorCode, msg string) error {
	if err := c.lockQueue(); err != nil {
		return err
	}
	off := len(c.wbuf)
	c.wbuf = frame.AppendError(c.wbuf, id, code, msg)
	c.push(off, nil, nil, nil)
	c.unlockQueue()
	return nil
}

func (c *Conn) sendKeepalive(respond bool, data []byte) error {
	if err := c.lockQueue(); err != nil {
		return err
	}
	off := len(c.wbuf)
	c.wbuf = frame.AppendKeepalive(c.wbuf, respond, 0, data)
	c.push(off, nil, nil, nil)
	c.unlockQueue()
	return nil
}

func (c *Conn) sendFrame(encode func([]byte) []byte) error {
	if err := c.lockQueue(); err != nil {
		return err
	}
	off := len(c.wbuf)
	c.wbuf = encode(c.wbuf)
	c.push(off, nil, nil, nil)
	c.unlockQueue()
	return nil
}

// writeLoop is the connection's only writer: at most one runs at a time (c.writing, under wmu). It
// writes batches until the queue is empty and then returns, so an idle connection has no writer
// goroutine; unlockQueue starts the next one with the next frame. After shutdown it writes everything
// queued before, closes the transport and closes writerDone.
func (c *Conn) writeLoop() {
	var (
		failed   bool
		yielded  bool
		lingered bool
	)
	for {
		c.wmu.Lock()
		if len(c.wq) == 0 && !c.wclosed {
			if !lingered {
				// Yield once before exiting: a producer that is about to queue its next frame (a
				// stream being sent) then finds this writer instead of starting another.
				c.wmu.Unlock()
				runtime.Gosched()
				lingered = true
				continue
			}
			c.writing = false
			c.wmu.Unlock()
			return
		}
		lingered = false
		if len(c.wq) < yieldBelow && !c.wclosed && !yielded {
			// A small batch: let the goroutines that are producing frames right now (the reader
			// answering a burst of requests, requesters) add theirs, so that one flush carries many.
			c.wmu.Unlock()
			runtime.Gosched()
			yielded = true
			continue
		}
		yielded = false
		q, buf := c.wq, c.wbuf
		c.wq, c.wbuf = c.wqSpare[:0], c.wbufSpare[:0]
		closed := c.wclosed
		if c.spaceWaiters > 0 {
			select {
			case c.space <- struct{}{}:
			default:
			}
		}
		c.wmu.Unlock()

		if !failed {
			if err := c.writeBatch(q, buf); err != nil {
				failed = true
				c.shutdown(fmt.Errorf("write: %w", err), 0, "", false)
				closed = false // drain what was queued meanwhile on the next round
			}
		}
		for i := range q {
			if n := q[i].notify; n != nil {
				n.dropped = failed // read by the waiter after the token
				n.wr <- struct{}{}
			}
			q[i] = wframe{}
		}
		// Keep big batch buffers while batches are big (streaming); drop them after a run of small
		// batches, so that a connection back to light traffic does not pin megabytes.
		if len(buf) > maxRetainedBatch {
			c.smallRun = 0
		} else if c.smallRun++; c.smallRun > 64 && cap(buf) > maxRetainedBatch {
			buf = nil
		}
		c.wqSpare, c.wbufSpare = q[:0], buf[:0]
		if closed {
			c.closeTransport()
			close(c.writerDone)
			return
		}
	}
}

func (c *Conn) writeBatch(q []wframe, buf []byte) error {
	for i := range q {
		f := &q[i]
		if err := c.tc.WriteFrame(buf[f.off:f.end], f.md, f.data); err != nil {
			return err
		}
	}
	return c.tc.Flush()
}
