package ingress

import (
	"bufio"
	"bytes"
	"errors"
	"strconv"
	"time"

	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"

	"github.com/rsgate/rsgate/rsocket"
)

var (
	strTextEventStream = []byte("text/event-stream")
	strNDJSON          = []byte("application/x-ndjson")
	strCacheControl    = []byte("Cache-Control")
	strNoCache         = []byte("no-cache")
	strXAccelBuffering = []byte("X-Accel-Buffering")
	strNo              = []byte("no")
	strSSEID           = []byte("id: ")
	strSSEData         = []byte("data: ")
	strSSEErrorEvent   = []byte("event: error\ndata: ")
	strSSEPing         = []byte(": ping\n\n")
	errBackendOverflow = errors.New("ingress: backend sent more items than the credit it was granted")
	errCallEnded       = errors.New("ingress: call ended while writing") // writeItems stopped early
)

// streamer carries one request-stream from the backend to the HTTP client. The Subscriber half (itemQueue)
// runs on the backend connection's reader goroutine and only queues; the writer half (run) runs on
// fasthttp's stream-writer goroutine and owns everything else. It is not pooled: a late Subscriber call may
// still touch it after the stream ended. stream is set before anything else reads it.
type streamer struct {
	itemQueue // first signal tracked (first, firstAt)
	s         *Server
	st        *state
	rt        *route
	rq        *request
	member    *poolMember
	format    streamFormat
	// exit is closed, under mu, when the current HTTP request stops serving the stream (the stream ended,
	// or it was parked for resumption): it stops cancelOnDone, and after it the request state (rq) may be
	// released. A resumed stream gets a new one.
	exit chan struct{}
	rs   *resumable // SSE resumption (stream_resume.go); nil: the stream is not resumable

	// Writer-owned.
	start   time.Time // request start (access log, metrics)
	picked  time.Time // when the stream was requested (pool latency)
	eventID uint64    // sequence number of the last item written (SSE id)
	bytes   int
	status  int
	method  []byte
	path    []byte
	watch   *disconnectWatch
	lastAt  time.Time // the last batch from the backend (stream.idle_timeout, stream_idle.go)
	num     [20]byte  // scratch for event ids

	backendReleased bool // releaseBackend ran (owned by whoever holds the stream)
}

// serveStream starts a request-stream. It returns true when the stream writer took over the request (it then
// finishes metrics, access log and the pooled request), false when the handler answered an error itself.
func (s *Server) serveStream(ctx *fasthttp.RequestCtx, st *state, rt *route, rq *request) bool {
	format := chooseFormat(rt.format, ctx.Request.Header.Peek(fasthttp.HeaderAccept))
	resumable := format == formatSSE && rt.resumeWindow > 0
	if resumable {
		if id := ctx.Request.Header.PeekBytes(strLastEventID); len(id) > 0 {
			if done, ok := s.resumeStream(ctx, st, rt, rq, id); done {
				return ok // stream_resume.go: resumed, or answered 410
			}
		}
	}
	md, m, ok := s.prepare(ctx, rt, rq)
	if !ok {
		return false
	}
	sr := &streamer{
		s: s, st: st, rt: rt, rq: rq, member: m,
		itemQueue: itemQueue{
			granted: uint64(rt.window),
			notify:  make(chan struct{}, 1),
			first:   make(chan struct{}),
		},
		format: format,
		start:  ctx.Time(),
		picked: time.Now(),
	}
	c := rq.call
	c.start(ctx.Time(), rt.timeout)
	s.calls.add(c)
	conn := m.Conn()
	var err error
	if conn == nil {
		err = rsocket.ErrClosed
	} else {
		sr.stream, err = conn.RequestStream(rsocket.Payload{Metadata: md, Data: ctx.PostBody()}, rt.window, sr)
	}
	if err == nil {
		rq.streamID = sr.stream.ID()
	}
	if err != nil {
		m.DoneSession(sr.picked, err)
		s.calls.remove(c)
		writeFailure(ctx, classify(err, c.Cause(), rt))
		return false
	}
	sr.exit = make(chan struct{})
	go sr.cancelOnDone(c, c.Done(), sr.exit)
	// Wait briefly for the first signal so that an immediate error gets its own HTTP status.
	if w := s.opts.StreamErrorWait; w > 0 {
		t := time.NewTimer(w)
		select {
		case <-sr.first:
		case <-t.C:
		case <-c.Done():
		}
		t.Stop()
	}
	sr.mu.Lock()
	cause := c.Cause()
	nothingYet := len(sr.queue) == 0
	immediateErr := nothingYet && sr.ended && sr.endErr != nil
	canceled := nothingYet && !sr.ended && cause != nil
	if immediateErr || canceled {
		sr.closed = true
	}
	endErr, backDone := sr.endErr, sr.backDone
	sr.mu.Unlock()
	if immediateErr || canceled {
		if !backDone {
			sr.stream.Cancel()
		}
		merr := countsAgainstBackend(endErr)
		if canceled {
			merr, endErr = rsocket.ErrCanceled, cause
		}
		m.DoneSession(sr.picked, merr)
		sr.mu.Lock()
		close(sr.exit)
		sr.mu.Unlock()
		s.calls.remove(c)
		writeFailure(ctx, classify(endErr, cause, rt))
		return false
	}

	if resumable {
		s.resume.register(sr, rt, ctx.Path(), s.streamOwner(ctx), c, ctx.Conn()) // sets sr.rs (stream_resume.go) unless parking is off
	}
	sr.attach(ctx, c)
	return true
}

// attach makes ctx serve the stream: 200 with the stream headers, the client socket watched, the writer
// set (a new stream, or a resumed one).
func (sr *streamer) attach(ctx *fasthttp.RequestCtx, c *callCtx) {
	ctx.SetStatusCode(fasthttp.StatusOK)
	sr.status = fasthttp.StatusOK
	if sr.format == formatSSE {
		ctx.Response.Header.SetContentTypeBytes(strTextEventStream)
	} else {
		ctx.Response.Header.SetContentTypeBytes(strNDJSON)
	}
	ctx.Response.Header.SetCanonical(strCacheControl, strNoCache)
	ctx.Response.Header.SetCanonical(strXAccelBuffering, strNo)
	ctx.Response.ImmediateHeaderFlush = true
	sr.method = append([]byte(nil), ctx.Method()...)
	sr.path = append([]byte(nil), ctx.Path()...)
	sr.watch = watchDisconnect(ctx.Conn(), c)
	ctx.SetBodyStreamWriter(sr.run)
}

// chooseFormat resolves "auto": SSE when Accept names text/event-stream, NDJSON otherwise.
func chooseFormat(f streamFormat, accept []byte) streamFormat {
	if f != formatAuto {
		return f
	}
	if bytes.Contains(accept, strTextEventStream) {
		return formatSSE
	}
	return formatNDJSON
}

// cancelOnDone sends CANCEL to the backend as soon as the call context ends (route timeout, shutdown, gone
// client), even while the writer is blocked writing to a client that does not read. It captures the done
// channel up front and reads the (pooled) call context c only under mu while exit is open, that is while
// the request still owns c. A resumable stream whose client went away is left to the writer, which parks it
// (stream_resume.go).
func (sr *streamer) cancelOnDone(c *callCtx, done <-chan struct{}, exit <-chan struct{}) {
	select {
	case <-done:
		sr.mu.Lock()
		skip := false
		select {
		case <-exit:
			skip = true // the writer ended or parked the stream already
		default:
			skip = sr.rs != nil && c.Cause() == ErrClientGone
		}
		sr.mu.Unlock()
		if !skip {
			sr.stream.Cancel()
		}
	case <-exit:
	}
}

// run is the stream writer (fasthttp's stream-writer goroutine): it writes and flushes queued items, grants
// credit for what was flushed, and ends the stream on completion, error, timeout, shutdown, a stalled
// backend (stream.idle_timeout) or a gone client; a resumable SSE stream whose client went away is parked
// instead (stream_resume.go). A resumed stream first replays what the client missed.
func (sr *streamer) run(w *bufio.Writer) {
	c := sr.rq.call
	done := c.Done()
	var heartbeat <-chan time.Time
	if sr.format == formatSSE && sr.s.opts.SSEHeartbeat > 0 {
		ticker := time.NewTicker(sr.s.opts.SSEHeartbeat)
		heartbeat = ticker.C
		defer ticker.Stop()
	}
	idle, idleC := sr.idleTimer() // stream_idle.go
	if idle != nil {
		defer idle.Stop()
	}
	if sr.rs != nil && sr.rs.replayFrom < sr.eventID {
		if err := sr.replay(w); err != nil { // stream_resume.go
			sr.clientGone(w)
			return
		}
	}
	var batch []*bytebufferpool.ByteBuffer
	for {
		var (
			ended  bool
			endErr error
		)
		select {
		case <-sr.notify:
		case <-heartbeat:
			if _, err := w.Write(strSSEPing); err != nil || w.Flush() != nil {
				sr.clientGone(w)
				return
			}
			continue
		case now := <-idleC:
			if left := sr.idleLeft(now); left > 0 {
				idle.Reset(left)
				continue
			}
			sr.writeError(w, sr.idleFailure())
			sr.finish(errStreamIdle, nil)
			return
		case <-done:
			sr.callEnded(w, c)
			return
		}
		sr.mu.Lock()
		batch, sr.queue = sr.queue, batch[:0]
		ended, endErr = sr.ended, sr.endErr
		sr.mu.Unlock()

		n := len(batch)
		base := sr.eventID
		k, werr := sr.writeItems(w, batch, base, done)
		if werr == nil && n > 0 {
			werr = w.Flush()
		}
		if sr.rs != nil {
			// Every item of the batch gets its sequence number and is kept for replay, written or not: the
			// client's Last-Event-ID says what it really got. For the credit they count as delivered.
			sr.eventID = base + uint64(n)
			sr.delivered += uint64(n)
			sr.rs.keep(batch)
		} else {
			sr.eventID = base + uint64(k)
			sr.delivered += uint64(k)
			for _, bb := range batch {
				itemPool.Put(bb)
			}
		}
		clear(batch)
		sr.rt.m.addItems(k)
		if werr == errCallEnded {
			sr.callEnded(w, c)
			return
		}
		if werr != nil {
			sr.clientGone(w)
			return
		}
		if ended {
			if endErr != nil {
				sr.writeError(w, classify(endErr, nil, sr.rt))
			}
			if sr.rs != nil && sr.parkEnded(endErr) { // stream_resume.go: its end may not have reached the client
				return
			}
			sr.finish(nil, endErr)
			return
		}
		if n > 0 && idle != nil {
			sr.lastAt = time.Now() // one clock read per batch, only with an idle timeout
		}
		sr.replenish(sr.rt.window)
	}
}

// callEnded ends the stream after its call context ended (route timeout, shutdown, gone client): the
// client gets the in-stream error event, unless it is gone (then a resumable stream is parked).
func (sr *streamer) callEnded(w *bufio.Writer, c *callCtx) {
	cause := c.Cause()
	if cause == ErrClientGone {
		sr.clientGone(w)
		return
	}
	sr.writeError(w, classify(cause, cause, sr.rt))
	sr.finish(cause, nil)
}

// clientGone ends the stream of a client that went away, or parks it for resumption.
func (sr *streamer) clientGone(w *bufio.Writer) {
	if sr.rs != nil && sr.park(ErrClientGone, false) { // stream_resume.go
		return
	}
	sr.finish(ErrClientGone, nil)
}

// writeItems writes items in the stream's format (not flushed); the first item's sequence number is
// base+1. It stops early with errCallEnded when done closes (a timeout or shutdown: the client then gets
// the error event after at most the item being written, not after the whole batch). It returns the number
// of items written.
func (sr *streamer) writeItems(w *bufio.Writer, items []*bytebufferpool.ByteBuffer, base uint64, done <-chan struct{}) (int, error) {
	for i, bb := range items {
		select {
		case <-done:
			return i, errCallEnded
		default:
		}
		if sr.format == formatSSE {
			w.Write(strSSEID)
			if sr.rs != nil {
				w.Write(sr.rs.hex[:])
				w.WriteByte('-')
				sr.bytes += len(sr.rs.hex) + 1
			}
			num := strconv.AppendUint(sr.num[:0], base+uint64(i)+1, 10) // sr.num: a local array would escape
			w.Write(num)
			w.WriteByte('\n')
			sr.bytes += len(strSSEID) + len(num) + 1 + writeSSEData(w, bb.B) + 2
			if _, err := w.Write(newlines[:2]); err != nil {
				return i, err
			}
		} else {
			w.Write(bb.B)
			if err := w.WriteByte('\n'); err != nil {
				return i, err
			}
			sr.bytes += len(bb.B) + 1
		}
	}
	return len(items), nil
}

var newlines = []byte("\n\n")

// writeSSEData writes b as "data: " lines: a line break inside the item (\n, \r\n or \r) starts a new data
// line, so any item survives SSE framing. It returns the number of bytes written, without the final \n\n.
func writeSSEData(w *bufio.Writer, b []byte) int {
	n := 0
	for {
		i := bytes.IndexAny(b, "\r\n")
		line := b
		if i >= 0 {
			line = b[:i]
		}
		w.Write(strSSEData)
		w.Write(line)
		n += len(strSSEData) + len(line)
		if i < 0 {
			return n
		}
		w.WriteByte('\n')
		n++
		if b[i] == '\r' && i+1 < len(b) && b[i+1] == '\n' {
			i++
		}
		b = b[i+1:]
	}
}

// writeError writes an in-stream error: an SSE "error" event or an NDJSON error line.
func (sr *streamer) writeError(w *bufio.Writer, f failure) {
	bb := scratchPool.Get()
	if sr.format == formatSSE {
		bb.B = append(bb.B[:0], strSSEErrorEvent...)
		bb.B = appendJSONError(bb.B, f.msg, f.code, nil)
		bb.B = append(bb.B, newlines...)
	} else {
		bb.B = appendJSONError(bb.B[:0], f.msg, f.code, nil)
		bb.B = append(bb.B, '\n')
	}
	if _, err := w.Write(bb.B); err == nil {
		_ = w.Flush()
	}
	sr.bytes += len(bb.B)
	scratchPool.Put(bb)
	if sr.status < f.status {
		sr.status = f.status // the access log and metrics show how the stream ended
	}
}

// finish ends the stream exactly once, from the writer: cancels the backend side unless it ended itself
// (cause: why we end it; endErr: the backend's own error), returns queued buffers, releases the pool slot
// and the pooled request, and counts the stream.
func (sr *streamer) finish(cause, endErr error) {
	if sr.rs != nil {
		sr.s.resume.remove(sr) // before the call is released: a takeover may cancel it until then
	}
	sr.release(cause, endErr)
	sr.detach(cause)
}

// release ends the backend side exactly once: CANCEL unless the backend ended the stream itself, the
// queued (and kept) items back to their pool, the pool slot released.
func (sr *streamer) release(cause, endErr error) {
	sr.releaseBackend(cause, endErr)
	if sr.rs != nil {
		sr.rs.drop()
	}
}

// releaseBackend is release without the replay ring: a resumable stream that ended keeps its ring while it
// is parked (stream_resume.go). It runs once.
func (sr *streamer) releaseBackend(cause, endErr error) {
	if sr.backendReleased {
		return
	}
	sr.backendReleased = true
	sr.mu.Lock()
	sr.closed = true
	backendEnded := sr.backDone
	queue := sr.queue
	sr.queue = nil
	first := sr.firstAt
	sr.mu.Unlock()
	if !backendEnded {
		sr.stream.Cancel()
	}
	for _, bb := range queue {
		itemPool.Put(bb)
	}
	// The pool's EWMA gets the time to the first signal: the stream's duration says nothing about the
	// backend's speed. A stream we canceled is reported as canceled.
	if first.IsZero() {
		first = time.Now()
	}
	var merr error
	switch {
	case cause != nil:
		merr = rsocket.ErrCanceled
	default:
		merr = countsAgainstBackend(endErr)
	}
	sr.member.DoneSession(time.Now().Add(-first.Sub(sr.picked)), merr)
}

// detach ends the HTTP request serving the stream (the stream itself may go on, parked): socket watch
// stopped, call unregistered, metrics and access log, request state released.
func (sr *streamer) detach(cause error) {
	sr.watch.stop()
	sr.watch = nil
	sr.mu.Lock()
	close(sr.exit)
	sr.mu.Unlock()
	c := sr.rq.call
	sr.s.calls.remove(c)
	if cause == ErrClientGone && sr.status < 499 {
		sr.status = 499
	}
	d := time.Since(sr.start)
	sr.rt.m.end(sr.rq, sr.status, d)
	if sr.st.accessLog {
		sr.s.accessLog(sr.st, sr.method, sr.path, sr.rt.name, sr.rt.backend, sr.status, sr.bytes, d, sr.member, sr.rq.streamID)
	}
	releaseRequest(sr.rq)
	sr.rq = nil
}
