package transport

import (
	"github.com/rsgate/rsgate/rsocket/internal/bufpool"

	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"
)

// WebSocket carries exactly one RSocket frame per binary message, without length prefix
// (RSocket 1.0, "Transport Protocol": "WebSocket ... MUST NOT use the frame length field").
const (
	// wsReadBufferInitial is the pooled buffer a message is first read into; larger messages grow into
	// the next size classes. A Conn holds no read buffer between frames: it gives the buffer of a frame
	// back at the next ReadFrame, before waiting for the next message, so idle connections (a gateway
	// holds many) hold none.
	wsReadBufferInitial = 4 << 10
	// wsIOBufferSize is the library's per-connection I/O buffer (a message larger than it is
	// sent as several WebSocket frames of one message).
	wsIOBufferSize = 16 << 10
	// wsCloseTimeout bounds how long Close waits to send the close message.
	wsCloseTimeout = 250 * time.Millisecond
	// wsMaxFrameHeader is the largest WebSocket frame header (8-byte length and client mask).
	wsMaxFrameHeader = 14
	// wsShutdownTimeout bounds the HTTP server shutdown in a WebSocket Listener's Close.
	wsShutdownTimeout = 2 * time.Second
)

// WebSocketConn is a Conn over a *websocket.Conn (github.com/fasthttp/websocket).
//
// ReadFrame rejects text messages with ErrTextMessage. WriteFrame sends the frame as one binary
// message immediately (the library frames and writes it); Flush only reports a sticky error.
// Close sends a normal-closure close message (bounded by a short timeout) and closes the
// underlying connection; the peer's ReadFrame then returns io.EOF.
type WebSocketConn struct {
	ws  *websocket.Conn
	max int

	// Read side.
	buf  *bufpool.Buffer // pooled buffer of the last message, given back on the next ReadFrame
	rerr error

	// Write side.
	werr error

	// StopWaiting: nowait is set once for good; inWrite is the size on the wire (at most) of the message
	// WriteFrame is writing, 0 when none.
	nowait  atomic.Bool
	inWrite atomic.Int64

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
	done      chan struct{}
}

// NewWebSocketConn wraps an established WebSocket connection, for example one from
// websocket.FastHTTPUpgrader.Upgrade in the gateway's ingress. The Conn owns ws: Close closes it.
//
// With fasthttp's upgrader, the fasthttp.Server must have KeepHijackedConns set: otherwise fasthttp
// closes the socket and recycles its reader and hijacked connection as soon as the upgrade handler
// returns, while our reader goroutine may still be reading it (a use-after-release that crashes), and
// Close could not unblock that reader (hijackConn.Close is a no-op without KeepHijackedConns). With
// KeepHijackedConns the Conn owns the socket (Close really closes it), so the upgrade handler can return
// as soon as the Conn has an owner; fasthttp then releases the request context (and, with
// ReduceMemoryUsage, detaches its read buffer), which is what an idle connection should not hold:
//
//	upgrader.Upgrade(ctx, func(ws *websocket.Conn) {
//		c := transport.NewWebSocketConnWith(ws, transport.Options{})
//		go serve(c) // eventually calls c.Close()
//	})
func NewWebSocketConn(ws *websocket.Conn) Conn { return NewWebSocketConnWith(ws, Options{}) }

// NewWebSocketConnWith is NewWebSocketConn with Options; only MaxFrameLen applies. It returns
// the concrete type for access to Done.
func NewWebSocketConnWith(ws *websocket.Conn, opts Options) *WebSocketConn {
	c := &WebSocketConn{ws: ws, max: opts.maxFrameLen(), done: make(chan struct{})}
	ws.SetReadLimit(int64(c.max))
	return c
}

// Done is closed when Close has been called.
func (c *WebSocketConn) Done() <-chan struct{} { return c.done }

// ReadFrame returns the next binary message. The slice is valid until the next ReadFrame.
func (c *WebSocketConn) ReadFrame() ([]byte, error) {
	if c.buf != nil {
		bufpool.Put(c.buf)
		c.buf = nil
	}
	if c.rerr != nil {
		return nil, c.rerr
	}
	mt, r, err := c.ws.NextReader()
	if err != nil {
		return nil, c.readFailed(err, true)
	}
	if mt != websocket.BinaryMessage {
		c.rerr = ErrTextMessage
		return nil, c.rerr
	}
	c.buf = bufpool.GetUncounted(wsReadBufferInitial)
	buf := c.buf.B[:cap(c.buf.B)]
	n := 0
	for {
		if n == len(buf) {
			// Grow into the next size class; the read limit stops the message at c.max.
			nb := bufpool.GetUncounted(2 * len(buf))
			copy(nb.B, buf[:n])
			bufpool.Put(c.buf)
			c.buf = nb
			buf = nb.B[:cap(nb.B)]
		}
		m, err := r.Read(buf[n:])
		n += m
		if err == io.EOF {
			return buf[:n:n], nil
		}
		if err != nil {
			return nil, c.readFailed(err, false)
		}
	}
}

// readFailed maps library errors to the package's error contract and makes them sticky.
func (c *WebSocketConn) readFailed(err error, atBoundary bool) error {
	var ce *websocket.CloseError
	switch {
	case c.closed.Load():
		err = ErrClosed
	case errors.Is(err, websocket.ErrReadLimit):
		err = &FrameSizeError{Op: "read", Limit: c.max}
	case errors.As(err, &ce):
		switch ce.Code {
		case websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived,
			websocket.CloseAbnormalClosure: // abnormal: the stream ended without a close message
			err = eofAt(atBoundary)
		}
	case err == io.EOF:
		err = eofAt(atBoundary)
	}
	c.rerr = err
	return err
}

// WriteFrame sends head+metadata+data as one binary message.
func (c *WebSocketConn) WriteFrame(head, metadata, data []byte) error {
	n := len(head) + len(metadata) + len(data)
	if err := writeCheck(c.werr, &c.closed, n, c.max); err != nil {
		return err
	}
	c.inWrite.Store(int64(n + wsMaxFrameHeader))
	var err error
	if c.nowait.Load() && !writableNow(c.ws.UnderlyingConn(), n+wsMaxFrameHeader) {
		err = ErrWouldBlock
	} else {
		var w io.WriteCloser
		w, err = c.ws.NextWriter(websocket.BinaryMessage)
		if err == nil {
			err = writeAll(w, head, metadata, data)
			if cerr := w.Close(); err == nil {
				err = cerr
			}
		}
	}
	c.inWrite.Store(0)
	if err != nil {
		if c.closed.Load() {
			err = ErrClosed
		}
		c.werr = err
		return err
	}
	return nil
}

func writeAll(w io.Writer, parts ...[]byte) error {
	for _, p := range parts {
		if len(p) == 0 {
			continue
		}
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// Flush is a no-op apart from reporting a sticky write error or ErrClosed: WriteFrame already
// wrote the message.
func (c *WebSocketConn) Flush() error {
	if c.werr != nil {
		return c.werr
	}
	if c.closed.Load() {
		return ErrClosed
	}
	return nil
}

// StopWaiting implements WaitStopper: a WriteFrame in progress goes on when its message is small
// (FinalWriteMax) and the socket writable now, so that it cannot wait; otherwise it is ended by closing
// the Conn (without close message). Later ones send a message only when it is small and the socket
// writable now, and fail with ErrWouldBlock otherwise. (The library sets the socket's write deadline
// itself before every write, so a deadline cannot end a write in progress reliably.)
func (c *WebSocketConn) StopWaiting() {
	c.nowait.Store(true)
	// inWrite is set before WriteFrame looks at nowait: one of the two sees the other.
	if m := c.inWrite.Load(); m > 0 && !writableNow(c.ws.UnderlyingConn(), int(m)) {
		_ = c.Close()
	}
}

// Close sends a close message (normal closure) and closes the network connection. It is safe
// from any goroutine and idempotent. After StopWaiting, the close message is sent only when no
// WriteFrame is in progress and the socket takes it at once, and nothing waits (no TLS close_notify
// either unless the socket takes it at once).
func (c *WebSocketConn) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		nc := c.ws.UnderlyingConn()
		if c.nowait.Load() && (c.inWrite.Load() > 0 || !writableNow(nc, wsMaxFrameHeader+2)) {
			c.closeErr = closeNow(nc)
		} else {
			msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
			_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(wsCloseTimeout))
			c.closeErr = c.ws.Close()
		}
		close(c.done)
	})
	return c.closeErr
}

func (c *WebSocketConn) LocalAddr() net.Addr  { return c.ws.LocalAddr() }
func (c *WebSocketConn) RemoteAddr() net.Addr { return c.ws.RemoteAddr() }

// DialWebSocket connects to a ws:// or wss:// URL; cfg is used for wss (nil: default TLS
// settings) and header is sent with the upgrade request (may be nil).
func DialWebSocket(ctx context.Context, url string, cfg *tls.Config, header http.Header) (Conn, error) {
	return DialWebSocketWith(ctx, url, cfg, header, Options{})
}

// DialWebSocketWith is DialWebSocket with Options; only MaxFrameLen applies.
func DialWebSocketWith(ctx context.Context, url string, cfg *tls.Config, header http.Header, opts Options) (*WebSocketConn, error) {
	d := websocket.Dialer{
		TLSClientConfig: cfg,
		ReadBufferSize:  wsIOBufferSize,
		WriteBufferSize: wsIOBufferSize,
	}
	ws, resp, err := d.DialContext(ctx, url, header)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("transport: websocket dial %s: %w (HTTP status %d)", url, err, resp.StatusCode)
		}
		return nil, fmt.Errorf("transport: websocket dial %s: %w", url, err)
	}
	return NewWebSocketConnWith(ws, opts), nil
}

// ListenWebSocket serves WebSocket upgrades on addr at path with its own fasthttp server (TLS
// when cfg is not nil) and yields the connections from Accept. Other paths get 404. Upgrade
// requests carrying an Origin header different from Host are refused (the library's default).
// Connections not taken by Accept before Close are closed.
func ListenWebSocket(addr, path string, cfg *tls.Config) (Listener, error) {
	return ListenWebSocketWith(addr, path, cfg, Options{})
}

// ListenWebSocketWith is ListenWebSocket with Options applied to every accepted Conn.
func ListenWebSocketWith(addr, path string, cfg *tls.Config, opts Options) (Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	l := &wsListener{
		ln:        ln,
		conns:     make(chan *WebSocketConn),
		done:      make(chan struct{}),
		serveDone: make(chan struct{}),
	}
	up := &websocket.FastHTTPUpgrader{ReadBufferSize: wsIOBufferSize, WriteBufferSize: wsIOBufferSize}
	l.srv = &fasthttp.Server{
		Name:                  "rsgate-transport",
		NoDefaultServerHeader: true,
		Logger:                discardLogger{}, // errors surface through Accept's Conns, not stdout
		// The WebSocketConn owns the upgraded socket: fasthttp must neither close nor recycle it when
		// the upgrade handler returns (see NewWebSocketConn).
		KeepHijackedConns: true,
		Handler: func(ctx *fasthttp.RequestCtx) {
			if string(ctx.Path()) != path {
				ctx.Error("not found", fasthttp.StatusNotFound)
				return
			}
			_ = up.Upgrade(ctx, func(ws *websocket.Conn) {
				c := NewWebSocketConnWith(ws, opts)
				select {
				case l.conns <- c: // Accept's caller owns it now; the handler returns (KeepHijackedConns)
				case <-l.done:
					c.Close()
				}
			})
		},
	}
	go func() {
		defer close(l.serveDone)
		_ = l.srv.Serve(ln)
	}()
	return l, nil
}

type wsListener struct {
	ln        net.Listener
	srv       *fasthttp.Server
	conns     chan *WebSocketConn
	done      chan struct{}
	serveDone chan struct{}
	closeOnce sync.Once
	closeErr  error
}

func (l *wsListener) Accept() (Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, ErrClosed
	}
}

func (l *wsListener) Close() error {
	l.closeOnce.Do(func() {
		close(l.done)
		// Closing the listener ourselves also covers a Close before Serve registered it (then
		// Shutdown would not know about it); Shutdown then closes idle keep-alive connections.
		l.closeErr = l.ln.Close()
		ctx, cancel := context.WithTimeout(context.Background(), wsShutdownTimeout)
		defer cancel()
		_ = l.srv.ShutdownWithContext(ctx) // only reports the closed listener or the timeout
		<-l.serveDone
	})
	return l.closeErr
}

func (l *wsListener) Addr() net.Addr { return l.ln.Addr() }

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
