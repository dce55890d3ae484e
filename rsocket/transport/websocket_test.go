package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
)

// wsPair starts a WebSocket listener (TLS when srvCfg != nil) and returns a connected pair.
func wsPair(t *testing.T, srvCfg, cliCfg *tls.Config, opts Options) (client, server Conn, url string) {
	t.Helper()
	ln, err := ListenWebSocketWith("127.0.0.1:0", "/rsocket", srvCfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	scheme := "ws"
	if srvCfg != nil {
		scheme = "wss"
	}
	url = scheme + "://" + ln.Addr().String() + "/rsocket"
	accepted := make(chan Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cc, err := DialWebSocketWith(ctx, url, cliCfg, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case server = <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("Accept timeout")
	}
	if server == nil {
		t.FailNow()
	}
	t.Cleanup(func() { cc.Close(); server.Close() })
	return cc, server, url
}

func TestWebSocket(t *testing.T) {
	client, server, _ := wsPair(t, nil, nil, Options{})
	testExchange(t, client, server)
	testCloseSemantics(t, client, server)
}

func TestWebSocketServerCloses(t *testing.T) {
	client, server, _ := wsPair(t, nil, nil, Options{})
	testCloseSemantics(t, server, client)
}

func TestWebSocketTLS(t *testing.T) {
	srvCfg, cliCfg := testTLS(t)
	client, server, _ := wsPair(t, srvCfg, cliCfg, Options{})
	testExchange(t, server, client)
	testCloseSemantics(t, server, client)
}

func TestWebSocketTextMessageRejected(t *testing.T) {
	ln, err := ListenWebSocket("127.0.0.1:0", "/rsocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	raw, _, err := websocket.DefaultDialer.DialContext(ctx, "ws://"+ln.Addr().String()+"/rsocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := raw.WriteMessage(websocket.TextMessage, []byte("not a frame")); err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	if _, err := server.ReadFrame(); !errors.Is(err, ErrTextMessage) {
		t.Fatalf("got %v, want ErrTextMessage", err)
	}
	if _, err := server.ReadFrame(); !errors.Is(err, ErrTextMessage) {
		t.Fatalf("error not sticky: %v", err)
	}
}

func TestWebSocketMaxFrameLen(t *testing.T) {
	client, server, _ := wsPair(t, nil, nil, Options{MaxFrameLen: 100})
	if err := client.WriteFrame(make([]byte, 60), nil, make([]byte, 41)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("write over the limit: got %v", err)
	}
	// A raw peer ignoring our limit: the reader must fail with a FrameSizeError.
	ws := client.(*WebSocketConn).ws
	if err := ws.WriteMessage(websocket.BinaryMessage, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if err := ws.WriteMessage(websocket.BinaryMessage, make([]byte, 101)); err != nil {
		t.Fatal(err)
	}
	if f, err := server.ReadFrame(); err != nil || len(f) != 100 {
		t.Fatalf("frame at the limit: %d bytes, %v", len(f), err)
	}
	_, err := server.ReadFrame()
	var fse *FrameSizeError
	if !errors.As(err, &fse) || fse.Limit != 100 || fse.Op != "read" {
		t.Fatalf("got %v, want read FrameSizeError with limit 100", err)
	}
}

func TestWebSocketAbruptPeerClose(t *testing.T) {
	client, server, _ := wsPair(t, nil, nil, Options{})
	// Close the TCP connection without a close message, between messages: clean EOF.
	client.(*WebSocketConn).ws.NetConn().Close()
	if _, err := server.ReadFrame(); err != io.EOF {
		t.Fatalf("got %v, want io.EOF", err)
	}
}

func TestWebSocketTruncatedMessage(t *testing.T) {
	client, server, _ := wsPair(t, nil, nil, Options{})
	ws := client.(*WebSocketConn).ws
	w, err := ws.NextWriter(websocket.BinaryMessage)
	if err != nil {
		t.Fatal(err)
	}
	// More than the library's buffer, so a first non-final fragment goes out, then cut.
	if _, err := w.Write(make([]byte, 3*wsIOBufferSize)); err != nil {
		t.Fatal(err)
	}
	ws.NetConn().Close()
	if _, err := server.ReadFrame(); err != io.ErrUnexpectedEOF {
		t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestWebSocketWrongPathAndHeaders(t *testing.T) {
	ln, err := ListenWebSocket("127.0.0.1:0", "/rsocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = DialWebSocket(ctx, "ws://"+ln.Addr().String()+"/other", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("dial to a wrong path: got %v, want an error naming HTTP 404", err)
	}
	h := http.Header{"Origin": {"http://evil.example"}}
	if c, err := DialWebSocket(ctx, "ws://"+ln.Addr().String()+"/rsocket", nil, h); err == nil {
		c.Close()
		t.Fatal("cross-origin upgrade accepted")
	}
}

func TestWebSocketListenerClose(t *testing.T) {
	ln, err := ListenWebSocket("127.0.0.1:0", "/rsocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		errc <- err
	}()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Accept after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept not released by Close")
	}
}

func TestWebSocketLocalCloseUnblocksRead(t *testing.T) {
	client, _, _ := wsPair(t, nil, nil, Options{})
	closeUnblocksRead(t, client, ErrClosed)
	select {
	case <-client.(*WebSocketConn).Done():
	default:
		t.Fatal("Done not closed after Close")
	}
}

func TestWebSocketLargeBufferReleased(t *testing.T) {
	client, server, _ := wsPair(t, nil, nil, Options{})
	go func() {
		client.WriteFrame(nil, nil, make([]byte, 1<<20))
		client.WriteFrame([]byte("small"), nil, nil)
	}()
	ws := server.(*WebSocketConn)
	if f, err := ws.ReadFrame(); err != nil || len(f) != 1<<20 {
		t.Fatalf("large frame: %d bytes, %v", len(f), err)
	}
	if ws.buf == nil || cap(ws.buf.B) < 1<<20 {
		t.Fatal("large message not read into a pooled buffer")
	}
	if f, err := ws.ReadFrame(); err != nil || string(f) != "small" {
		t.Fatalf("small frame: %q, %v", f, err)
	}
	if ws.buf == nil || cap(ws.buf.B) != wsReadBufferInitial {
		t.Fatal("large pooled buffer kept after a small frame")
	}
}

// TestWebSocketIdleHoldsNoBuffer: the buffer of the last frame goes back to the pool when ReadFrame is
// called again, before it waits for the next message.
func TestWebSocketIdleHoldsNoBuffer(t *testing.T) {
	client, server, _ := wsPair(t, nil, nil, Options{})
	ws := server.(*WebSocketConn)
	if err := client.WriteFrame([]byte("frame"), nil, nil); err != nil {
		t.Fatal(err)
	}
	if f, err := ws.ReadFrame(); err != nil || string(f) != "frame" {
		t.Fatalf("frame: %q, %v", f, err)
	}
	errc := make(chan error, 1)
	go func() { _, err := ws.ReadFrame(); errc <- err }()
	time.Sleep(20 * time.Millisecond) // ReadFrame is waiting for a message
	client.Close()
	if err := <-errc; err == nil {
		t.Fatal("ReadFrame after the peer closed: no error")
	}
	if ws.buf != nil {
		t.Fatal("idle connection holds a read buffer")
	}
}

func BenchmarkWebSocket1KiB(b *testing.B) {
	ln, err := ListenWebSocket("127.0.0.1:0", "/rsocket", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan Conn, 1)
	go func() { c, _ := ln.Accept(); acc <- c }()
	client, err := DialWebSocket(context.Background(), "ws://"+ln.Addr().String()+"/rsocket", nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	server := <-acc
	if server == nil {
		b.Fatal("accept failed")
	}
	defer server.Close()
	head, data := make([]byte, 6), make([]byte, 1<<10-6)
	b.SetBytes(1 << 10)
	b.ReportAllocs()
	n := b.N
	done := readFrames(server, n)
	b.ResetTimer()
	for range n {
		if err := client.WriteFrame(head, nil, data); err != nil {
			b.Fatal(err)
		}
	}
	client.Flush()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "frames/s")
}
