package ingress

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rsgate/rsgate/internal/demo"
	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/mapping"
)

// scriptedListener returns its errors (nil: a connection) in order, then net.ErrClosed.
type scriptedListener struct {
	net.Listener
	script []error
}

func (l *scriptedListener) Accept() (net.Conn, error) {
	if len(l.script) == 0 {
		return nil, net.ErrClosed
	}
	err := l.script[0]
	l.script = l.script[1:]
	if err != nil {
		return nil, err
	}
	a, b := net.Pipe()
	_ = b.Close()
	return a, nil
}

func acceptErr(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
}

// net/http's backoff: 5 ms doubling to 1 s, reset after a successful accept; every error counted, one log
// line at the start of a burst and one when it ends; a permanent error is returned.
func TestAcceptRetriesTemporaryErrors(t *testing.T) {
	var script []error
	for i := 0; i < 10; i++ {
		script = append(script, acceptErr(syscall.EMFILE))
	}
	script = append(script, nil, acceptErr(syscall.ECONNABORTED), acceptErr(syscall.ENFILE), nil)
	core, logs := observer.New(zapcore.InfoLevel)
	set := metrics.NewSet()
	l := newEdgeListener(&scriptedListener{script: script}, "ingress", zap.New(core), set, 0, 0)
	var slept []time.Duration
	l.sleep = func(d time.Duration) { slept = append(slept, d) }
	for i := 0; i < 2; i++ {
		c, err := l.Accept()
		if err != nil {
			t.Fatalf("accept %d: %v", i, err)
		}
		_ = c.Close()
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("after the script: %v, want net.ErrClosed", err)
	}
	want := []time.Duration{5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000, 5, 10}
	if len(slept) != len(want) {
		t.Fatalf("slept %v, want %v ms", slept, want)
	}
	for i, d := range want {
		if slept[i] != d*time.Millisecond {
			t.Fatalf("pause %d: %v, want %v ms (all: %v)", i, slept[i], d, slept)
		}
	}
	if n := l.acceptErrors.Get(); n != 12 {
		t.Errorf("rsgate_accept_errors_total = %d, want 12", n)
	}
	if n := logs.FilterMessageSnippet("accept failed").Len(); n != 2 {
		t.Errorf("%d 'accept failed' lines for 2 bursts of errors, want 2", n)
	}
	if n := logs.FilterMessageSnippet("accepting again").Len(); n != 2 {
		t.Errorf("%d 'accepting again' lines, want 2", n)
	}
}

func TestTemporaryAcceptError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{acceptErr(syscall.EMFILE), true},
		{acceptErr(syscall.ENFILE), true},
		{acceptErr(syscall.ENOBUFS), true},
		{acceptErr(syscall.ECONNABORTED), true},
		{net.ErrClosed, false},
		{&net.OpError{Op: "accept", Err: net.ErrClosed}, false},
		{acceptErr(syscall.EBADF), false},
		{errors.New("other"), false},
	} {
		if got := temporaryAcceptError(tc.err); got != tc.want {
			t.Errorf("temporaryAcceptError(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// servedOn sends one request on c and reports whether it got an HTTP answer.
func servedOn(c net.Conn) bool {
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := fmt.Fprintf(c, "POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"); err != nil {
		return false
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == 200
}

// closedByPeer reports whether the gateway closed c without answering.
func closedByPeer(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(testTimeout))
	_, err := c.Read(make([]byte, 1))
	return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

// limits.max_connections and limits.max_connections_per_ip: the connection over the limit is closed at
// accept; closing one frees its slot.
func TestConnectionLimits(t *testing.T) {
	for _, tc := range []struct {
		name, reason string
		set          func(l *mapping.Limits)
	}{
		{"max_connections", "max_connections", func(l *mapping.Limits) { l.MaxConnections = 2 }},
		{"max_connections_per_ip", "per_ip", func(l *mapping.Limits) { l.MaxConnectionsPerIP = 2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := startDemo(t)
			cfg := newConfig(map[string]string{"demo": d.Addr().String()}, []routeSpec{
				{name: "echo", method: "POST", path: "/api/echo", backend: "demo", interaction: mapping.InteractionRequestResponse, tag: "echo"},
			})
			tc.set(&cfg.Limits)
			g := startGateway(t, cfg, Options{})
			var conns []net.Conn
			for i := 0; i < 2; i++ {
				c, err := net.Dial("tcp", g.addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if !servedOn(c) {
					t.Fatalf("connection %d within the limit not served", i)
				}
				conns = append(conns, c)
			}
			over, err := net.Dial("tcp", g.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer over.Close()
			if !closedByPeer(over) {
				t.Fatal("the connection over the limit was not closed")
			}
			refused := g.set.GetOrCreateCounter(`rsgate_connections_refused_total{reason="` + tc.reason + `"}`)
			if refused.Get() != 1 {
				t.Errorf("refused counter = %d, want 1", refused.Get())
			}
			_ = conns[0].Close()
			testutil.Eventually(t, func() bool {
				c, err := net.Dial("tcp", g.addr)
				if err != nil {
					return false
				}
				defer c.Close()
				return servedOn(c)
			}, "a free slot")

		})
	}
}

// BenchmarkRequestResponseTCPLimited is BenchmarkRequestResponseTCP with limits.max_connections and
// max_connections_per_ip set, as the gateway always runs (it derives max_connections): every client
// connection is a limitedConn. Compare the two for the cost of the edge listener.
func BenchmarkRequestResponseTCPLimited(b *testing.B) {
	d := startDemoB(b)
	cfg := newConfig(map[string]string{"demo": d.Addr().String()}, demoRoutes())
	cfg.Backends["demo"].Connections = 2
	cfg.Limits.MaxConnections, cfg.Limits.MaxConnectionsPerIP = 1<<20, 1<<10
	benchEchoTCP(b, cfg)
}

func startDemoB(b *testing.B) *demo.Server {
	b.Helper()
	d, err := demo.Serve("127.0.0.1:0", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = d.Close() })
	return d
}

// The connections the edge listener counts keep what other features need from the socket: an over-limit
// upload still sees its 413 (the lingering close duplicates the socket through File).
func TestLimitedConnKeepsLingeringClose(t *testing.T) {
	d := startDemo(t)
	cfg := newConfig(map[string]string{"demo": d.Addr().String()}, demoRoutes())
	cfg.Limits.MaxConnections, cfg.Limits.MaxConnectionsPerIP = 1000, 100
	g := startGateway(t, cfg, Options{})
	c, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	const size = 4 << 20
	fmt.Fprintf(c, "POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", size)
	chunk := make([]byte, 64<<10)
	for sent := 0; sent < size; sent += len(chunk) {
		if _, err := c.Write(chunk); err != nil {
			t.Fatalf("upload cut after %d bytes: %v", sent, err)
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 413 {
		t.Fatalf("answer %v %v, want 413", resp, err)
	}
}

// WebSocket sessions count against limits.max_connections while they run (fasthttp no longer sees them
// once hijacked), and free their slot when they end.
func TestConnectionLimitCountsWebSockets(t *testing.T) {
	d := startDemo(t)
	cfg := newConfig(map[string]string{"b": d.Addr().String()}, []routeSpec{
		{name: "chat", path: "/ws/chat", backend: "b", interaction: mapping.InteractionRequestChannel, tag: "chat"},
		{name: "echo", method: "POST", path: "/api/echo", backend: "b", interaction: mapping.InteractionRequestResponse, tag: "echo"},
	})
	cfg.Limits.MaxConnections = 2
	g := startGateway(t, cfg, Options{})
	a := dialWS(t, wsURL(g, "/ws/chat"), nil)
	_ = dialWS(t, wsURL(g, "/ws/chat"), nil)
	testutil.Eventually(t, func() bool { return g.srv.wsSessionCount() == 2 }, "two sessions")
	over, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	if !closedByPeer(over) {
		t.Fatal("a connection beyond max_connections was served while two WebSocket sessions ran")
	}
	_ = a.Close()
	testutil.Eventually(t, func() bool {
		c, err := net.Dial("tcp", g.addr)
		if err != nil {
			return false
		}
		defer c.Close()
		return servedOn(c)
	}, "the session's slot")

}
