package ingress

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/internal/testutil/rstest"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/extension"
	"github.com/rsgate/rsgate/rsocket/frame"
	"github.com/rsgate/rsgate/rsocket/transport"
)

func routeMD(tag string) []byte {
	return extension.AppendCompositeEntry(nil, extension.MimeRouting, extension.AppendRouting(nil, tag))
}

// dialRSocket connects an RSocket client to the gateway's rsocket route.
func dialRSocket(t *testing.T, g *gateway, path string, setup rsocket.Payload) (*rsocket.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	tc, err := transport.DialWebSocket(ctx, "ws://"+g.addr+path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := rsocket.Connect(ctx, tc, rsocket.Options{DataMIME: "application/json", SetupPayload: setup})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, nil
}

func rsGateway(t *testing.T, backends map[string]string, opts Options, mutate func(r *mapping.Route)) *gateway {
	t.Helper()
	cfg := newConfig(backends, []routeSpec{
		{name: "rs", path: "/rsocket", backend: "b", interaction: mapping.InteractionRSocket, mutate: mutate},
	})
	return startGateway(t, cfg, opts)
}

func TestWSRSocketDemoInteractions(t *testing.T) {
	d := startDemo(t)
	g := rsGateway(t, map[string]string{"b": d.Addr().String()}, Options{}, nil)
	c, _ := dialRSocket(t, g, "/rsocket", rsocket.Payload{})

	t.Run("request-response", func(t *testing.T) {
		msg, _, err := c.RequestResponse(context.Background(), rsocket.Payload{Metadata: routeMD("users.7"), Data: nil})
		if err != nil {
			t.Fatal(err)
		}
		if string(msg.Data) != `{"id":"7"}` {
			t.Fatalf("answer %q", msg.Data)
		}
		msg.Release()
	})
	t.Run("request-response-error", func(t *testing.T) {
		_, _, err := c.RequestResponse(context.Background(), rsocket.Payload{Metadata: routeMD("fail")})
		var re *rsocket.Error
		if !errors.As(err, &re) || re.Code != frame.CodeApplicationError || re.Message != "demo failure" {
			t.Fatalf("err %v, want the backend's APPLICATION_ERROR relayed", err)
		}
	})
	t.Run("fire-and-forget", func(t *testing.T) {
		before := d.Stats.FireAndForget.Load()
		if _, err := c.FireAndForget(context.Background(), rsocket.Payload{Metadata: routeMD("log"), Data: []byte("{}")}, rsocket.FireAndForgetOptions{}); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, func() bool { return d.Stats.FireAndForget.Load() == before+1 }, "the backend to see the fire-and-forget")
	})
	t.Run("request-stream", func(t *testing.T) {
		col := rstest.NewCollector()
		if _, err := c.RequestStream(rsocket.Payload{Metadata: routeMD("ticks.100")}, 7, col); err != nil {
			t.Fatal(err)
		}
		// Only 7 items were requested: exactly 7 arrive, the 8th needs REQUEST_N.
		testutil.Eventually(t, func() bool { return col.Count() == 7 }, "7 items")
		time.Sleep(100 * time.Millisecond)
		if n := col.Count(); n != 7 {
			t.Fatalf("%d items with credit 7", n)
		}
	})
	t.Run("request-stream-credit", func(t *testing.T) {
		col := rstest.NewCollector()
		st, err := c.RequestStream(rsocket.Payload{Metadata: routeMD("ticks.50")}, 10, col)
		if err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, func() bool { return col.Count() == 10 }, "10 items")
		st.Request(40)
		items, err := col.Wait(t)
		if err != nil || len(items) != 50 {
			t.Fatalf("%d items, err %v", len(items), err)
		}
		for i, it := range items {
			if it != `{"tick":`+strconv.Itoa(i)+`}` {
				t.Fatalf("item %d = %q", i, it)
			}
		}
	})
	t.Run("request-channel", func(t *testing.T) {
		col := rstest.NewCollector()
		st, err := c.RequestChannel(rsocket.Payload{Metadata: routeMD("chat"), Data: []byte(`"m0"`)}, 100, false, col)
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < 20; i++ {
			if err := st.Send(context.Background(), rsocket.Payload{Data: []byte(`"m` + strconv.Itoa(i) + `"`)}); err != nil {
				t.Fatal(err)
			}
		}
		_ = st.Complete()
		items, err := col.Wait(t)
		if err != nil || len(items) != 20 {
			t.Fatalf("%d echoes, err %v", len(items), err)
		}
		for i, it := range items {
			if it != `"m`+strconv.Itoa(i)+`"` {
				t.Fatalf("echo %d = %q", i, it)
			}
		}
	})
	t.Run("cancel-relayed", func(t *testing.T) {
		before := d.Stats.Cancels.Load()
		col := rstest.NewCollector()
		st, err := c.RequestStream(rsocket.Payload{Metadata: routeMD("clock.10")}, 1000, col)
		if err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, func() bool { return col.Count() >= 2 }, "a clock item")
		st.Cancel()
		testutil.Eventually(t, func() bool { return d.Stats.Cancels.Load() > before }, "the backend to see CANCEL")
	})
}

// TestWSRSocketCreditPassThrough: the backend sends exactly what the client requested, not a window.
func TestWSRSocketCreditPassThrough(t *testing.T) {
	sp := newSpecial()
	be := startBackend(t, sp.handler)
	g := rsGateway(t, map[string]string{"b": be.addr}, Options{}, nil)
	c, _ := dialRSocket(t, g, "/rsocket", rsocket.Payload{})
	col := rstest.NewCollector()
	st, err := c.RequestStream(rsocket.Payload{Metadata: routeMD("endless")}, 5, col)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, func() bool { return col.Count() == 5 }, "5 items")
	time.Sleep(100 * time.Millisecond)
	if e := sp.emitted.Load(); e != 5 {
		t.Fatalf("backend emitted %d items for a client credit of 5", e)
	}
	st.Request(3)
	testutil.Eventually(t, func() bool { return col.Count() == 8 }, "8 items")
	time.Sleep(100 * time.Millisecond)
	if e := sp.emitted.Load(); e != 8 {
		t.Fatalf("backend emitted %d items for a client credit of 8", e)
	}
	st.Cancel()
	sp.expectCanceled(t, "endless", "CANCEL not relayed")
}

// TestWSRSocketEnds: the backend connection lost mid-stream is reported to the client; the client's socket
// gone cancels its streams upstream; a channel relays ERROR from the client to the backend.
func TestWSRSocketEnds(t *testing.T) {
	sp := newSpecial()
	t.Run("backend-lost", func(t *testing.T) {
		be := startBackend(t, sp.handler)
		g := rsGateway(t, map[string]string{"b": be.addr}, Options{}, nil)
		c, _ := dialRSocket(t, g, "/rsocket", rsocket.Payload{})
		col := rstest.NewCollector()
		if _, err := c.RequestStream(rsocket.Payload{Metadata: routeMD("idle")}, 4, col); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, func() bool { return g.pools.Get("b").InFlight() == 1 }, "the backend stream")
		be.stop()
		_, err := col.Wait(t)
		var re *rsocket.Error
		if !errors.As(err, &re) || re.Code != frame.CodeApplicationError || re.Message != "rsgate: backend connection lost" {
			t.Fatalf("err %v, want APPLICATION_ERROR backend connection lost", err)
		}
		if c.Err() != nil {
			t.Fatalf("the client connection ended too: %v", c.Err())
		}
	})
	t.Run("client-gone-cancels", func(t *testing.T) {
		be := startBackend(t, sp.handler)
		g := rsGateway(t, map[string]string{"b": be.addr}, Options{}, nil)
		c, _ := dialRSocket(t, g, "/rsocket", rsocket.Payload{})
		if _, err := c.RequestStream(rsocket.Payload{Metadata: routeMD("idle")}, 4, rstest.NewCollector()); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, func() bool { return g.pools.Get("b").InFlight() == 1 }, "the backend stream")
		_ = c.Close()
		sp.expectCanceled(t, "idle", "no CANCEL upstream after the client left")
		testutil.Eventually(t, func() bool { return g.pools.Get("b").InFlight() == 0 }, "the pool slot")
		testutil.Eventually(t, func() bool { return g.srv.wsSessionCount() == 0 }, "the session to end")
	})
}

// TestWSRSocketUnboundedCreditSlowClient: a client that grants unbounded credit on an endless stream and
// then reads nothing must stall the backend with bounded memory in the gateway.
func TestWSRSocketUnboundedCreditSlowClient(t *testing.T) {
	sp := newSpecial()
	sp.itemSize.Store(64 << 10)
	be := startBackend(t, sp.handler)
	g := rsGateway(t, map[string]string{"b": be.addr}, Options{}, nil)
	ws := dialSlowReader(t, wsURL(g, "/rsocket"))
	defer ws.Close()
	setup := frame.AppendSetup(nil, &frame.Setup{Major: 1, Keepalive: 60000, Lifetime: 600000,
		MetadataMIME: extension.MimeComposite, DataMIME: "application/octet-stream"}, nil, nil)
	_ = ws.WriteMessage(websocket.BinaryMessage, setup)
	_ = ws.WriteMessage(websocket.BinaryMessage, frame.AppendRequestStream(nil, 1, frame.MaxRequestN, false, routeMD("endless"), nil))
	last := waitStalled(t, &sp.emitted)
	// relayWindow (64) + two write queues of 1 MiB (32 items) + kernel socket buffers.
	if last > 300 {
		t.Fatalf("backend emitted %d items of 64 KiB to a client that reads nothing", last)
	}
	t.Logf("stalled after %d items of 64 KiB", last)
}

func TestWSRSocketLimitsAndRouting(t *testing.T) {
	d := startDemo(t)
	sp := newSpecial()
	be := startBackend(t, sp.handler)
	g := rsGateway(t, map[string]string{"b": d.Addr().String(), "special": be.addr},
		Options{RSocketMaxStreams: 2, RSocketAuthenticate: BearerTokens("s3cret")},
		func(r *mapping.Route) {
			r.RSocket = &mapping.RSocketConfig{Routes: map[string]string{"endless": "special", "err.*": "special"}}
			r.WebSocket.MaxMessage = 4096
		})
	auth := rsocket.Payload{Metadata: extension.AppendCompositeEntry(nil, extension.MimeAuth, extension.AppendAuthBearer(nil, []byte("s3cret")))}

	t.Run("auth-rejected", func(t *testing.T) {
		c, _ := dialRSocket(t, g, "/rsocket", rsocket.Payload{})
		select {
		case <-c.Done():
		case <-time.After(testTimeout):
			t.Fatal("connection without a token stayed open")
		}
		var re *rsocket.Error
		if !errors.As(c.Err(), &re) || re.Code != frame.CodeRejectedSetup {
			t.Fatalf("err %v, want REJECTED_SETUP", c.Err())
		}
	})
	t.Run("lease", func(t *testing.T) {
		// A client that honours leases is granted one (ws_lease.go; TestClientLeaseFollowsBackend has more).
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		tc, err := transport.DialWebSocket(ctx, "ws://"+g.addr+"/rsocket", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		lc, err := rsocket.Connect(ctx, tc, rsocket.Options{Lease: true, SetupPayload: auth})
		if err != nil {
			t.Fatal(err)
		}
		defer lc.Close()
		testutil.Eventually(t, lc.LeaseAvailable, "a lease from the gateway")
		msg, _, err := lc.RequestResponse(ctx, rsocket.Payload{Metadata: routeMD("echo"), Data: []byte("hi")})
		if err != nil || string(msg.Data) != "hi" {
			t.Fatalf("request under the lease: %v", err)
		}
		msg.Release()
	})
	c, _ := dialRSocket(t, g, "/rsocket", auth)
	t.Run("routes-map", func(t *testing.T) {
		_, _, err := c.RequestResponse(context.Background(), rsocket.Payload{Metadata: routeMD("err.0x301")})
		var re *rsocket.Error
		if !errors.As(err, &re) || re.Code != 0x301 {
			t.Fatalf("err %v: want the special backend's code 0x301 (routed by err.*)", err)
		}
		msg, _, err := c.RequestResponse(context.Background(), rsocket.Payload{Metadata: routeMD("echo"), Data: []byte("hi")})
		if err != nil || string(msg.Data) != "hi" {
			t.Fatalf("default backend: %v", err)
		}
		msg.Release()
	})
	t.Run("max-streams", func(t *testing.T) {
		a, b, x := rstest.NewCollector(), rstest.NewCollector(), rstest.NewCollector()
		s1, _ := c.RequestStream(rsocket.Payload{Metadata: routeMD("clock.1000")}, 1, a)
		s2, _ := c.RequestStream(rsocket.Payload{Metadata: routeMD("clock.1000")}, 1, b)
		_, _ = c.RequestStream(rsocket.Payload{Metadata: routeMD("clock.1000")}, 1, x)
		_, err := x.Wait(t)
		var re *rsocket.Error
		if !errors.As(err, &re) || re.Code != frame.CodeRejected {
			t.Fatalf("third stream: %v, want REJECTED", err)
		}
		s1.Cancel()
		s2.Cancel()
		time.Sleep(50 * time.Millisecond)
		y := rstest.NewCollector()
		_, _ = c.RequestStream(rsocket.Payload{Metadata: routeMD("ticks.2")}, 5, y)
		if items, err := y.Wait(t); err != nil || len(items) != 2 {
			t.Fatalf("after cancels: %v %v", items, err)
		}
	})
	t.Run("frame-too-large-1009", func(t *testing.T) {
		c2, _ := dialRSocket(t, g, "/rsocket", auth)
		_, _ = c2.FireAndForget(context.Background(), rsocket.Payload{Metadata: routeMD("log"), Data: make([]byte, 8192)}, rsocket.FireAndForgetOptions{})
		select {
		case <-c2.Done():
		case <-time.After(testTimeout):
			t.Fatal("oversized frame did not close the connection")
		}
	})
}

// TestWSRSocketShutdown: Shutdown ends client RSocket connections (ERROR[CONNECTION_CLOSE], socket closed)
// instead of leaving them to fasthttp, which does not track hijacked connections.
func TestWSRSocketShutdown(t *testing.T) {
	d := startDemo(t)
	g := rsGateway(t, map[string]string{"b": d.Addr().String()}, Options{}, nil)
	c, _ := dialRSocket(t, g, "/rsocket", rsocket.Payload{})
	col := rstest.NewCollector()
	if _, err := c.RequestStream(rsocket.Payload{Metadata: routeMD("clock.20")}, 1000, col); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, func() bool { return col.Count() >= 2 }, "clock items")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	if err := g.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	select {
	case <-c.Done():
	case <-time.After(testTimeout):
		t.Fatal("client connection still open after Shutdown")
	}
	if _, err := col.Wait(t); err == nil {
		t.Fatal("stream ended without an error")
	}
	if time.Since(start) > 3*time.Second {
		t.Fatalf("shutdown took %v", time.Since(start))
	}
	testutil.Eventually(t, func() bool { return d.Stats.Cancels.Load() > 0 }, "the backend to see CANCEL")
}

// TestWSRSocketShutdownSilentClient: a client that neither answers the close nor closes its socket is
// still disconnected by Shutdown (the session closes the socket it owns).
func TestWSRSocketShutdownSilentClient(t *testing.T) {
	d := startDemo(t)
	g := rsGateway(t, map[string]string{"b": d.Addr().String()}, Options{}, nil)
	ws := dialWS(t, wsURL(g, "/rsocket"), nil)
	setup := frame.AppendSetup(nil, &frame.Setup{Major: 1, Keepalive: 60000, Lifetime: 600000,
		MetadataMIME: extension.MimeComposite, DataMIME: "application/json"}, nil, nil)
	if err := ws.WriteMessage(websocket.BinaryMessage, setup); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, func() bool { return g.srv.wsSessionCount() == 1 }, "the session")
	raw := ws.UnderlyingConn() // read raw bytes: the library would answer the close frame
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := g.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	for {
		_, err := raw.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the gateway kept the socket of a silent client open after Shutdown")
		}
		break // EOF or reset: closed
	}
}

// TestWSRSocketBadClient: a text message, a garbage frame, and a connection that never sends SETUP end
// with a close code and leave the gateway serving.
func TestWSRSocketBadClient(t *testing.T) {
	d := startDemo(t)
	g := rsGateway(t, map[string]string{"b": d.Addr().String()}, Options{}, nil)
	t.Run("text-message", func(t *testing.T) {
		ws := dialWS(t, wsURL(g, "/rsocket"), nil)
		_ = ws.WriteMessage(websocket.TextMessage, []byte("hello"))
		if code, _ := closeCode(t, ws); code != 1000 && code != 1003 {
			t.Fatalf("close %d", code)
		}
	})
	t.Run("garbage-first-frame", func(t *testing.T) {
		ws := dialWS(t, wsURL(g, "/rsocket"), nil)
		_ = ws.WriteMessage(websocket.BinaryMessage, []byte{0, 0, 0, 0, 0xff, 0xff, 1, 2})
		// The gateway answers ERROR[INVALID_SETUP] and closes.
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("no ERROR frame: %v", err)
		}
		f, perr := frame.Parse(msg)
		if perr != nil || f.Type() != frame.TypeError || f.ErrorCode() != frame.CodeInvalidSetup {
			t.Fatalf("got %v %v, want ERROR[INVALID_SETUP]", f, perr)
		}
		if code, _ := closeCode(t, ws); code != 1000 {
			t.Fatalf("close %d", code)
		}
	})
	c, _ := dialRSocket(t, g, "/rsocket", rsocket.Payload{})
	msg, _, err := c.RequestResponse(context.Background(), rsocket.Payload{Metadata: routeMD("echo"), Data: []byte("ok")})
	if err != nil || string(msg.Data) != "ok" {
		t.Fatalf("gateway after bad clients: %v", err)
	}
	msg.Release()
	_ = http.StatusOK
}

// TestWSRSocketPipelinedSetup: a client that sends SETUP and a request right behind the upgrade request,
// before the 101 (bytes fasthttp has already buffered when it hands the socket over), is served, with and
// without ReduceMemoryUsage (fasthttp then detaches its reader from the pooled request context; the
// server keeps hijacked connections).
func TestWSRSocketPipelinedSetup(t *testing.T) {
	d := startDemo(t)
	for _, reduce := range []bool{false, true} {
		t.Run(fmt.Sprintf("reduce=%v", reduce), func(t *testing.T) {
			g := rsGateway(t, map[string]string{"b": d.Addr().String()}, Options{ReduceMemoryUsage: reduce}, nil)
			nc, err := net.Dial("tcp", g.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			_ = nc.SetDeadline(time.Now().Add(testTimeout))
			setup := frame.AppendSetup(nil, &frame.Setup{Major: 1, Keepalive: 60000, Lifetime: 600000,
				MetadataMIME: extension.MimeComposite, DataMIME: "application/json"}, nil, nil)
			req := frame.AppendRequestResponse(nil, 1, false, routeMD("echo"), []byte(`"pipelined"`))
			out := []byte("GET /rsocket HTTP/1.1\r\nHost: " + g.addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
			out = append(append(out, maskedBinary(setup)...), maskedBinary(req)...)
			if _, err := nc.Write(out); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(nc)
			status, err := br.ReadString('\n')
			if err != nil || !strings.HasPrefix(status, "HTTP/1.1 101") {
				t.Fatalf("upgrade answer %q, %v", status, err)
			}
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					t.Fatal(err)
				}
				if l == "\r\n" {
					break
				}
			}
			// One unmasked binary message from the server: the PAYLOAD answering stream 1.
			var h [2]byte
			if _, err := io.ReadFull(br, h[:]); err != nil || h[0] != 0x82 || h[1] >= 126 {
				t.Fatalf("message header % x, %v", h, err)
			}
			msg := make([]byte, h[1])
			if _, err := io.ReadFull(br, msg); err != nil {
				t.Fatal(err)
			}
			f, err := frame.Parse(msg)
			if err != nil || f.Type() != frame.TypePayload || f.StreamID() != 1 || string(f.Data()) != `"pipelined"` {
				t.Fatalf("answer %v %v, want PAYLOAD on stream 1 with the echo", f, err)
			}
		})
	}
}

// maskedBinary is one client (masked, zero key) binary WebSocket message of fewer than 126 bytes.
func maskedBinary(p []byte) []byte {
	return append([]byte{0x82, 0x80 | byte(len(p)), 0, 0, 0, 0}, p...)
}
