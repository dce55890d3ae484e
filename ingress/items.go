package ingress

import (
	"sync"
	"time"

	"github.com/valyala/bytebufferpool"

	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/frame"
)

// itemPool holds the copies of stream items between the reader goroutine and the writer goroutine.
var itemPool bytebufferpool.Pool

// itemQueue is the backend half of a request-stream (streamer) or request-channel (wsChannel): the
// rsocket.Subscriber that copies the backend's items into a queue, the REQUEST_N credit the backend was
// granted, and how the backend ended. The Subscriber methods run on the backend connection's reader
// goroutine and only queue; the session's writer takes batches, counts what it delivered and tops the
// credit up with replenish.
type itemQueue struct {
	mu       sync.Mutex
	stream   *rsocket.Stream // the backend stream (guarded by mu where it is set after the stream began)
	queue    []*bytebufferpool.ByteBuffer
	received uint64 // items queued so far
	granted  uint64 // credit granted so far (initial N + REQUEST_N)
	ended    bool   // no more items will be queued (backend ended, or it broke the credit rule)
	endErr   error
	backDone bool          // the backend ended the stream itself: no CANCEL needed
	closed   bool          // the session is done (or closing): drop late items
	notify   chan struct{} // 1 slot: something was queued or the stream ended
	first    chan struct{} // when not nil: closed on the first signal from the backend
	firstAt  time.Time     // when that first signal came (zero until then)

	delivered uint64 // writer-owned: items written to the client
}

// OnNext implements rsocket.Subscriber (reader goroutine; must not block).
func (q *itemQueue) OnNext(p rsocket.Payload, complete bool) {
	q.mu.Lock()
	if q.closed || q.ended {
		q.mu.Unlock()
		return
	}
	bb := itemPool.Get()
	bb.B = append(bb.B[:0], p.Data...)
	q.queue = append(q.queue, bb)
	q.received++
	if q.received > q.granted {
		q.ended, q.endErr = true, errBackendOverflow
	} else if complete {
		q.ended, q.backDone = true, true
	}
	q.signalLocked()
	q.mu.Unlock()
}

// OnComplete implements rsocket.Subscriber.
func (q *itemQueue) OnComplete() {
	q.mu.Lock()
	q.ended, q.backDone = true, true
	q.signalLocked()
	q.mu.Unlock()
}

// OnError implements rsocket.Subscriber.
func (q *itemQueue) OnError(err error) {
	q.mu.Lock()
	q.backDone = true
	if !q.ended {
		q.ended, q.endErr = true, err
	}
	q.signalLocked()
	q.mu.Unlock()
}

func (q *itemQueue) signalLocked() {
	if q.first != nil && q.firstAt.IsZero() {
		q.firstAt = time.Now()
		close(q.first)
	}
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// replenish tops the backend's credit up to window once half of it has been delivered (writer).
func (q *itemQueue) replenish(window uint32) {
	w := uint64(window)
	q.mu.Lock()
	outstanding := q.granted - q.delivered
	var n uint64
	if outstanding <= w/2 {
		n = w - outstanding
		q.granted += n
	}
	st := q.stream
	q.mu.Unlock()
	if n > 0 {
		st.Request(uint32(min(n, frame.MaxRequestN)))
	}
}
