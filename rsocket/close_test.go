package rsocket

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testcert"
	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/rsocket/frame"
	"github.com/rsgate/rsgate/rsocket/internal/bufpool"
	"github.com/rsgate/rsgate/rsocket/transport"
)

// Close never blocks by timing (issue #12): when the peer does not read, the session's end does not wait
// for it (no flush timer); when it reads, it gets the final ERROR after everything queued before.

// closeBound is a liveness bound for a Close whose peer does not read, generous for a loaded machine and
// far below the 2 s flush timer Close used to wait for.
const closeBound = 500 * time.Millisecond

var (
	closeCertOnce sync.Once
	closeCert     *testcert.Cert
)

// closeTransports are the transports the close tests run over.
var closeTransports = []string{"pipe", "tcp", "tls", "websocket"}

// sessionLeakCheck is leakCheck counting only the goroutines running code of this module (stacks that
// mention it): fasthttp, under the WebSocket listener, keeps goroutines of its own for seconds after
// its server stopped (a worker pool cleaner, the Date header updater).
func sessionLeakCheck(t *testing.T) {
	t.Helper()
	base := moduleGoroutines()
	bufBase := bufpool.Outstanding()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			g, b := moduleGoroutines(), bufpool.Outstanding()
			if g <= base && b == bufBase {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				t.Errorf("leak: goroutines of the module %d (baseline %d), pooled buffers outstanding %d (baseline %d)\n%s",
					g, base, b, bufBase, buf[:n])
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// moduleGoroutines counts the goroutines, other than the caller, whose stack mentions this module.
func moduleGoroutines() int {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for i, g := range bytes.Split(buf, []byte("\n\n")) {
		if i > 0 && bytes.Contains(g, []byte("github.com/rsgate/rsgate/")) {
			n++
		}
	}
	return n
}

// transportPair returns a connected client transport and its peer's end over kind. onAccept runs on the
// peer's end first, concurrently with the dial (a TLS server's handshake needs the peer to read).
func transportPair(t *testing.T, kind string, onAccept func(transport.Conn)) (client transport.Conn, peer <-chan transport.Conn) {
	t.Helper()
	ch := make(chan transport.Conn, 1)
	if kind == "pipe" {
		a, b := transport.Pipe()
		t.Cleanup(func() { _ = b.Close() })
		go func() { onAccept(b); ch <- b }()
		return a, ch
	}
	var ln transport.Listener
	var err error
	var cliTLS *tls.Config
	switch kind {
	case "tcp":
		ln, err = transport.ListenTCP("127.0.0.1:0", nil)
	case "tls":
		closeCertOnce.Do(func() { closeCert = testcert.New(t) })
		cliTLS = closeCert.ClientConfig()
		ln, err = transport.ListenTCP("127.0.0.1:0", closeCert.ServerConfig())
	case "websocket":
		ln, err = transport.ListenWebSocket("127.0.0.1:0", "/rs", nil)
	default:
		t.Fatalf("unknown transport %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(ch)
			return
		}
		t.Cleanup(func() { _ = c.Close() })
		onAccept(c)
		ch <- c
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if kind == "websocket" {
		client, err = transport.DialWebSocket(ctx, "ws://"+ln.Addr().String()+"/rs", nil, nil)
	} else {
		client, err = transport.DialTCP(ctx, ln.Addr().String(), cliTLS)
	}
	if err != nil {
		t.Fatal(err)
	}
	return client, ch
}

// stuckClient connects our client to a peer that reads the SETUP and then nothing more.
func stuckClient(t *testing.T, kind string, opts Options) *Conn {
	t.Helper()
	tc, peer := transportPair(t, kind, func(pc transport.Conn) {
		if _, err := pc.ReadFrame(); err != nil { // SETUP (and, for TLS, the handshake)
			t.Errorf("peer: reading SETUP: %v", err)
		}
	})
	c, err := Connect(context.Background(), tc, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if <-peer == nil {
		t.Fatal("accept failed")
	}
	return c
}

// fillUntilStuck sends fire-and-forget frames (each call returns once its frame is written) until the
// writer is blocked in a write to the peer that does not read: no call has returned for a while. It
// returns a channel that receives the error that ended the sending.
func fillUntilStuck(t *testing.T, c *Conn) <-chan error {
	t.Helper()
	var sent atomic.Int64
	errc := make(chan error, 1)
	data := make([]byte, 64<<10)
	go func() {
		for {
			if _, err := c.FireAndForget(context.Background(), Payload{Data: data}, FireAndForgetOptions{}); err != nil {
				errc <- err
				return
			}
			sent.Add(1)
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	last, still := int64(-1), 0
	for still < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("the writer never blocked (%d frames sent)", sent.Load())
		}
		select {
		case err := <-errc:
			t.Fatalf("sending ended before the writer blocked: %v", err)
		case <-time.After(40 * time.Millisecond):
		}
		if n := sent.Load(); n == last && n > 0 {
			still++
		} else {
			last, still = n, 0
		}
	}
	return errc
}

// openCalls opens a request-stream and a request-response that the peer never answers.
func openCalls(t *testing.T, c *Conn) (*collector, <-chan error) {
	t.Helper()
	sub := newCollector()
	if _, err := c.RequestStream(Payload{Data: []byte("s")}, 8, sub); err != nil {
		t.Fatal(err)
	}
	rr := make(chan error, 1)
	go func() {
		m, _, err := c.RequestResponse(context.Background(), Payload{Data: []byte("r")})
		if m != nil {
			m.Release()
		}
		rr <- err
	}()
	for c.InFlight() < 2 {
		time.Sleep(time.Millisecond)
	}
	return sub, rr
}

// checkClosedStreams checks that the open calls and the blocked sender failed with ErrClosed.
func checkClosedStreams(t *testing.T, sub *collector, rr, fnf <-chan error) {
	t.Helper()
	sub.wait(t)
	if _, _, err := sub.snapshot(); !errors.Is(err, ErrClosed) {
		t.Errorf("stream ended with %v, want ErrClosed", err)
	}
	for what, ch := range map[string]<-chan error{"request-response": rr, "fire-and-forget": fnf} {
		select {
		case err := <-ch:
			if !errors.Is(err, ErrClosed) {
				t.Errorf("%s ended with %v, want ErrClosed", what, err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s did not end", what)
		}
	}
}

// TestCloseStuckPeer: the peer stopped reading and the writer is blocked in a write; Close returns at
// once (before: after the 2 s flush timer), fails the streams with ErrClosed and leaks nothing.
func TestCloseStuckPeer(t *testing.T) {
	for _, kind := range closeTransports {
		t.Run(kind, func(t *testing.T) {
			sessionLeakCheck(t)
			c := stuckClient(t, kind, Options{})
			sub, rr := openCalls(t, c)
			fnf := fillUntilStuck(t, c)
			start := time.Now()
			err := c.Close()
			took := time.Since(start)
			if err != nil {
				t.Errorf("Close: %v", err)
			}
			if took > closeBound {
				t.Errorf("Close took %v with a peer that does not read, want < %v", took, closeBound)
			}
			waitDone(t, c.Done(), "session")
			checkClosedStreams(t, sub, rr, fnf)
			if err := c.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}

// TestCloseWouldBlock: the writer is idle but the transport is full (the last write filled it), so the
// final ERROR would block: Close does not wait for it either.
func TestCloseWouldBlock(t *testing.T) {
	sessionLeakCheck(t)
	a, b := transport.Pipe()
	t.Cleanup(func() { _ = b.Close() })
	c, err := Connect(context.Background(), a, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	// Fill the pipe exactly: SETUP plus fire-and-forget frames up to its capacity. Each returns once
	// written, so the writer is idle after the last one.
	for range transport.PipeCapacity - 1 {
		if _, err := c.FireAndForget(context.Background(), Payload{Data: []byte("x")}, FireAndForgetOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if took := time.Since(start); took > closeBound {
		t.Errorf("Close took %v, want < %v", took, closeBound)
	}
	// The peer gets what was written, without the ERROR that did not fit, then the end.
	n := 0
	for {
		f, err := b.ReadFrame()
		if err != nil {
			break
		}
		if frame.Frame(f).Type() == frame.TypeError {
			t.Errorf("the final ERROR was written into a full pipe")
		}
		n++
	}
	if n != transport.PipeCapacity {
		t.Errorf("peer read %d frames, want %d", n, transport.PipeCapacity)
	}
}

// TestCloseReadingPeer: a peer that reads gets everything queued before Close, then
// ERROR[CONNECTION_CLOSE] on stream 0, then the end of the connection.
func TestCloseReadingPeer(t *testing.T) {
	for _, kind := range closeTransports {
		t.Run(kind, func(t *testing.T) {
			sessionLeakCheck(t)
			var p *rawPeer // reading from the start: a TLS server's handshake needs it
			tc, peerc := transportPair(t, kind, func(pc transport.Conn) { p = newRawPeer(t, pc) })
			c, err := Connect(context.Background(), tc, Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			if <-peerc == nil {
				t.Fatal("accept failed")
			}
			p.expect(frame.TypeSetup, 0)
			for _, s := range []string{"a", "b", "c"} {
				if _, err := c.FireAndForget(context.Background(), Payload{Data: []byte(s)}, FireAndForgetOptions{NoWait: true}); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.CloseWithError(frame.CodeConnectionClose, "bye"); err != nil {
				t.Errorf("Close: %v", err)
			}
			var got []string
			var last frame.Frame
			for _, f := range p.closed() {
				switch f.Type() {
				case frame.TypeRequestFNF:
					got = append(got, string(f.Data()))
				case frame.TypeKeepalive:
				default:
					last = f
				}
			}
			if len(got) != 3 || got[0] != "a" || got[1] != "b" || got[2] != "c" {
				t.Errorf("peer got fire-and-forget %q, want a b c", got)
			}
			if last == nil || last.Type() != frame.TypeError || last.StreamID() != 0 ||
				last.ErrorCode() != frame.CodeConnectionClose || string(last.ErrorMessage()) != "bye" {
				t.Errorf("last frame %v, want ERROR[CONNECTION_CLOSE] \"bye\" on stream 0", last)
			}
		})
	}
}

// TestKeepaliveTimeoutStuckPeer: the keepalive timeout ends a session whose peer neither reads nor
// writes, with the writer blocked: the session ends right after the lifetime, not a flush timer later.
func TestKeepaliveTimeoutStuckPeer(t *testing.T) {
	for _, kind := range []string{"pipe", "tcp"} {
		t.Run(kind, func(t *testing.T) {
			sessionLeakCheck(t)
			const lifetime = 1500 * time.Millisecond
			c := stuckClient(t, kind, Options{KeepaliveInterval: 50 * time.Millisecond, MaxLifetime: lifetime})
			sub, rr := openCalls(t, c)
			fnf := fillUntilStuck(t, c) // the lifetime runs from the connect: waiting it from now is generous
			select {
			case <-c.Done():
			case <-time.After(lifetime + closeBound):
				t.Fatalf("session not ended %v after the writer blocked", lifetime+closeBound)
			}
			if !errors.Is(c.Err(), ErrKeepaliveTimeout) {
				t.Errorf("Err = %v, want ErrKeepaliveTimeout", c.Err())
			}
			checkClosedStreams(t, sub, rr, fnf)
		})
	}
}

// TestDetachStuckPeer: a resumable session whose peer stops reading and writing loses its binding at the
// keepalive timeout without waiting for the blocked writer, and stays open with its resume buffer (the
// frames the peer did not confirm); Close then ends it at once.
func TestDetachStuckPeer(t *testing.T) {
	for _, kind := range []string{"pipe", "tcp"} {
		t.Run(kind, func(t *testing.T) {
			sessionLeakCheck(t)
			const lifetime = 1500 * time.Millisecond
			dialed := make(chan struct{}, 1)
			c := stuckClient(t, kind, Options{
				KeepaliveInterval: 50 * time.Millisecond, MaxLifetime: lifetime,
				Resume: ResumeOptions{Enabled: true, BufferSize: 256 << 20, SessionDuration: time.Minute,
					Dial: func(ctx context.Context) (transport.Conn, error) {
						select {
						case dialed <- struct{}{}:
						default:
						}
						<-ctx.Done() // no server to resume with: wait until the session closes
						return nil, ctx.Err()
					}},
			})
			sub, rr := openCalls(t, c)
			fnf := fillUntilStuck(t, c)
			testutil.EventuallyWithin(t, lifetime+closeBound, func() bool { return !c.Bound() },
				"the binding to be dropped after the writer blocked")
			select {
			case <-dialed:
			case <-time.After(5 * time.Second):
				t.Fatal("no redial after the detach")
			}
			if err := c.Err(); err != nil {
				t.Fatalf("detached session ended: %v", err)
			}
			if c.InFlight() < 2 {
				t.Errorf("in flight %d after detach, want the stream and the call kept", c.InFlight())
			}
			if n := c.res.buf.size.Load(); n == 0 {
				t.Error("resume buffer empty after detach: unconfirmed frames lost")
			}
			start := time.Now()
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if took := time.Since(start); took > closeBound {
				t.Errorf("Close of the detached session took %v, want < %v", took, closeBound)
			}
			checkClosedStreams(t, sub, rr, fnf)
		})
	}
}
