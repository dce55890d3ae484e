package rsocket

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/rsocket/frame"
)

// fakeSink records batches for writeQueue tests.
type fakeSink struct {
	mu       sync.Mutex
	frames   [][]byte
	batches  int
	fail     error // writeBatch fails with it (once)
	pause    bool  // writeFailed answer
	finished chan struct{}

	// tryWriteBatch (the reader's flush)
	tries, rests int
	partial      bool // the next tryWriteBatch writes nothing and leaves its batch to flushRest
	held         []wframe
	heldBuf      []byte
}

func newFakeSink() *fakeSink { return &fakeSink{finished: make(chan struct{})} }

func (s *fakeSink) writeBatch(q []wframe, buf []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		err := s.fail
		s.fail = nil
		return err
	}
	s.batches++
	for _, f := range q {
		b := append(append(append([]byte{}, buf[f.off:f.end]...), f.md...), f.data...)
		s.frames = append(s.frames, b)
	}
	return nil
}

func (s *fakeSink) tryWriteBatch(q []wframe, buf []byte) (bool, error) {
	s.mu.Lock()
	s.tries++
	if s.partial {
		s.partial = false
		s.held, s.heldBuf = q, buf
		s.mu.Unlock()
		return false, nil
	}
	s.mu.Unlock()
	if err := s.writeBatch(q, buf); err != nil {
		return false, err
	}
	return true, nil
}

func (s *fakeSink) flushRest() error {
	s.mu.Lock()
	q, buf := s.held, s.heldBuf
	s.held, s.heldBuf = nil, nil
	s.rests++
	s.mu.Unlock()
	return s.writeBatch(q, buf)
}

func (s *fakeSink) counts() (batches, tries, rests int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.batches, s.tries, s.rests
}

func (s *fakeSink) writeFailed(error) bool { return s.pause }
func (s *fakeSink) finish()                { close(s.finished) }

func (s *fakeSink) snapshot() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte{}, s.frames...)
}

// idle reports idleLocked under mu.
func (q *writeQueue) idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.idleLocked()
}

func waitFrames(t *testing.T, s *fakeSink, n int) [][]byte {
	t.Helper()
	testutil.EventuallyWithin(t, 5*time.Second, func() bool { return len(s.snapshot()) >= n }, fmt.Sprintf("the writer to write %d frames", n))
	return s.snapshot()
}

func TestWriteQueueOrderAndZeroCopy(t *testing.T) {
	s := newFakeSink()
	var q writeQueue
	q.init(s, 1<<20)
	n := &notifier{wr: make(chan struct{}, 1)}
	data := []byte("zero-copy data")
	for i := uint32(1); i <= 50; i++ {
		if err := q.lock(); err != nil {
			t.Fatal(err)
		}
		if i == 25 {
			q.appendPayload(0, frame.TypeRequestResponse, i, 0, 0, nil, data, true, n)
		} else {
			q.appendControl(&control{t: frame.TypeRequestN, id: i, n: i})
		}
		q.unlock()
	}
	<-n.wr // the writer is done with data
	if n.dropped {
		t.Fatal("frame reported dropped")
	}
	got := waitFrames(t, s, 50)
	for i, b := range got {
		f, err := frame.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		if f.StreamID() != uint32(i+1) {
			t.Fatalf("frame %d on stream %d: order lost", i, f.StreamID())
		}
		if i+1 == 25 && string(f.Data()) != string(data) {
			t.Fatalf("zero-copy frame data %q", f.Data())
		}
	}
	q.close(ErrClosed, nil)
	<-s.finished
	if err := q.lock(); !errors.Is(err, ErrClosed) {
		t.Fatalf("lock after close: %v", err)
	}
}

func TestWriteQueueCloseFlushesFinalFrame(t *testing.T) {
	s := newFakeSink()
	var q writeQueue
	q.init(s, 1<<20)
	_ = q.lock()
	q.appendControl(&control{t: frame.TypeCancel, id: 3})
	q.unlock()
	q.close(ErrClosed, &control{t: frame.TypeError, code: frame.CodeConnectionClose})
	<-s.finished
	got := s.snapshot()
	if len(got) != 2 || frame.Frame(got[1]).Type() != frame.TypeError {
		t.Fatalf("frames after close: %d, last %v", len(got), frame.Frame(got[len(got)-1]))
	}
}

// A failed write without pause drops the batch (waiters learn it) and everything queued after; close
// then finishes.
func TestWriteQueueFailureDrops(t *testing.T) {
	s := newFakeSink()
	s.fail = errors.New("broken pipe")
	var q writeQueue
	q.init(s, 1<<20)
	n := &notifier{wr: make(chan struct{}, 1)}
	_ = q.lock()
	q.appendPayload(0, frame.TypeRequestFNF, 1, 0, 0, nil, []byte("x"), true, n)
	q.unlock()
	<-n.wr
	if !n.dropped {
		t.Fatal("frame of a failed batch not reported dropped")
	}
	q.close(ErrClosed, nil)
	<-s.finished
}

// Paused: frames are kept and nothing is written until resume; a failure with pause keeps the queue
// accepting.
func TestWriteQueuePauseResume(t *testing.T) {
	s := newFakeSink()
	var q writeQueue
	q.init(s, 1<<20)
	q.pause()
	for i := uint32(1); i <= 3; i++ {
		_ = q.lock()
		q.appendControl(&control{t: frame.TypeCancel, id: i})
		q.unlock()
	}
	time.Sleep(10 * time.Millisecond)
	if len(s.snapshot()) != 0 || !q.idle() {
		t.Fatal("paused queue wrote frames")
	}
	q.resume()
	waitFrames(t, s, 3)

	s.mu.Lock()
	s.fail, s.pause = errors.New("reset"), true
	s.mu.Unlock()
	_ = q.lock()
	q.appendControl(&control{t: frame.TypeCancel, id: 9})
	q.unlock()
	testutil.EventuallyWithin(t, 5*time.Second, func() bool { return q.idle() && q.paused },
		"the queue to pause after a failed write")
	if err := q.lock(); err != nil {
		t.Fatalf("paused queue refuses frames: %v", err)
	}
	q.appendControl(&control{t: frame.TypeCancel, id: 11})
	q.unlock()
	q.resume()
	got := waitFrames(t, s, 4)
	if id := frame.Frame(got[3]).StreamID(); id != 11 {
		t.Fatalf("after resume wrote stream %d, want 11", id)
	}
	q.close(ErrClosed, nil)
	<-s.finished
}

// lockSpace waits while the copied bytes reach maxQueued (and while full reports true), until the
// writer takes the batch, or ctx ends.
func TestWriteQueueBackPressure(t *testing.T) {
	s := newFakeSink()
	var q writeQueue
	q.init(s, 64)
	q.pause() // the writer takes nothing until resume
	full := true
	var fmu sync.Mutex
	q.full = func() bool { fmu.Lock(); defer fmu.Unlock(); return full }
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := q.lockSpace(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("lockSpace while full: %v", err)
	}
	fmu.Lock()
	full = false
	fmu.Unlock()
	q.spaceFreed()
	if err := q.lockSpace(context.Background()); err != nil {
		t.Fatal(err)
	}
	q.appendPayload(0, frame.TypePayload, 1, frame.FlagNext, 0, nil, make([]byte, 100), false, nil)
	q.unlock()
	got := make(chan error, 1)
	go func() {
		err := q.lockSpace(context.Background())
		if err == nil {
			q.mu.Unlock()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("lockSpace did not wait with %d bytes queued: %v", 100, err)
	case <-time.After(20 * time.Millisecond):
	}
	q.resume() // the writer takes the batch: space again
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	q.close(ErrClosed, nil)
	<-s.finished
}

// TestWriteQueueIdleAfterClose: once the last writer has written what was queued before close (here its
// write fails and the sink pauses, as a resumable session losing its transport does) and finished, the
// queue is idle, so a resume taking over the session (quiesce) does not wait for a writer that is gone.
// The writer keeps writing set, so no second writer starts.
func TestWriteQueueIdleAfterClose(t *testing.T) {
	for _, pause := range []bool{false, true} {
		s := newFakeSink()
		s.fail, s.pause = errors.New("transport gone"), pause
		var q writeQueue
		q.init(s, 1<<20)
		if err := q.lock(); err != nil {
			t.Fatal(err)
		}
		q.appendControl(&control{t: frame.TypeRequestN, id: 1, n: 1})
		q.mu.Unlock() // queued, no writer yet
		q.close(ErrClosed, &control{t: frame.TypeError, code: frame.CodeConnectionClose})
		select {
		case <-s.finished:
		case <-time.After(5 * time.Second):
			t.Fatalf("pause=%v: the writer did not finish", pause)
		}
		testutil.EventuallyWithin(t, 5*time.Second, q.idle,
			fmt.Sprintf("pause=%v: the queue to be idle after its writer finished", pause))
		q.mu.Lock()
		writing := q.writing
		q.mu.Unlock()
		if !writing {
			t.Errorf("pause=%v: writing reset after close: a second writer could start", pause)
		}
	}
}

// blockingSink holds every batch until release is closed, and reports each batch it starts on started.
type blockingSink struct {
	fakeSink
	started chan struct{}
	release chan struct{}
}

func (s *blockingSink) writeBatch(q []wframe, buf []byte) error {
	s.started <- struct{}{}
	<-s.release
	return s.fakeSink.writeBatch(q, buf)
}

// TestWriteQueueWaitIdle: waitIdle returns only once the writer has stopped (here: after its blocked batch),
// and at once when no writer runs; a resume waits there for the paused writer (quiesce).
func TestWriteQueueWaitIdle(t *testing.T) {
	s := &blockingSink{fakeSink: fakeSink{finished: make(chan struct{})}, started: make(chan struct{}, 4), release: make(chan struct{})}
	var q writeQueue
	q.init(s, 1<<20)
	q.waitIdle() // no writer yet
	_ = q.lock()
	q.appendControl(&control{t: frame.TypeCancel, id: 1})
	q.unlock()
	<-s.started // the writer is in its batch
	q.pause()
	done := make(chan struct{})
	go func() { q.waitIdle(); close(done) }()
	select {
	case <-done:
		t.Fatal("waitIdle returned while the writer was writing")
	case <-time.After(20 * time.Millisecond):
	}
	close(s.release)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("waitIdle did not return after the writer stopped")
	}
	if !q.idle() || len(s.snapshot()) != 1 {
		t.Fatalf("after waitIdle: idle %v, frames %d", q.idle(), len(s.snapshot()))
	}
	q.close(ErrClosed, nil)
	<-s.finished
	q.waitIdle() // finished: at once
}

// queueCancels queues n CANCEL frames (ids from..from+n-1), each with its own lock/unlock.
func queueCancels(t *testing.T, q *writeQueue, from, n uint32) {
	t.Helper()
	for id := from; id < from+n; id++ {
		if err := q.lock(); err != nil {
			t.Fatal(err)
		}
		q.appendControl(&control{t: frame.TypeCancel, id: id})
		q.unlock()
	}
}

// TestWriteQueueReaderFlush: while the reader defers (deferToReader), queued frames start no writer;
// flushFromReader writes them itself, on the calling goroutine, in one batch, and leaves the queue idle.
func TestWriteQueueReaderFlush(t *testing.T) {
	s := newFakeSink()
	var q writeQueue
	q.init(s, 1<<20)
	q.deferToReader()
	queueCancels(t, &q, 1, 3)
	time.Sleep(20 * time.Millisecond) // a writer goroutine, if one had started, would have written by now
	if b, tries, _ := s.counts(); b != 0 || tries != 0 {
		t.Fatalf("while deferred: %d batches written, %d tries; want none", b, tries)
	}
	q.flushFromReader()
	if b, tries, rests := s.counts(); b != 1 || tries != 1 || rests != 0 {
		t.Fatalf("after flushFromReader: %d batches, %d tries, %d rests; want 1, 1, 0 (written inline)", b, tries, rests)
	}
	if got := len(s.snapshot()); got != 3 {
		t.Fatalf("%d frames written, want 3", got)
	}
	if !q.idle() {
		t.Fatal("a writer still runs after the reader's flush")
	}
	// Not deferred any more: the next frame starts a writer goroutine as usual.
	queueCancels(t, &q, 4, 1)
	waitFrames(t, s, 4)
	if _, tries, _ := s.counts(); tries != 1 {
		t.Fatalf("%d tries, want 1: the frame after the flush was written by the reader", tries)
	}
}

// TestWriteQueueReaderFlushRest: when the socket does not take the reader's batch at once, a writer
// goroutine finishes it (flushRest) and signals the zero-copy frame only then; the reader does not wait.
func TestWriteQueueReaderFlushRest(t *testing.T) {
	s := newFakeSink()
	s.partial = true
	var q writeQueue
	q.init(s, 1<<20)
	q.deferToReader()
	n := &notifier{wr: make(chan struct{}, 1)}
	if err := q.lock(); err != nil {
		t.Fatal(err)
	}
	q.appendPayload(0, frame.TypeRequestResponse, 1, 0, 0, nil, []byte("data"), true, n)
	q.unlock()
	q.flushFromReader()
	select {
	case <-n.wr:
	case <-time.After(5 * time.Second):
		t.Fatal("the zero-copy frame was never signalled")
	}
	if n.dropped {
		t.Fatal("frame reported dropped")
	}
	if _, tries, rests := s.counts(); tries != 1 || rests != 1 {
		t.Fatalf("%d tries, %d rests; want 1 and 1", tries, rests)
	}
	if got := waitFrames(t, s, 1); len(got) != 1 {
		t.Fatalf("%d frames, want 1", len(got))
	}
	testutil.EventuallyWithin(t, 5*time.Second, q.idle, "the writer that finished the batch to stop")
	queueCancels(t, &q, 2, 1) // the queue goes on with a writer goroutine
	waitFrames(t, s, 2)
}

// TestWriteQueueDeferLimits: what is queued while the reader defers still goes out without it when
// waiting for it could stall: a burst of deferMax frames, a sender waiting for queue space (which may be
// the reader itself, in a handler), and a reader that stops (stopDeferring).
func TestWriteQueueDeferLimits(t *testing.T) {
	t.Run("burst", func(t *testing.T) {
		s := newFakeSink()
		var q writeQueue
		q.init(s, 1<<20)
		q.deferToReader()
		queueCancels(t, &q, 1, deferMax)
		waitFrames(t, s, deferMax)
	})
	t.Run("space", func(t *testing.T) {
		s := newFakeSink()
		var q writeQueue
		q.init(s, 64) // copied bytes beyond which lockSpace waits
		q.deferToReader()
		data := make([]byte, 100)
		for i := range 2 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := q.lockSpace(ctx)
			cancel()
			if err != nil {
				t.Fatalf("send %d: %v: a full queue waited for the deferring reader", i, err)
			}
			q.appendPayload(0, frame.TypePayload, 1, frame.FlagNext, 0, nil, data, false, nil)
			q.unlock()
		}
		// The writer started for the first send may have stopped before the second was queued: that one
		// waits for the reader, whose flush at the end of its read writes it.
		q.flushFromReader()
		waitFrames(t, s, 2)
	})
	t.Run("stop", func(t *testing.T) {
		s := newFakeSink()
		var q writeQueue
		q.init(s, 1<<20)
		q.deferToReader()
		queueCancels(t, &q, 1, 2)
		q.stopDeferring()
		waitFrames(t, s, 2)
		if _, tries, _ := s.counts(); tries != 0 {
			t.Fatalf("%d tries: stopDeferring wrote on the reader", tries)
		}
	})
}
