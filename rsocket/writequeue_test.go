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
