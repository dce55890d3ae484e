package rsocket

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/rsgate/rsgate/rsocket/frame"
)

// writeQueue is a session's outbound frame queue (grpc-go controlBuffer style). Any goroutine appends
// frames under mu; one writer goroutine at a time swaps the whole queue out (O(1)), hands the batch to a
// batchWriter (which writes every frame and flushes once) and signals the frames' notifications. The
// writer runs only while frames wait: it exits when the queue is empty, and the next frame queued starts
// one again, so an idle session holds no writer goroutine.
//
// A queued frame is buf[off:end] (the encoded header, or the whole frame when its payload was copied)
// followed by md and data, which are caller slices written in place (zero copy) when the enqueuer keeps
// them untouched until notified. notify receives exactly one token per queued frame that carries one:
// after the batch that held it was written, or when it was dropped (notify.dropped then says so).
//
// States (all under mu): open; paused (the session has no binding: frames are kept, no writer runs;
// resume); closed (no more frames accepted: closeErr is returned; the writer writes what was queued
// before, then calls the sink's finish).
type writeQueue struct {
	mu           sync.Mutex
	frames       []wframe
	buf          []byte
	closed       bool
	closeErr     error
	paused       bool
	writing      bool // a writer goroutine runs (or is about to)
	finished     bool // the last writer wrote what was queued before close and ran the sink's finish
	space        chan struct{}
	spaceWaiters int
	maxQueued    int           // bytes of buf beyond which lockSpace waits
	full         func() bool   // lockSpace also waits while this reports true (resume buffer); may be nil
	sink         batchWriter   // set once before the first frame
	runFn        func()        // q.run, bound once: "go q.runFn()" does not allocate
	spare        []wframe      // writer-owned: the batch buffers swapped with frames and buf
	spareBuf     []byte        //
	smallRun     int           // writer-owned: batches in a row that were small (see run)
	idleWait     chan struct{} // closed when the writer stops (waitIdle); nil: nobody waits
	deferStart   atomic.Bool   // the reader writes what is queued (deferToReader): unlock starts no writer
}

// wframe is one queued frame (see writeQueue).
type wframe struct {
	off, end int
	md, data []byte
	notify   *notifier
}

// notifier is what a zero-copy enqueuer waits on: one token on wr once the writer is done with its slices.
type notifier struct {
	wr chan struct{}
	// dropped: set by the writer before the token when the frame was not (surely) written.
	dropped bool
}

// batchWriter is where the writer puts batches: a session's current binding.
type batchWriter interface {
	// writeBatch writes the frames and flushes. An error means the batch may be partly written.
	writeBatch(q []wframe, buf []byte) error
	// tryWriteBatch is writeBatch without waiting for the peer: done false (and no error) means the rest
	// waits in the transport for flushRest, which the caller must call next.
	tryWriteBatch(q []wframe, buf []byte) (done bool, err error)
	// flushRest writes what tryWriteBatch left, waiting as writeBatch does.
	flushRest() error
	// writeFailed is told about the first error of writeBatch; it returns true when the queue should
	// pause (keep accepting frames, write nothing until resumed) rather than drop what is queued.
	writeFailed(err error) (pause bool)
	// finish runs once on the writer after the queue was closed and everything before was written.
	finish()
}

const (
	// yieldBelow: the writer yields once before taking a batch of fewer frames.
	yieldBelow = 16
	// deferMax: with this many frames queued, a writer goroutine starts even while the reader is to write
	// them (deferToReader), so that a long read batch does not hold back a burst from other goroutines.
	deferMax = 256
	// maxRetainedBatch: batch buffers with a larger capacity are dropped after a run of batches that
	// were all smaller than this.
	maxRetainedBatch = 256 << 10
)

func (q *writeQueue) init(sink batchWriter, maxQueued int) {
	q.sink = sink
	q.maxQueued = maxQueued
	q.space = make(chan struct{}, 1)
	q.runFn = q.run
}

// lock takes mu if the queue still accepts frames.
func (q *writeQueue) lock() error {
	q.mu.Lock()
	if q.closed {
		err := q.closeErr
		q.mu.Unlock()
		return err
	}
	return nil
}

// fullLocked reports whether lockSpace must wait.
func (q *writeQueue) fullLocked() bool {
	return len(q.buf) >= q.maxQueued || (q.full != nil && q.full())
}

// lockSpace is lock that first waits (bounded by ctx) until the copied bytes waiting in the queue are
// below maxQueued: the back-pressure of Stream.Send.
func (q *writeQueue) lockSpace(ctx context.Context) error {
	q.mu.Lock()
	for !q.closed && q.fullLocked() {
		q.spaceWaiters++
		// What fills the queue may wait for the reader (deferToReader), and this may be the reader.
		start := q.canStartLocked()
		if start {
			q.writing = true
		}
		q.mu.Unlock()
		if start {
			go q.runFn()
		}
		select {
		case <-q.space:
		case <-ctx.Done():
			q.mu.Lock()
			q.spaceWaiters--
			q.mu.Unlock()
			return ctx.Err()
		}
		q.mu.Lock()
		q.spaceWaiters--
	}
	if q.closed {
		err := q.closeErr
		q.mu.Unlock()
		return err
	}
	if q.spaceWaiters > 0 && !q.fullLocked() {
		q.signalSpaceLocked() // pass the wake-up on to the next waiter
	}
	return nil
}

func (q *writeQueue) signalSpaceLocked() {
	select {
	case q.space <- struct{}{}:
	default:
	}
}

// spaceFreed wakes a lockSpace waiter after full may have changed to false.
func (q *writeQueue) spaceFreed() {
	q.mu.Lock()
	if q.spaceWaiters > 0 {
		q.signalSpaceLocked()
	}
	q.mu.Unlock()
}

// unlock releases mu and starts a writer when frames wait and none is running. A running writer looks
// at the queue under mu before it exits, so it takes whatever was queued before that.
func (q *writeQueue) unlock() {
	start := q.canStartLocked()
	if start && !q.closed && len(q.frames) < deferMax && q.deferStart.Load() {
		start = false // the reader writes them (flushFromReader)
	}
	if start {
		q.writing = true
	}
	q.mu.Unlock()
	if start {
		go q.runFn()
	}
}

// canStartLocked reports whether a writer is needed and none runs: frames wait (or the queue closed and
// its sink must finish) and the queue is not paused. mu must be held.
func (q *writeQueue) canStartLocked() bool {
	return !q.writing && !q.paused && (len(q.frames) > 0 || q.closed)
}

// push queues buf[off:] plus md and data. mu must be held.
func (q *writeQueue) push(off int, md, data []byte, n *notifier) {
	q.frames = append(q.frames, wframe{off: off, end: len(q.buf), md: md, data: data, notify: n})
}

// appendPayload encodes one logical REQUEST_*/PAYLOAD frame, fragmented when it exceeds mtu (0: never).
// zeroCopy: md and data are referenced, not copied; n (only with zeroCopy) is signalled once the last
// fragment has been written. mu must be held.
func (q *writeQueue) appendPayload(mtu int, t frame.Type, id uint32, flags frame.Flags, initialN uint32, md, data []byte, zeroCopy bool, n *notifier) {
	if !frame.NeedsFragmentation(mtu, t, md, data) {
		off := len(q.buf)
		q.buf = frame.AppendPrefix(q.buf, t, id, flags, initialN, len(md), md != nil)
		if zeroCopy {
			q.push(off, md, data, n)
			return
		}
		q.buf = append(append(q.buf, md...), data...)
		q.push(off, nil, nil, nil)
		return
	}
	fr := frame.NewFragmenter(mtu, t, flags, initialN, md, data)
	for f, ok := fr.Next(); ok; f, ok = fr.Next() {
		off := len(q.buf)
		q.buf = f.AppendPrefix(q.buf, id)
		if zeroCopy {
			q.push(off, f.Metadata, f.Data, nil)
		} else {
			q.buf = append(append(q.buf, f.Metadata...), f.Data...)
			q.push(off, nil, nil, nil)
		}
	}
	q.frames[len(q.frames)-1].notify = n
}

// control is a frame without a caller payload (REQUEST_N, CANCEL, ERROR, KEEPALIVE, LEASE,
// METADATA_PUSH), queued by value through appendControl: one path for all of them, no closure.
type control struct {
	t        frame.Type
	id       uint32
	n        uint32          // REQUEST_N: n; LEASE: requests
	ttl      uint32          // LEASE: ttl in ms
	code     frame.ErrorCode // ERROR
	msg      string          // ERROR
	respond  bool            // KEEPALIVE: R flag
	position uint64          // KEEPALIVE: last received position
	data     []byte          // KEEPALIVE data, LEASE or METADATA_PUSH metadata (copied)
}

// appendControl encodes c into the queue. mu must be held.
func (q *writeQueue) appendControl(c *control) {
	off := len(q.buf)
	switch c.t {
	case frame.TypeRequestN:
		q.buf = frame.AppendRequestN(q.buf, c.id, c.n)
	case frame.TypeCancel:
		q.buf = frame.AppendCancel(q.buf, c.id)
	case frame.TypeError:
		q.buf = frame.AppendError(q.buf, c.id, c.code, c.msg)
	case frame.TypeKeepalive:
		q.buf = frame.AppendKeepalive(q.buf, c.respond, c.position, c.data)
	case frame.TypeLease:
		q.buf = frame.AppendLease(q.buf, c.ttl, c.n, c.data)
	case frame.TypeMetadataPush:
		q.buf = frame.AppendMetadataPush(q.buf, c.data)
	default:
		panic("rsocket: appendControl: unexpected frame type " + c.t.String())
	}
	q.push(off, nil, nil, nil)
}

// close stops the queue (once): later frames fail with err; the writer writes what is queued and calls
// the sink's finish. final, when non-nil, is queued as the last frame first.
func (q *writeQueue) close(err error, final *control) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	if final != nil {
		q.appendControl(final)
	}
	q.closed, q.closeErr = true, err
	q.paused = false // nothing can be resumed any more: the writer drops (or writes) what is left
	q.unlock()
}

// pause stops writing (the session lost its binding) until resume; frames keep being accepted.
func (q *writeQueue) pause() {
	q.mu.Lock()
	if !q.closed {
		q.paused = true
	}
	q.mu.Unlock()
}

// idleLocked reports whether no writer runs (after pause: the binding may be replaced). After close, the
// last writer keeps writing set (so that no other one starts) and is idle once it has finished. mu must
// be held.
func (q *writeQueue) idleLocked() bool { return !q.writing || q.finished }

// waitIdle blocks until no writer runs (see idleLocked): a resume waits there for the paused writer to
// finish its last batch.
func (q *writeQueue) waitIdle() {
	q.mu.Lock()
	for !q.idleLocked() {
		if q.idleWait == nil {
			q.idleWait = make(chan struct{})
		}
		ch := q.idleWait
		q.mu.Unlock()
		<-ch
		q.mu.Lock()
	}
	q.mu.Unlock()
}

// wakeIdleLocked releases the waitIdle callers after the writer stopped. mu must be held.
func (q *writeQueue) wakeIdleLocked() {
	if q.idleWait != nil {
		close(q.idleWait)
		q.idleWait = nil
	}
}

// resume ends a pause and starts a writer for what waits.
func (q *writeQueue) resume() {
	q.mu.Lock()
	q.paused = false
	q.unlock()
}

// run is the queue's writer goroutine: at most one writer runs at a time (writing, under mu). It writes
// batches until the queue is empty (or paused) and returns; after close it writes everything queued before
// and calls the sink's finish.
func (q *writeQueue) run() { q.loop(false) }

// loop is run's body; failed: a write failed and the queue is closed: drop the rest.
func (q *writeQueue) loop(failed bool) {
	var yielded, lingered bool
	for {
		q.mu.Lock()
		if q.paused || (len(q.frames) == 0 && !q.closed) {
			if !lingered && !q.paused {
				// Yield once before exiting: a producer that is about to queue its next frame (a
				// stream being sent) then finds this writer instead of starting another.
				q.mu.Unlock()
				runtime.Gosched()
				lingered = true
				continue
			}
			q.writing = false
			q.wakeIdleLocked()
			q.mu.Unlock()
			return
		}
		lingered = false
		if len(q.frames) < yieldBelow && !q.closed && !yielded {
			// A small batch: let the goroutines that are producing frames right now (the reader
			// answering a burst of requests, requesters) add theirs, so that one flush carries many.
			q.mu.Unlock()
			runtime.Gosched()
			yielded = true
			continue
		}
		yielded = false
		batch, buf, closed := q.takeLocked()
		q.mu.Unlock()

		dropped := failed
		if !failed {
			err := q.sink.writeBatch(batch, buf)
			dropped, failed = q.wrote(err)
			if failed {
				closed = false // drain what was queued meanwhile on the next round
			}
		}
		q.release(batch, buf, dropped)
		if closed {
			q.sink.finish()
			q.mu.Lock()
			q.finished = true
			q.wakeIdleLocked()
			q.mu.Unlock()
			return
		}
	}
}

// takeLocked swaps the queue out as the next batch. mu must be held, by the writer.
func (q *writeQueue) takeLocked() (batch []wframe, buf []byte, closed bool) {
	batch, buf = q.frames, q.buf
	q.frames, q.buf = q.spare[:0], q.spareBuf[:0]
	if q.spaceWaiters > 0 {
		q.signalSpaceLocked()
	}
	return batch, buf, q.closed
}

// wrote handles the outcome of a batch's write: on error the queue pauses (the sink keeps the frames:
// resume buffer, or they are lost with the binding, which frees their callers either way) or fails
// (failed: drop all that follows). dropped: the batch's frames were not (surely) written.
func (q *writeQueue) wrote(err error) (dropped, failed bool) {
	if err == nil {
		return false, false
	}
	if q.sink.writeFailed(err) {
		q.pause()
		return false, false
	}
	return true, true
}

// release signals a written (or dropped) batch's notifications and keeps its buffers for the next one.
func (q *writeQueue) release(batch []wframe, buf []byte, dropped bool) {
	for i := range batch {
		if n := batch[i].notify; n != nil {
			n.dropped = dropped // read by the waiter after the token
			n.wr <- struct{}{}
		}
		batch[i] = wframe{}
	}
	// Keep big batch buffers while batches are big (streaming); drop them after a run of small
	// batches, so that a session back to light traffic does not pin megabytes.
	if len(buf) > maxRetainedBatch {
		q.smallRun = 0
	} else if q.smallRun++; q.smallRun > 64 && cap(buf) > maxRetainedBatch {
		buf = nil
	}
	q.spare, q.spareBuf = batch[:0], buf[:0]
}

// deferToReader makes the session's reader the writer of what is queued from now until its
// flushFromReader: while it dispatches the frames of one read, the frames they produce (and any other)
// wait for it instead of starting a writer goroutine. Reader goroutine only.
func (q *writeQueue) deferToReader() { q.deferStart.Store(true) }

// flushFromReader ends deferToReader; the reader calls it once no whole frame is left in its read buffer,
// before it reads again, or when it stops. When frames wait and no writer runs, the reader writes them
// itself, without waiting for the peer (sink.tryWriteBatch): this saves the wake-up of a writer
// goroutine (and, with more than one P, often of a second thread) between a request and its answer. What
// the socket does not take at once is finished by a writer goroutine, so the reader never waits to write
// and keeps reading.
func (q *writeQueue) flushFromReader() {
	q.mu.Lock()
	q.deferStart.Store(false)
	if q.writing || q.paused || q.closed || len(q.frames) == 0 {
		q.unlock() // starts a writer for what waits, if any
		return
	}
	q.writing = true
	batch, buf, _ := q.takeLocked()
	q.mu.Unlock()
	done, err := q.sink.tryWriteBatch(batch, buf)
	if err == nil && !done {
		go q.finishBatch(batch, buf)
		return
	}
	dropped, failed := q.wrote(err)
	q.release(batch, buf, dropped)
	if failed {
		go q.loop(true)
		return
	}
	q.mu.Lock()
	q.writing = false
	q.wakeIdleLocked()
	q.unlock() // frames queued meanwhile: a writer goroutine takes them
}

// stopDeferring ends deferToReader without writing: a reader that stops leaves what waits to a writer
// goroutine.
func (q *writeQueue) stopDeferring() {
	q.mu.Lock()
	q.deferStart.Store(false)
	q.unlock()
}

// finishBatch is a writer goroutine that starts with the rest of a batch that tryWriteBatch left.
func (q *writeQueue) finishBatch(batch []wframe, buf []byte) {
	dropped, failed := q.wrote(q.sink.flushRest())
	q.release(batch, buf, dropped)
	q.loop(failed)
}
