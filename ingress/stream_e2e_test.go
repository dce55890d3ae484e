package ingress

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil"
)

// smallBufListener sets small socket buffers on accepted connections, so that kernel buffering does not
// hide the gateway's own flow control in the tests (the conn stays a *net.TCPConn).
type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetWriteBuffer(4096)
		}
	}
	return c, err
}

// dialSmall connects with a small receive buffer (set before connect, so the window is small too).
func dialSmall(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: testTimeout, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// sseReader reads SSE events from a raw HTTP/1.1 chunked response.
type sseReader struct {
	t  *testing.T
	br *bufio.Reader
	// chunk state
	left int
	done bool // the terminating zero-size chunk was read (a complete body)
}

func openStream(t *testing.T, addr, path, accept string, small bool) (net.Conn, *sseReader) {
	t.Helper()
	var c net.Conn
	if small {
		c = dialSmall(t, addr)
	} else {
		var err error
		c, err = net.DialTimeout("tcp", addr, testTimeout)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
	}
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: test\r\nAccept: "+accept+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	r := &sseReader{t: t, br: bufio.NewReaderSize(c, 512)}
	// Status line and headers.
	status, err := r.br.ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 200") {
		t.Fatalf("status line %q: %v", status, err)
	}
	for {
		l, err := r.br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if l == "\r\n" {
			break
		}
		if strings.HasPrefix(strings.ToLower(l), "transfer-encoding:") && !strings.Contains(l, "chunked") {
			t.Fatalf("unexpected %q", l)
		}
	}
	return c, r
}

// line returns the next line of the de-chunked body (without "\n"); io.EOF at the end of the body.
func (r *sseReader) line() (string, error) {
	var out []byte
	for {
		if r.left == 0 {
			sz, err := r.br.ReadString('\n')
			if err != nil {
				return "", err
			}
			var n int
			for _, c := range strings.TrimSpace(sz) {
				n = n*16 + strings.IndexRune("0123456789abcdef", c|0x20)
			}
			if n == 0 {
				r.done = true
				return "", io.EOF
			}
			r.left = n
		}
		b, err := r.br.ReadByte()
		if err != nil {
			return "", err
		}
		r.left--
		if r.left == 0 {
			if _, err := r.br.Discard(2); err != nil { // chunk CRLF
				return "", err
			}
		}
		if b == '\n' {
			return string(out), nil
		}
		out = append(out, b)
	}
}

// event reads one SSE event's data lines (skipping comments).
func (r *sseReader) event() (id, data string, err error) {
	for {
		l, err := r.line()
		if err != nil {
			return "", "", err
		}
		switch {
		case l == "" && (id != "" || data != ""):
			return id, data, nil
		case strings.HasPrefix(l, "id: "):
			id = l[4:]
		case strings.HasPrefix(l, "data: "):
			data += l[6:]
		}
	}
}

// TestSlowClientBackPressure reads an endless SSE stream slowly: the backend may run ahead of what the client
// has read by no more than the window plus what the sockets and fasthttp's pipe hold.
func TestSlowClientBackPressure(t *testing.T) {
	sp := newSpecial()
	sp.itemSize.Store(16 << 10)
	b := startBackend(t, sp.handler)
	cfg := newConfig(map[string]string{"sp": b.addr}, specialRoutes())
	g := startGatewayListener(t, cfg, Options{}, func(l net.Listener) net.Listener { return smallBufListener{l} })

	conn, r := openStream(t, g.addr, "/endless", "text/event-stream", true)
	const window = 8
	read := 0
	readEvents := func(n int) {
		for i := 0; i < n; i++ {
			if _, data, err := r.event(); err != nil || len(data) != 16<<10 {
				t.Fatalf("event %d: %d bytes, %v", read, len(data), err)
			}
			read++
		}
	}
	for round := 0; round < 3; round++ {
		readEvents(20)
		// The client stops reading: wait until the backend is stalled (emitted stops growing).
		stable, last := 0, int64(-1)
		testutil.Eventually(t, func() bool {
			e := sp.emitted.Load()
			if e == last {
				stable++
			} else {
				stable, last = 0, e
			}
			time.Sleep(5 * time.Millisecond)
			return stable >= 40
		}, "the backend to stall")

		// Slack: fasthttp's stream pipe (4 chunks) and the chunk it is writing, plus the few 16 KiB items the
		// small socket buffers hold.
		const slack = 12
		if e := sp.emitted.Load(); e > int64(read+window+slack) {
			t.Fatalf("round %d: backend emitted %d items while the client read %d (window %d, slack %d)", round, e, read, window, slack)
		} else {
			t.Logf("round %d: client read %d, backend emitted %d", round, read, e)
		}
	}
	// The client goes away mid-stream: the backend sees CANCEL.
	_ = conn.Close()
	sp.expectCanceled(t, "endless", "backend stream not canceled after the client disconnected")
	testutil.Eventually(t, func() bool { return g.srv.InFlight() == 0 }, "the stream to be released")
}

// TestStreamTimeoutWithStalledClient: the route timeout cancels the backend stream even while the gateway is
// blocked writing to a client that stopped reading.
func TestStreamTimeoutWithStalledClient(t *testing.T) {
	sp := newSpecial()
	sp.itemSize.Store(16 << 10)
	b := startBackend(t, sp.handler)
	g := startGatewayListener(t, newConfig(map[string]string{"sp": b.addr}, specialRoutes()), Options{},
		func(l net.Listener) net.Listener { return smallBufListener{l} })
	_, r := openStream(t, g.addr, "/endless-timeout", "application/x-ndjson", true)
	if _, err := r.line(); err != nil { // one item, then the client stalls
		t.Fatal(err)
	}
	sp.expectCanceled(t, "endless", "route timeout did not cancel the backend stream of a stalled client")
}

// TestIdleStreamClientDisconnect: a client leaves an NDJSON stream on which nothing is being written; the
// socket watch notices and the backend sees CANCEL.
func TestIdleStreamClientDisconnect(t *testing.T) {
	sp, _, g := startSpecial(t, Options{})
	conn, _ := openStream(t, g.addr, "/idle", "application/x-ndjson", false)
	testutil.Eventually(t, func() bool { return g.srv.InFlight() == 1 }, "the stream to start")
	_ = conn.Close()
	sp.expectCanceled(t, "idle", "idle stream not canceled after the client disconnected")
	testutil.Eventually(t, func() bool { return g.srv.InFlight() == 0 }, "the stream to be released")
}

// TestSSEHeartbeat: an idle SSE stream gets ": ping" comments.
func TestSSEHeartbeat(t *testing.T) {
	_, _, g := startSpecial(t, Options{SSEHeartbeat: 20 * time.Millisecond})
	_, r := openStream(t, g.addr, "/idle", "text/event-stream", false)
	for i := 0; i < 2; i++ {
		l, err := r.line()
		if err != nil || l != ": ping" {
			t.Fatalf("line %q, %v; want \": ping\"", l, err)
		}
		if l, _ = r.line(); l != "" {
			t.Fatalf("after ping: %q", l)
		}
	}
}

// TestStreamKeepAliveReuse: after a completed stream the connection serves the next request (the socket
// watch gave the connection back cleanly).
func TestStreamKeepAliveReuse(t *testing.T) {
	d := startDemo(t)
	g := startGateway(t, newConfig(map[string]string{"demo": d.Addr().String()}, demoRoutes()), Options{})
	c, err := net.DialTimeout("tcp", g.addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	br := bufio.NewReader(c)
	for i := 0; i < 3; i++ {
		if _, err := io.WriteString(c, "GET /api/ticks/2 HTTP/1.1\r\nHost: t\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		var resp bytes.Buffer
		for !bytes.HasSuffix(resp.Bytes(), []byte("\r\n0\r\n\r\n")) {
			b, err := br.ReadByte()
			if err != nil {
				t.Fatalf("request %d: %v after %q", i, err, resp.String())
			}
			resp.WriteByte(b)
		}
		if !bytes.Contains(resp.Bytes(), []byte(`{"tick":1}`)) {
			t.Fatalf("request %d: %q", i, resp.String())
		}
	}
}

var _ = context.Background
