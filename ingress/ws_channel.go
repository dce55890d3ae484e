package ingress

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/fasthttp/websocket"
	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"

	"github.com/rsgate/rsgate/rsocket"
)

// Interaction request-channel: a WebSocket whose messages are the items of one REQUEST_CHANNEL.
//
//   - The first message the client sends is the REQUEST_CHANNEL payload (with the route's request
//     metadata); every later message is a PAYLOAD. Backends such as the demo's chat treat the
//     REQUEST_CHANNEL payload as their first inbound item, so nothing is invented for them. The
//     backend connection is picked (and its in-flight slot held) at upgrade time: no backend means 503
//     before the upgrade.
//   - Each backend PAYLOAD becomes one message: text when the backend's data_mime is JSON or text/*,
//     binary otherwise.
//   - Credit: the socket is read only while the backend has granted credit (one reader goroutine calls
//     Stream.Send, which waits for REQUEST_N), and the backend is granted stream.window items, topped up
//     as the socket writer drains them; a client that stops reading stops the backend.
//   - Ends: client close 1000/1001 -> our direction completes (and the channel is canceled, since nobody
//     can receive any more); backend complete -> close 1000; backend ERROR -> close 1011 with its
//     message (at most 123 bytes); backend connection lost -> 1011; a socket that breaks -> CANCEL;
//     message over websocket.max_message -> close 1009; no message either way for
//     websocket.idle_timeout -> close 1000 "idle timeout"; shutdown -> 1001.

// serveChannel checks the Origin, picks the backend and upgrades. It returns the status of the upgrade
// answer (101 when upgraded; the session runs after the handler returns).
func (s *Server) serveChannel(ctx *fasthttp.RequestCtx, rt *route, rq *request) int {
	w := rt.ws
	if status, ok := w.checkUpgrade(ctx); !ok {
		return status
	}
	slot, ok := s.reserveSession(ctx, rt) // websocket.max_sessions (ws_sessions.go)
	if !ok {
		return fasthttp.StatusServiceUnavailable
	}
	md, m, ok := s.prepare(ctx, rt, rq)
	if !ok {
		slot.release()
		return ctx.Response.StatusCode()
	}
	ch := &wsChannel{
		s: s, rt: rt, w: w, member: m, picked: time.Now(), slot: slot,
		itemQueue: itemQueue{notify: make(chan struct{}, 1)},
		bucket:    rt.wsLimit.bucket(),
	}
	if md != nil {
		ch.md = append([]byte(nil), md...)
	}
	err := w.upgrader.Upgrade(ctx, ch.start)
	if err != nil || ctx.Response.StatusCode() != fasthttp.StatusSwitchingProtocols {
		slot.release()
		m.DoneSession(ch.picked, rsocket.ErrCanceled)
		return ctx.Response.StatusCode()
	}
	return fasthttp.StatusSwitchingProtocols
}

// wsChannel is one request-channel session. The reader goroutine (started by the upgrade handler, which
// returns at once: the server keeps hijacked connections, so the session owns the socket and closes it)
// owns the socket's read side and the backend stream's outbound direction; the writer goroutine, started
// with the channel by the first message, owns the socket's message writes. The Subscriber half (itemQueue)
// runs on the backend connection's reader goroutine and only queues. itemQueue.stream is set once, under
// mu, by the reader when the first message opens the channel; closed is also set when a close frame is
// sent.
type wsChannel struct {
	itemQueue
	s      *Server
	rt     *route
	w      *wsRoute
	member *poolMember
	picked time.Time
	md     []byte
	ws     *websocket.Conn
	bucket *sessionBucket // websocket.rate_limit: inbound messages (ratelimit.go)
	slot   *sessionSlot   // websocket.max_sessions; released when run ends

	closeOnce sync.Once

	writerDone chan struct{}
	pingTimer  *time.Timer
	timeout    *time.Timer

	// Out-of-band socket use (ping, route timeout, shutdown) runs on other goroutines; once the session
	// is over, run closes the socket, so such calls do nothing any more: they hold oob and check over,
	// which run sets before closing.
	oob  sync.Mutex
	over bool
}

// start is the upgrade handler: the session runs on its own goroutine, so that fasthttp can release the
// request context now instead of holding it for the life of the socket.
func (c *wsChannel) start(ws *websocket.Conn) {
	c.ws = ws
	go c.run()
}

// run is the session; it closes the socket at its end.
func (c *wsChannel) run() {
	ws, w := c.ws, c.w
	reg := c.s.wsRegistry()
	defer c.slot.release()
	if !reg.add(c) {
		c.close(closeGoingAway, "gateway shutting down")
		c.member.DoneSession(c.picked, rsocket.ErrCanceled)
		_ = ws.Close()
		return
	}
	w.sessionStarted()
	ws.SetReadLimit(int64(w.maxMessage))
	if w.pingInterval > 0 {
		c.pingTimer = time.AfterFunc(w.pingInterval, c.ping)
	}
	if c.rt.timeout > 0 {
		c.timeout = time.AfterFunc(c.rt.timeout, func() { c.abort(ErrRouteTimeout) })
	}

	c.readLoop()

	if c.pingTimer != nil {
		c.pingTimer.Stop()
	}
	if c.timeout != nil {
		c.timeout.Stop()
	}
	c.finish()
	reg.remove(c)
	w.sessionEnded()
	c.oob.Lock()
	c.over = true
	c.oob.Unlock()
	_ = ws.Close()
}

// shutdown implements wsSession.
func (c *wsChannel) shutdown() { c.abort(ErrShutdown) }

// abort ends the session from outside the reader (shutdown, route timeout): close frame, CANCEL upstream
// (which also wakes a reader waiting for credit).
func (c *wsChannel) abort(why error) {
	c.oob.Lock()
	defer c.oob.Unlock()
	if c.over {
		return
	}
	code, reason := errorClose(why)
	c.close(code, reason)
	c.mu.Lock()
	st := c.stream
	c.mu.Unlock()
	if st != nil {
		st.Cancel()
	}
}

// readLoop reads messages and sends them to the backend until the socket or the channel ends.
func (c *wsChannel) readLoop() {
	var (
		st  *rsocket.Stream
		buf []byte // reused: Send copies the payload
	)
	for {
		c.extendIdle()
		msg, err := c.readMessage(buf[:0])
		if err != nil {
			c.readFailed(err)
			return
		}
		if !c.bucket.allow() {
			c.rateLimited() // ratelimit.go: close 1008
			return
		}
		if st == nil {
			if st, err = c.open(msg); err != nil {
				code, reason := errorClose(err)
				c.close(code, reason)
				c.drainUntilClosed()
				return
			}
			continue
		}
		if cap(msg) <= maxRetainedMessage {
			buf = msg
		}
		if err := st.Send(context.Background(), rsocket.Payload{Data: msg}); err != nil {
			// The channel ended (backend error or completion, our cancel): the writer delivers what is
			// queued and closes the socket. A client that does not read gets wsWriteWait for it; finish
			// then fails the blocked write.
			t := time.NewTimer(wsWriteWait)
			select {
			case <-c.writerDone:
				t.Stop()
				c.drainUntilClosed()
			case <-t.C:
			}
			return
		}
	}
}

// maxRetainedMessage: the reader keeps its message buffer between messages up to this capacity.
const maxRetainedMessage = 16 << 10

// readMessage reads the next message (text or binary) into dst.
func (c *wsChannel) readMessage(dst []byte) ([]byte, error) {
	mt, r, err := c.ws.NextReader()
	if err != nil {
		return nil, err
	}
	if cap(dst) == 0 {
		dst = make([]byte, 0, 512)
	}
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			if mt == websocket.TextMessage && !utf8.Valid(dst) {
				return nil, errInvalidUTF8 // RFC 6455 8.1: close 1007 (ws_strict.go)
			}
			return dst, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// drainUntilClosed reads (and drops) until the client answers our close or the close wait passes.
func (c *wsChannel) drainUntilClosed() {
	for {
		if _, _, err := c.ws.NextReader(); err != nil {
			return
		}
	}
}

// open sends REQUEST_CHANNEL with the first message and starts the writer.
func (c *wsChannel) open(first []byte) (*rsocket.Stream, error) {
	conn := c.member.Conn()
	if conn == nil {
		return nil, rsocket.ErrClosed
	}
	c.mu.Lock()
	c.granted = uint64(c.rt.window)
	c.mu.Unlock()
	st, err := conn.RequestChannel(rsocket.Payload{Metadata: c.md, Data: first}, c.rt.window, false, c)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.stream = st
	closed := c.closed
	c.mu.Unlock()
	if closed { // aborted meanwhile
		st.Cancel()
	}
	c.writerDone = make(chan struct{})
	go c.writeLoop()
	return st, nil
}

// readFailed handles the end of the socket's read side.
func (c *wsChannel) readFailed(err error) {
	var ce *websocket.CloseError
	var ne net.Error
	c.mu.Lock()
	st, closed := c.stream, c.closed
	c.mu.Unlock()
	switch {
	case closed:
		// We closed (backend end, abort): this is the client's answer or the close wait.
	case errors.As(err, &ce) && (ce.Code == websocket.CloseNormalClosure || ce.Code == websocket.CloseGoingAway):
		// The client is done sending: complete our direction. The library has answered the close, so
		// nothing more can be delivered: finish cancels the backend's direction if it is still open.
		if st != nil {
			_ = st.Complete()
		}
		c.close(closeNormal, "")
	case errors.Is(err, errInvalidUTF8):
		c.close(closeInvalidData, "invalid UTF-8 in a text message")
	case errors.Is(err, websocket.ErrReadLimit):
		c.close(closeTooBig, "message over "+strconv.Itoa(c.w.maxMessage)+" bytes") // the library sent 1009 already
	case errors.As(err, &ne) && ne.Timeout():
		c.close(closeNormal, "idle timeout")
	default:
		// Broken socket, or a protocol error the library answered with 1002.
		c.close(closeInternal, "")
	}
}

// extendIdle pushes the idle deadline out (after any message, either way).
func (c *wsChannel) extendIdle() {
	if d := c.w.idleTimeout; d > 0 {
		_ = c.ws.SetReadDeadline(time.Now().Add(d))
	}
}

func (c *wsChannel) ping() {
	c.oob.Lock()
	defer c.oob.Unlock()
	if c.over {
		return
	}
	if c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(wsWriteWait)) == nil {
		c.pingTimer.Reset(c.w.pingInterval)
	}
}

// close sends a close frame once, stops delivery, and makes the reader return soon (the client's close
// reply, or the close wait).
func (c *wsChannel) close(code int, reason string) {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.signalLocked()
		c.mu.Unlock()
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(wsWriteWait))
		_ = c.ws.SetReadDeadline(time.Now().Add(wsCloseWait))
	})
}

// writeLoop writes the backend's items as messages and grants credit as they drain. A write blocked
// longer than the idle timeout (a client that stopped reading) ends the session.
func (c *wsChannel) writeLoop() {
	defer close(c.writerDone)
	mt := websocket.BinaryMessage
	if c.w.text {
		mt = websocket.TextMessage
	}
	var batch []*bytebufferpool.ByteBuffer
	for {
		<-c.notify
		c.mu.Lock()
		batch, c.queue = c.queue, batch[:0]
		ended, endErr, closed := c.ended, c.endErr, c.closed
		c.mu.Unlock()
		var werr error
		if d := c.w.idleTimeout; d > 0 && len(batch) > 0 && !closed {
			_ = c.ws.SetWriteDeadline(time.Now().Add(d))
		}
		for i, bb := range batch {
			if werr == nil && !closed {
				werr = c.ws.WriteMessage(itemMessageType(mt, bb.B), bb.B)
			}
			itemPool.Put(bb)
			batch[i] = nil
		}
		if closed {
			return
		}
		if werr != nil {
			c.close(closeInternal, "")
			return
		}
		if n := len(batch); n > 0 {
			c.delivered += uint64(n)
			c.rt.m.addItems(n)
			c.extendIdle()
		}
		if ended {
			if endErr != nil {
				code, reason := errorClose(endErr)
				c.close(code, reason)
			} else {
				c.close(closeNormal, "")
			}
			return
		}
		c.replenish(c.rt.window)
	}
}

// finish ends the session (reader goroutine): cancels the backend if it is still open, stops the writer,
// returns queued buffers and releases the pool slot.
func (c *wsChannel) finish() {
	c.mu.Lock()
	c.closed = true
	st, backDone, endErr := c.stream, c.backDone, c.endErr
	c.signalLocked()
	c.mu.Unlock()
	canceled := false
	switch {
	case st == nil:
	case !backDone:
		// The backend's direction is still open (client gone, limits, shutdown) or it broke the credit
		// rules (errBackendOverflow): cancel it.
		st.Cancel()
		canceled = true
	case endErr == nil:
		// The backend completed its direction and the socket is closed now, so nothing more will come
		// from the client: complete ours, or the channel would stay open on both connections. (When the
		// client had already completed it, this is a no-op.)
		_ = st.Complete()
	}
	if c.writerDone != nil {
		// A writer blocked on a client that does not read fails once the connection is closed.
		_ = c.ws.NetConn().SetWriteDeadline(time.Now())
		<-c.writerDone
	}
	c.mu.Lock()
	queue := c.queue
	c.queue = nil
	c.mu.Unlock()
	for _, bb := range queue {
		itemPool.Put(bb)
	}
	var merr error
	switch {
	case canceled || st == nil:
		merr = rsocket.ErrCanceled
	default:
		merr = countsAgainstBackend(endErr)
	}
	c.member.DoneSession(c.picked, merr)
}
