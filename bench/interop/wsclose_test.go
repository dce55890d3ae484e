package interop

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rsgate/rsgate/bench/interop/peers"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/transport"
)

// TestWebSocketServerClose is the regression test for a use-after-release in transport.ListenWebSocket
// that this suite found (fixed in 8d3ecca, "WebSocket listener keeps hijacked conns"): the process
// crashed (nil pointer dereference in fasthttp's hijackConn.Read) whenever the server side closed an
// RSocket connection it accepted over WebSocket — keepalive timeout, CloseWithError, shutdown.
//
// What happened:
// ListenWebSocket's fasthttp handler hands the upgraded *websocket.Conn to Accept and returns once the
// WebSocketConn is closed. With fasthttp.Server.KeepHijackedConns false (the default), hijackConn.Close is
// a no-op, so WebSocketConn.Close does not unblock the read loop; the handler returns, and fasthttp then
// closes the socket, returns the hijack bufio.Reader to its pool (releaseReader) and zeroes and pools the
// hijackConn (releaseHijackConn: hjc.r = nil, hjc.Conn = nil). The rsocket.Conn's read loop, woken by
// the socket close inside bufio.Reader.fill, calls hijackConn.Read again: hjc.r is nil -> SIGSEGV
// (server.go:3184). If the pool has already handed the objects to the next upgraded connection, the stale
// read loop reads that connection's bytes instead. Under -race the report is: read in
// fasthttp.(*hijackConn).Read from transport.(*WebSocketConn).ReadFrame vs. previous write in
// fasthttp.(*Server).releaseHijackConn.
//
// The fix: KeepHijackedConns: true on the listener's fasthttp.Server (the WebSocketConn owns and really
// closes the socket). Anything that upgrades with fasthttp and wraps the result in NewWebSocketConn
// (the gateway's ingress) needs the same.
//
// The scenario runs in a child process so that the crash fails this test instead of killing the suite.
func TestWebSocketServerClose(t *testing.T) {
	if os.Getenv(wsCloseChildEnv) == "1" {
		wsServerCloseScenario(t)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestWebSocketServerClose$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), wsCloseChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		lines := strings.Split(string(out), "\n")
		if len(lines) > 40 {
			lines = lines[:40]
		}
		t.Fatalf("server-side close of a WebSocket RSocket connection: child test process failed (%v):\n%s", err, strings.Join(lines, "\n"))
	}
}

const wsCloseChildEnv = "RSGATE_INTEROP_WSCLOSE_CHILD"

func wsServerCloseScenario(t *testing.T) {
	for i := range 30 {
		func() {
			l, err := transport.ListenWebSocket("127.0.0.1:0", "/", nil)
			if err != nil {
				t.Fatal(err)
			}
			accepted := make(chan *rsocket.Conn, 1)
			obs := peers.NewObservations()
			srv := &rsocket.Server{Acceptor: func(s *rsocket.SetupInfo, c *rsocket.Conn) (rsocket.Handler, error) {
				accepted <- c
				return peers.OurAcceptor(obs)(s, c)
			}}
			go srv.Serve(l)
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			tc, err := transport.DialWebSocket(ctx, "ws://"+l.Addr().String()+"/", nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			c, err := rsocket.Connect(ctx, tc, rsocket.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var sc *rsocket.Conn
			select {
			case sc = <-accepted:
			case <-ctx.Done():
				t.Fatal("no connection accepted")
			}
			// Server-side close while its read loop is blocked in ReadFrame.
			sc.Close()
			select {
			case <-c.Done():
			case <-ctx.Done():
				t.Fatalf("round %d: client did not see the server close", i)
			}
		}()
	}
}
