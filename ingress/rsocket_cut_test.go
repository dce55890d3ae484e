package ingress

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/frame"
	"github.com/rsgate/rsgate/rsocket/transport"
)

// tickLog records the tick numbers of a clock stream ({"tick":i,...}) and whether they came in order.
type tickLog struct {
	mu    sync.Mutex
	ticks []int
	bad   int // a tick that was not the previous one + 1
	end   chan error
}

func newTickLog() *tickLog { return &tickLog{end: make(chan error, 1)} }

func (l *tickLog) subscriber() *funcSubscriber {
	return &funcSubscriber{
		next: func(p rsocket.Payload, _ bool) {
			var item struct{ Tick int }
			_ = json.Unmarshal(p.Data, &item)
			l.mu.Lock()
			if len(l.ticks) > 0 && item.Tick != l.ticks[len(l.ticks)-1]+1 || len(l.ticks) == 0 && item.Tick != 0 {
				l.bad++
			}
			l.ticks = append(l.ticks, item.Tick)
			l.mu.Unlock()
		},
		complete: func() { l.end <- nil },
		err:      func(err error) { l.end <- err },
	}
}

func (l *tickLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ticks)
}

// POST /debug/cut-clients' ingress side: CutRSocketClients cuts the sockets of the rsocket clients (of one
// route, or all). A resuming client's clock stream goes on across two cuts with every tick once and in
// order; a client without resumption loses its stream on the cut; the cuts are counted per route.
func TestRSocketCutClients(t *testing.T) {
	d := startDemo(t)
	cfg := newConfig(map[string]string{"b": d.Addr().String()}, []routeSpec{
		{name: "rs", path: "/rsocket", backend: "b", interaction: mapping.InteractionRSocket, mutate: func(r *mapping.Route) {
			r.RSocket = &mapping.RSocketConfig{Resume: &mapping.RSocketResume{}}
		}},
		{name: "plain", path: "/plain", backend: "b", interaction: mapping.InteractionRSocket},
	})
	g := startGateway(t, cfg, Options{})

	// The resuming client: it redials on every lost socket.
	var dials atomic.Int32
	dial := func(ctx context.Context) (transport.Conn, error) {
		tc, err := transport.DialWebSocket(ctx, "ws://"+g.addr+"/rsocket", nil, nil)
		if err == nil {
			dials.Add(1)
		}
		return tc, err
	}
	tc, err := dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rsocket.Connect(context.Background(), tc, rsocket.Options{DataMIME: "application/json",
		KeepaliveInterval: 100 * time.Millisecond, Resume: rsocket.ResumeOptions{Enabled: true, Dial: dial}})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	resumed := newTickLog()
	if _, err := rc.RequestStream(rsocket.Payload{Metadata: routeMD("clock.10")}, frame.MaxRequestN, resumed.subscriber()); err != nil {
		t.Fatal(err)
	}

	// The control: the same stream without resumption.
	pc, _ := dialRSocket(t, g, "/plain", rsocket.Payload{})
	plain := newTickLog()
	if _, err := pc.RequestStream(rsocket.Payload{Metadata: routeMD("clock.10")}, frame.MaxRequestN, plain.subscriber()); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, func() bool { return resumed.count() >= 10 && plain.count() >= 10 }, "ticks on both clients")

	// Cut the resuming client's route only: the plain client keeps its socket.
	if n := g.srv.CutRSocketClients("rs"); n != 1 {
		t.Fatalf("CutRSocketClients(rs) = %d, want 1", n)
	}
	testutil.Eventually(t, func() bool { return dials.Load() == 2 }, "the resuming client to dial again")
	at := resumed.count()
	testutil.Eventually(t, func() bool { return resumed.count() >= at+10 }, "ticks after the first cut")

	// Cut every route: both sockets.
	if n := g.srv.CutRSocketClients(""); n != 2 {
		t.Fatalf("CutRSocketClients() = %d, want 2", n)
	}
	select {
	case err := <-plain.end:
		if !errors.Is(err, rsocket.ErrClosed) {
			t.Fatalf("the plain client's stream ended with %v, want a closed connection", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("the plain client's stream outlived the cut of its connection")
	}
	testutil.Eventually(t, func() bool { return dials.Load() == 3 }, "the resuming client to dial again")
	at = resumed.count()
	testutil.Eventually(t, func() bool { return resumed.count() >= at+10 }, "ticks after the second cut")

	resumed.mu.Lock()
	n, bad := len(resumed.ticks), resumed.bad
	resumed.mu.Unlock()
	if bad != 0 {
		t.Fatalf("resuming client: %d ticks, %d not consecutive (lost or repeated across the cuts)", n, bad)
	}
	select {
	case err := <-resumed.end:
		t.Fatalf("the resumed stream ended: %v", err)
	default:
	}
	if c := g.set.GetOrCreateCounter(`rsgate_rsocket_clients_cut_total{route="rs"}`).Get(); c != 2 {
		t.Fatalf("rsgate_rsocket_clients_cut_total{route=rs} = %d, want 2", c)
	}
	if c := g.set.GetOrCreateCounter(`rsgate_rsocket_clients_cut_total{route="plain"}`).Get(); c != 1 {
		t.Fatalf("rsgate_rsocket_clients_cut_total{route=plain} = %d, want 1", c)
	}
	// Nothing left to cut on the plain route; the resuming client is connected again.
	testutil.Eventually(t, func() bool { return g.srv.wsSessionCount() == 1 }, "one WebSocket session (the resumed client)")
	if n := g.srv.CutRSocketClients("plain"); n != 0 {
		t.Fatalf("CutRSocketClients(plain) after its client ended = %d, want 0", n)
	}
	t.Logf("resuming client: %d consecutive ticks across 2 cuts, %d dials", n, dials.Load())
}

// CutClientsHandler: POST cuts (with ?route) and answers {"cut": N}; other methods get 405.
func TestRSocketCutClientsHandler(t *testing.T) {
	d := startDemo(t)
	g := rsGateway(t, map[string]string{"b": d.Addr().String()}, Options{}, nil)
	c, _ := dialRSocket(t, g, "/rsocket", rsocket.Payload{})
	if m, _, err := c.RequestResponse(context.Background(), rsocket.Payload{Metadata: routeMD("users.1")}); err != nil {
		t.Fatal(err)
	} else {
		m.Release()
	}
	call := func(method, uri string) *fasthttp.RequestCtx {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod(method)
		ctx.Request.SetRequestURI(uri)
		g.srv.CutClientsHandler(&ctx)
		return &ctx
	}
	if ctx := call("GET", "/debug/cut-clients"); ctx.Response.StatusCode() != 405 || string(ctx.Response.Header.Peek("Allow")) != "POST" {
		t.Fatalf("GET: %d Allow=%q", ctx.Response.StatusCode(), ctx.Response.Header.Peek("Allow"))
	}
	if ctx := call("POST", "/debug/cut-clients?route=other"); string(ctx.Response.Body()) != "{\"cut\": 0}\n" {
		t.Fatalf("POST ?route=other: %q", ctx.Response.Body())
	}
	if ctx := call("POST", "/debug/cut-clients?route=rs"); string(ctx.Response.Body()) != "{\"cut\": 1}\n" || string(ctx.Response.Header.ContentType()) != "application/json" {
		t.Fatalf("POST ?route=rs: %q %q", ctx.Response.Body(), ctx.Response.Header.ContentType())
	}
	if _, _, err := c.RequestResponse(context.Background(), rsocket.Payload{Metadata: routeMD("users.1")}); !errors.Is(err, rsocket.ErrClosed) {
		t.Fatalf("request on a cut connection: %v, want ErrClosed", err)
	}
}

// A cut resets the TCP connection (no FIN, no WebSocket close frame): the client's next read fails with
// ECONNRESET, as on a network failure.
func TestRSocketCutResets(t *testing.T) {
	d := startDemo(t)
	g := rsGateway(t, map[string]string{"b": d.Addr().String()}, Options{}, nil)
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+g.addr+"/rsocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	testutil.Eventually(t, func() bool { return g.srv.wsSessionCount() == 1 }, "the session registered")
	if n := g.srv.CutRSocketClients(""); n != 1 {
		t.Fatalf("cut %d, want 1", n)
	}
	_ = ws.NetConn().SetReadDeadline(time.Now().Add(testTimeout))
	_, err = ws.NetConn().Read(make([]byte, 64))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after the cut: %v, want ECONNRESET", err)
	}
}
