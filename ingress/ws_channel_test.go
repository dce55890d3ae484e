package ingress

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/rsgate/rsgate/internal/demo"
	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/frame"
)

// chanBackend serves request-channels by routing tag, with behaviours the demo lacks, and records what
// it sees.
type chanBackend struct {
	emitted   atomic.Int64 // items sent by "flood"
	itemSize  int
	completed chan string // tag, when the requester completed its direction
	canceled  chan string // tag, when the requester canceled
	firstData chan []byte // the REQUEST_CHANNEL payload of each channel
}

func newChanBackend() *chanBackend {
	return &chanBackend{itemSize: 64 << 10, completed: make(chan string, 16), canceled: make(chan string, 16),
		firstData: make(chan []byte, 16)}
}

type chanSub struct {
	b   *chanBackend
	tag string
	st  *rsocket.Stream
}

func (s *chanSub) OnNext(p rsocket.Payload, complete bool) {
	if complete {
		s.b.completed <- s.tag
	}
}
func (s *chanSub) OnComplete() { s.b.completed <- s.tag }
func (s *chanSub) OnError(err error) {
	if errors.Is(err, rsocket.ErrCanceled) {
		s.b.canceled <- s.tag
	}
}

func (b *chanBackend) handler() rsocket.Handler {
	return &rsocket.HandlerFuncs{
		RequestChannelFunc: func(req rsocket.Payload, n uint32, complete bool, st *rsocket.Stream) rsocket.Subscriber {
			tag := firstTag(req.Metadata)
			select {
			case b.firstData <- bytes.Clone(req.Data):
			default:
			}
			sub := &chanSub{b: b, tag: tag, st: st}
			st.Request(1 << 20)
			watchCancel := func() {
				<-st.Done()
				if errors.Is(st.Err(), rsocket.ErrCanceled) {
					select {
					case b.canceled <- tag:
					default:
					}
				}
			}
			switch {
			case tag == "flood": // numbered items of itemSize bytes, as fast as credit allows
				go func() {
					item := make([]byte, b.itemSize)
					for i := 0; ; i++ {
						copy(item, fmt.Sprintf("%08d", i))
						if st.Send(context.Background(), rsocket.Payload{Data: item}) != nil {
							return
						}
						b.emitted.Add(1)
					}
				}()
			case strings.HasPrefix(tag, "complete."): // n items, then complete both ways
				k, _ := strconv.Atoi(tag[len("complete."):])
				go func() {
					for i := 0; i < k; i++ {
						if st.Send(context.Background(), rsocket.Payload{Data: []byte(`{"i":` + strconv.Itoa(i) + `}`)}) != nil {
							return
						}
					}
					_ = st.Complete()
				}()
			case tag == "error": // an error with a long message after the first item
				go func() {
					_ = st.Send(context.Background(), rsocket.Payload{Data: []byte(`{"i":0}`)})
					_ = st.Error(frame.CodeApplicationError, "é"+strings.Repeat("x", 300))
				}()
			case tag == "idle":
				go watchCancel()
			}
			return sub
		},
	}
}

func wsURL(g *gateway, path string) string { return "ws://" + g.addr + path }

func dialWS(t *testing.T, url string, hdr http.Header) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: testTimeout}
	ws, resp, err := d.Dial(url, hdr)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", url, err, status)
	}
	t.Cleanup(func() { _ = ws.Close() })
	_ = ws.SetReadDeadline(time.Now().Add(testTimeout))
	return ws
}

// dialSlowReader dials url with a 16 KiB socket receive buffer, for a client that stops reading.
func dialSlowReader(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: testTimeout, NetDial: func(network, addr string) (net.Conn, error) {
		c, err := net.Dial(network, addr)
		if err == nil {
			_ = c.(*net.TCPConn).SetReadBuffer(16 << 10)
		}
		return c, err
	}}
	ws, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

// waitStalled waits until a backend's count of 64 KiB items emitted stops growing (two equal readings
// 300ms apart, above 0) and returns it.
func waitStalled(t *testing.T, emitted *atomic.Int64) int64 {
	t.Helper()
	var last int64 = -1
	deadline := time.Now().Add(testTimeout)
	for {
		time.Sleep(300 * time.Millisecond)
		cur := emitted.Load()
		if cur == last && cur > 0 {
			return last
		}
		last = cur
		if time.Now().After(deadline) {
			t.Fatalf("the backend never stalled (%d items of 64 KiB emitted)", cur)
		}
	}
}

// closeCode reads until the connection ends and returns the close code and reason received.
func closeCode(t *testing.T, ws *websocket.Conn) (int, string) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(testTimeout))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Text
		}
		t.Fatalf("connection ended without a close frame: %v", err)
	}
}

func chatGateway(t *testing.T, backend string, mutate func(r *mapping.Route)) *gateway {
	t.Helper()
	cfg := newConfig(map[string]string{"b": backend}, []routeSpec{
		// {tag:any}: the tests pick backend behaviours by tag ("complete.3"), dots included.
		{name: "chat", path: "/ws/{tag:any}", backend: "b", interaction: mapping.InteractionRequestChannel, tag: "{tag}", mutate: mutate},
	})
	return startGateway(t, cfg, Options{})
}

func TestWSChannelDemoChatEcho(t *testing.T) {
	d := startDemo(t)
	g := chatGateway(t, d.Addr().String(), nil)
	ws := dialWS(t, wsURL(g, "/ws/chat"), nil)
	testutil.Eventually(t, func() bool { return gaugeValue(g, `rsgate_websocket_sessions{route="chat"}`) == 1 }, "the sessions gauge")
	const n = 200
	// Writer and reader run concurrently: the echo is credit-limited both ways.
	go func() {
		for i := 0; i < n; i++ {
			if ws.WriteMessage(websocket.TextMessage, []byte(`{"n":`+strconv.Itoa(i)+`}`)) != nil {
				return
			}
		}
	}()
	for i := 0; i < n; i++ {
		mt, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if mt != websocket.TextMessage {
			t.Fatalf("message type %d, want text (JSON backend)", mt)
		}
		if want := `{"n":` + strconv.Itoa(i) + `}`; string(msg) != want {
			t.Fatalf("echo %d = %q, want %q (order)", i, msg, want)
		}
	}
	// Browser close 1000: the gateway answers the close and the session ends.
	if err := ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "bye"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if code, _ := closeCode(t, ws); code != 1000 {
		t.Fatalf("close code %d, want 1000", code)
	}
	testutil.Eventually(t, func() bool {
		return gaugeValue(g, `rsgate_websocket_sessions{route="chat"}`) == 0 && g.srv.wsSessionCount() == 0
	}, "the session to end")

}

func gaugeValue(g *gateway, name string) float64 {
	var b bytes.Buffer
	g.set.WritePrometheus(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

func TestWSChannelBackPressure(t *testing.T) {
	b := newChanBackend()
	be := startBackend(t, b.handler)
	g := chatGateway(t, be.addr, func(r *mapping.Route) { r.Stream.Window = 4 })
	// A client with a small receive buffer that stops reading.
	ws := dialSlowReader(t, wsURL(g, "/ws/flood"))
	defer ws.Close()
	if err := ws.WriteMessage(websocket.BinaryMessage, []byte("go")); err != nil {
		t.Fatal(err)
	}
	// The producer must stall: the count stops growing, far below what an unbounded relay would take.
	last := waitStalled(t, &b.emitted)
	// Kernel socket buffers (a few MB on loopback) + the window + the backend's own queue.
	if last > 200 {
		t.Fatalf("backend emitted %d items of 64 KiB to a client that reads nothing; want a bounded number", last)
	}
	t.Logf("stalled after %d items of 64 KiB", last)
	// Reading resumes the flow, in order and without loss.
	_ = ws.SetReadDeadline(time.Now().Add(testTimeout))
	for i := 0; i < int(last)+50; i++ {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if got := string(msg[:8]); got != fmt.Sprintf("%08d", i) {
			t.Fatalf("item %d carries %q", i, got)
		}
	}
	if b.emitted.Load() <= last {
		t.Fatal("the backend did not resume after the client read")
	}
	// Socket gone: the backend sees CANCEL.
	_ = ws.UnderlyingConn().Close()
	select {
	case tag := <-b.canceled:
		if tag != "flood" {
			t.Fatalf("canceled %q", tag)
		}
	case <-time.After(testTimeout):
		t.Fatal("no CANCEL after the socket was closed")
	}
}

func TestWSChannelClosePaths(t *testing.T) {
	b := newChanBackend()
	be := startBackend(t, b.handler)
	g := chatGateway(t, be.addr, nil)

	t.Run("backend-complete-1000", func(t *testing.T) {
		ws := dialWS(t, wsURL(g, "/ws/complete.3"), nil)
		_ = ws.WriteMessage(websocket.TextMessage, []byte("first"))
		if got := <-b.firstData; string(got) != "first" {
			t.Fatalf("REQUEST_CHANNEL payload %q, want the first message", got)
		}
		for i := 0; i < 3; i++ {
			_, msg, err := ws.ReadMessage()
			if err != nil || string(msg) != `{"i":`+strconv.Itoa(i)+`}` {
				t.Fatalf("item %d: %q %v", i, msg, err)
			}
		}
		if code, _ := closeCode(t, ws); code != 1000 {
			t.Fatalf("close %d, want 1000", code)
		}
		// The socket is closed, so the gateway completes its direction too: the channel ends on both
		// sides and leaves no stream open on the backend.
		select {
		case tag := <-b.completed:
			if tag != "complete.3" {
				t.Fatalf("completed %q", tag)
			}
		case <-time.After(testTimeout):
			t.Fatal("the gateway left its direction of a channel the backend completed open")
		}
	})
	t.Run("backend-error-1011", func(t *testing.T) {
		ws := dialWS(t, wsURL(g, "/ws/error"), nil)
		_ = ws.WriteMessage(websocket.TextMessage, []byte("x"))
		<-b.firstData
		code, reason := closeCode(t, ws)
		if code != 1011 {
			t.Fatalf("close %d, want 1011", code)
		}
		if len(reason) > 123 || !strings.HasPrefix(reason, "éxxx") {
			t.Fatalf("reason %q (%d bytes): want the error message truncated to 123 bytes", reason, len(reason))
		}
	})
	t.Run("client-close-completes", func(t *testing.T) {
		ws := dialWS(t, wsURL(g, "/ws/idle"), nil)
		_ = ws.WriteMessage(websocket.TextMessage, []byte("x"))
		<-b.firstData
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
		select {
		case tag := <-b.completed:
			if tag != "idle" {
				t.Fatalf("completed %q", tag)
			}
		case <-time.After(testTimeout):
			t.Fatal("the backend did not see the requester complete")
		}
		if code, _ := closeCode(t, ws); code != 1000 {
			t.Fatalf("close %d", code)
		}
	})
	t.Run("backend-lost-1011", func(t *testing.T) {
		be2 := startBackend(t, b.handler)
		g2 := chatGateway(t, be2.addr, nil)
		ws := dialWS(t, wsURL(g2, "/ws/idle"), nil)
		_ = ws.WriteMessage(websocket.TextMessage, []byte("x"))
		<-b.firstData
		be2.stop()
		code, reason := closeCode(t, ws)
		if code != 1011 || reason != "backend connection lost" {
			t.Fatalf("close %d %q", code, reason)
		}
	})
	t.Run("shutdown-1001", func(t *testing.T) {
		g2 := chatGateway(t, be.addr, nil)
		ws := dialWS(t, wsURL(g2, "/ws/idle"), nil)
		_ = ws.WriteMessage(websocket.TextMessage, []byte("x"))
		<-b.firstData
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		go func() { _ = g2.srv.Shutdown(ctx) }()
		if code, _ := closeCode(t, ws); code != 1001 {
			t.Fatalf("close %d, want 1001", code)
		}
	})
}

func TestWSChannelLimits(t *testing.T) {
	b := newChanBackend()
	be := startBackend(t, b.handler)
	var pings atomic.Int64
	g := chatGateway(t, be.addr, func(r *mapping.Route) {
		r.WebSocket.MaxMessage = 1024
		r.WebSocket.IdleTimeout = mapping.Duration(400 * time.Millisecond)
		r.WebSocket.PingInterval = mapping.Duration(50 * time.Millisecond)
	})
	t.Run("max-message-1009", func(t *testing.T) {
		ws := dialWS(t, wsURL(g, "/ws/idle"), nil)
		_ = ws.WriteMessage(websocket.TextMessage, []byte("x"))
		_ = ws.WriteMessage(websocket.BinaryMessage, make([]byte, 2048))
		if code, _ := closeCode(t, ws); code != 1009 {
			t.Fatalf("close %d, want 1009", code)
		}
		select {
		case <-b.canceled:
		case <-time.After(testTimeout):
			t.Fatal("no CANCEL upstream after 1009")
		}
	})
	t.Run("idle-timeout-and-ping", func(t *testing.T) {
		ws := dialWS(t, wsURL(g, "/ws/idle"), nil)
		ws.SetPingHandler(func(string) error { pings.Add(1); return nil })
		start := time.Now()
		code, reason := closeCode(t, ws) // the read loop also runs the ping handler
		if code != 1000 || reason != "idle timeout" {
			t.Fatalf("close %d %q, want 1000 idle timeout", code, reason)
		}
		if d := time.Since(start); d < 300*time.Millisecond || d > 5*time.Second {
			t.Fatalf("idle close after %v, want about 400ms", d)
		}
		if pings.Load() < 2 {
			t.Fatalf("%d pings in 400ms with a 50ms interval", pings.Load())
		}
	})
	t.Run("bad-frame-1002", func(t *testing.T) {
		ws := dialWS(t, wsURL(g, "/ws/idle"), nil)
		// An unmasked frame with a reserved opcode: a protocol error.
		if _, err := ws.UnderlyingConn().Write([]byte{0x83, 0x01, 'x'}); err != nil {
			t.Fatal(err)
		}
		if code, _ := closeCode(t, ws); code != 1002 {
			t.Fatalf("close %d, want 1002", code)
		}
		// The gateway still serves.
		ws2 := dialWS(t, wsURL(g, "/ws/complete.1"), nil)
		_ = ws2.WriteMessage(websocket.TextMessage, []byte("x"))
		if _, msg, err := ws2.ReadMessage(); err != nil || string(msg) != `{"i":0}` {
			t.Fatalf("after a bad client: %q %v", msg, err)
		}
	})
}

func TestWSOrigin(t *testing.T) {
	d := startDemo(t)
	cfg := newConfig(map[string]string{"b": d.Addr().String()}, []routeSpec{
		{name: "open", path: "/ws/open", backend: "b", interaction: mapping.InteractionRequestChannel, tag: "chat"},
		{name: "listed", path: "/ws/listed", backend: "b", interaction: mapping.InteractionRequestChannel, tag: "chat",
			mutate: func(r *mapping.Route) { r.WebSocket.Origins = []string{"https://app.example.com"} }},
		{name: "any", path: "/ws/any", backend: "b", interaction: mapping.InteractionRequestChannel, tag: "chat",
			mutate: func(r *mapping.Route) { r.WebSocket.Origins = []string{"*"} }},
		{name: "rs", path: "/rsocket", backend: "b", interaction: mapping.InteractionRSocket},
	})
	g := startGateway(t, cfg, Options{})
	cases := []struct {
		path, origin string
		ok           bool
	}{
		{"/ws/open", "", true},                           // no Origin: not a browser
		{"/ws/open", "http://" + g.addr, true},           // same origin
		{"/ws/open", "http://evil.example", false},       // cross origin, no list
		{"/ws/listed", "https://app.example.com", true},  // listed
		{"/ws/listed", "HTTPS://APP.EXAMPLE.COM/", true}, // case and trailing slash
		{"/ws/listed", "https://evil.example", false},
		{"/ws/listed", "http://" + g.addr, true}, // same origin stays allowed
		{"/ws/any", "https://anything.example", true},
		{"/rsocket", "https://evil.example", false},
	}
	for _, c := range cases {
		hdr := http.Header{}
		if c.origin != "" {
			hdr.Set("Origin", c.origin)
		}
		ws, resp, err := (&websocket.Dialer{HandshakeTimeout: testTimeout}).Dial(wsURL(g, c.path), hdr)
		if c.ok {
			if err != nil {
				t.Fatalf("%s from %q: %v", c.path, c.origin, err)
			}
			ws.Close()
			continue
		}
		if err == nil {
			ws.Close()
			t.Fatalf("%s from %q: upgraded, want 403", c.path, c.origin)
		}
		if resp == nil || resp.StatusCode != 403 {
			t.Fatalf("%s from %q: %v %v, want 403", c.path, c.origin, err, resp)
		}
	}
}

// TestWSChannelNoBackend: no backend connection is answered before the upgrade.
func TestWSChannelNoBackend(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := newConfig(map[string]string{"b": addr}, []routeSpec{
		{name: "chat", path: "/ws/chat", backend: "b", interaction: mapping.InteractionRequestChannel, tag: "chat"},
	})
	table, err := mapping.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g := startGatewayNoWait(t, cfg, table)
	_, resp, err := (&websocket.Dialer{HandshakeTimeout: testTimeout}).Dial(wsURL(g, "/ws/chat"), nil)
	if err == nil || resp == nil || resp.StatusCode != 503 {
		t.Fatalf("want 503 before the upgrade, got %v %v", err, resp)
	}
}

// BenchmarkWSChannelEcho: messages per second through a request-channel route to the demo chat echo
// (socket -> gateway -> backend -> gateway -> socket), one connection, pipelined under credit.
func BenchmarkWSChannelEcho(b *testing.B) {
	d, err := demo.Serve("127.0.0.1:0", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	cfg := newConfig(map[string]string{"b": d.Addr().String()}, []routeSpec{
		{name: "chat", path: "/ws/chat", backend: "b", interaction: mapping.InteractionRequestChannel, tag: "chat"},
	})
	g := startGatewayB(b, cfg, Options{})
	ws, _, err := (&websocket.Dialer{HandshakeTimeout: testTimeout}).Dial(wsURL(g, "/ws/chat"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer ws.Close()
	msg := []byte(`{"text":"hello, benchmark"}`)
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for i := 0; i < b.N; i++ {
			if ws.WriteMessage(websocket.TextMessage, msg) != nil {
				return
			}
		}
	}()
	for i := 0; i < b.N; i++ {
		if _, _, err := ws.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
