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
	exit      chan struct{} // closed when the stream is over (stops cancelOnDone)

	// Writer-owned.
	start   time.Time // request start (access log, metrics)
	picked  time.Time // when the stream was requested (pool latency)
	eventID uint64
	bytes   int
	status  int
	method  []byte
	path    []byte
	watch   *disconnectWatch
}

// serveStream starts a request-stream. It returns true when the stream writer took over the request (it then
// finishes metrics, access log and the pooled request), false when the handler answered an error itself.
func (s *Server) serveStream(ctx *fasthttp.RequestCtx, st *state, rt *route, rq *request) bool {
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
		format: chooseFormat(rt.format, ctx.Request.Header.Peek(fasthttp.HeaderAccept)),
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
		m.Done(sr.picked, err)
		s.calls.remove(c)
		writeFailure(ctx, classify(err, c.Cause(), rt))
		return false
	}
	sr.exit = make(chan struct{})
	go sr.cancelOnDone(c.Done())
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
		m.Done(sr.picked, merr)
		close(sr.exit)
		s.calls.remove(c)
		writeFailure(ctx, classify(endErr, cause, rt))
		return false
	}

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
	return true
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
// channel up front and never touches the (pooled) call context itself.
func (sr *streamer) cancelOnDone(done <-chan struct{}) {
	select {
	case <-done:
		sr.stream.Cancel()
	case <-sr.exit:
	}
}

// run is the stream writer (fasthttp's stream-writer goroutine): it writes and flushes queued items, grants
// credit for what was flushed, and ends the stream on completion, error, timeout, shutdown or a gone client.
func (sr *streamer) run(w *bufio.Writer) {
	c := sr.rq.call
	var heartbeat <-chan time.Time
	var ticker *time.Ticker
	if sr.format == formatSSE && sr.s.opts.SSEHeartbeat > 0 {
		ticker = time.NewTicker(sr.s.opts.SSEHeartbeat)
		heartbeat = ticker.C
		defer ticker.Stop()
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
				sr.finish(ErrClientGone, nil)
				return
			}
			continue
		case <-c.Done():
			cause := c.Cause()
			if cause != ErrClientGone {
				sr.writeError(w, classify(cause, cause, sr.rt))
			}
			sr.finish(cause, nil)
			return
		}
		sr.mu.Lock()
		batch, sr.queue = sr.queue, batch[:0]
		ended, endErr = sr.ended, sr.endErr
		sr.mu.Unlock()

		werr := sr.writeItems(w, batch)
		n := len(batch)
		for i, bb := range batch {
			itemPool.Put(bb)
			batch[i] = nil
		}
		if werr == nil && n > 0 {
			werr = w.Flush()
		}
		if werr != nil {
			sr.finish(ErrClientGone, nil)
			return
		}
		sr.delivered += uint64(n)
		sr.rt.m.addItems(n)
		if ended {
			if endErr != nil {
				sr.writeError(w, classify(endErr, nil, sr.rt))
			}
			sr.finish(nil, endErr)
			return
		}
		sr.replenish(sr.rt.window)
	}
}

// writeItems writes items in the stream's format (not flushed).
func (sr *streamer) writeItems(w *bufio.Writer, items []*bytebufferpool.ByteBuffer) error {
	for _, bb := range items {
		if sr.format == formatSSE {
			sr.eventID++
			var num [20]byte
			w.Write(strSSEID)
			w.Write(strconv.AppendUint(num[:0], sr.eventID, 10))
			w.WriteByte('\n')
			sr.bytes += writeSSEData(w, bb.B) + len(strSSEID) + 2
			if _, err := w.Write(newlines[:2]); err != nil {
				return err
			}
		} else {
			w.Write(bb.B)
			if err := w.WriteByte('\n'); err != nil {
				return err
			}
			sr.bytes += len(bb.B) + 1
		}
	}
	return nil
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
	sr.watch.stop()
	close(sr.exit)
	c := sr.rq.call
	sr.s.calls.remove(c)
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
	sr.member.Done(time.Now().Add(-first.Sub(sr.picked)), merr)
	if cause == ErrClientGone && sr.status < 499 {
		sr.status = 499
	}
	d := time.Since(sr.start)
	sr.rt.m.end(sr.status, d)
	if sr.st.accessLog {
		sr.s.accessLog(sr.st, sr.method, sr.path, sr.rt.name, sr.rt.backend, sr.status, sr.bytes, d, sr.member, sr.rq.streamID)
	}
	releaseRequest(sr.rq)
	sr.rq = nil
}
