package rsocket

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rsgate/rsgate/rsocket/frame"
	"github.com/rsgate/rsgate/rsocket/internal/bufpool"
	"github.com/rsgate/rsgate/rsocket/transport"
)

func TestMain(m *testing.M) {
	bufpool.EnableTracking()
	os.Exit(m.Run())
}

// leakCheck records the goroutine count now and, at cleanup, waits for it to come back and for every
// pooled buffer to be returned.
func leakCheck(t testing.TB) {
	t.Helper()
	base := runtime.NumGoroutine()
	bufBase := bufpool.Outstanding()
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		for {
			g, b := runtime.NumGoroutine(), bufpool.Outstanding()
			if g <= base && b == bufBase {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				t.Errorf("leak: goroutines %d (baseline %d), pooled buffers outstanding %d (baseline %d)\n%s",
					g, base, b, bufBase, buf[:n])
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

type pairCfg struct {
	client   Options
	server   ServerOptions
	handler  Handler // server handler
	tcp      bool
	acceptor Acceptor
}

// pair connects a client and a server Conn over a Pipe (or loopback TCP) and closes both at cleanup.
func pair(t testing.TB, pc pairCfg) (client, server *Conn) {
	t.Helper()
	var ct, st transport.Conn
	if pc.tcp {
		ln, err := transport.ListenTCP("127.0.0.1:0", nil)
		if err != nil {
			t.Fatal(err)
		}
		type res struct {
			c   transport.Conn
			err error
		}
		ch := make(chan res, 1)
		go func() { c, err := ln.Accept(); ch <- res{c, err} }()
		ct, err = transport.DialTCP(context.Background(), ln.Addr().String(), nil)
		if err != nil {
			t.Fatal(err)
		}
		r := <-ch
		_ = ln.Close()
		if r.err != nil {
			t.Fatal(r.err)
		}
		st = r.c
	} else {
		ct, st = transport.Pipe()
	}
	acc := pc.acceptor
	if acc == nil {
		h := pc.handler
		acc = func(*SetupInfo, *Conn) (Handler, error) { return h, nil }
	}
	type res struct {
		c   *Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := Accept(context.Background(), st, pc.server, acc)
		ch <- res{c, err}
	}()
	client, err := Connect(context.Background(), ct, pc.client)
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	server = r.c
	t.Cleanup(func() {
		_ = client.Close()
		_ = server.Close()
	})
	return client, server
}

// echo answers request-response with the request.
func echoHandler() *HandlerFuncs {
	return &HandlerFuncs{
		RequestResponseFunc: func(req Payload, s *Stream) { _ = s.Respond(req) },
	}
}

// collector is a Subscriber recording everything it gets.
type collector struct {
	mu       sync.Mutex
	items    []string
	mds      []string
	complete bool // OnNext(.., true) or OnComplete
	err      error
	ended    chan struct{}
	onNext   func(p Payload, complete bool)
}

func newCollector() *collector { return &collector{ended: make(chan struct{})} }

func (c *collector) OnNext(p Payload, complete bool) {
	c.mu.Lock()
	c.items = append(c.items, string(p.Data))
	if p.Metadata != nil {
		c.mds = append(c.mds, string(p.Metadata))
	}
	if complete {
		c.complete = true
		close(c.ended)
	}
	f := c.onNext
	c.mu.Unlock()
	if f != nil {
		f(p, complete)
	}
}

func (c *collector) OnComplete() {
	c.mu.Lock()
	c.complete = true
	close(c.ended)
	c.mu.Unlock()
}

func (c *collector) OnError(err error) {
	c.mu.Lock()
	c.err = err
	close(c.ended)
	c.mu.Unlock()
}

func (c *collector) wait(t testing.TB) {
	t.Helper()
	select {
	case <-c.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("subscriber did not end")
	}
}

func (c *collector) snapshot() ([]string, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.items...), c.complete, c.err
}

// rawPeer drives one end of a Pipe with hand-made frames, to check our Conn on the wire.
type rawPeer struct {
	t  testing.TB
	tc transport.Conn
	ch chan frame.Frame
	ec chan error
}

func newRawPeer(t testing.TB, tc transport.Conn) *rawPeer {
	p := &rawPeer{t: t, tc: tc, ch: make(chan frame.Frame, 1024), ec: make(chan error, 1)}
	go func() {
		for {
			b, err := tc.ReadFrame()
			if err != nil {
				p.ec <- err
				close(p.ch)
				return
			}
			f, err := frame.Parse(b)
			if err != nil {
				p.ec <- err
				close(p.ch)
				return
			}
			p.ch <- append(frame.Frame(nil), f...)
		}
	}()
	t.Cleanup(func() { _ = tc.Close() })
	return p
}

func (p *rawPeer) send(b []byte) {
	p.t.Helper()
	if err := p.tc.WriteFrame(b, nil, nil); err != nil {
		p.t.Fatal(err)
	}
	if err := p.tc.Flush(); err != nil {
		p.t.Fatal(err)
	}
}

// nextAny returns the next frame, whatever it is.
func (p *rawPeer) nextAny() frame.Frame {
	p.t.Helper()
	select {
	case f, ok := <-p.ch:
		if !ok {
			p.t.Fatalf("raw peer: connection ended: %v", <-p.ec)
		}
		return f
	case <-time.After(5 * time.Second):
		p.t.Fatal("raw peer: no frame within 5s")
	}
	return nil
}

// next returns the next frame, skipping KEEPALIVE frames.
func (p *rawPeer) next() frame.Frame {
	p.t.Helper()
	for {
		select {
		case f, ok := <-p.ch:
			if !ok {
				p.t.Fatalf("raw peer: connection ended: %v", <-p.ec)
			}
			if f.Type() == frame.TypeKeepalive {
				continue
			}
			return f
		case <-time.After(5 * time.Second):
			p.t.Fatal("raw peer: no frame within 5s")
		}
	}
}

// expect returns the next frame and checks its type and stream.
// pendingRR starts a request-response with data "a" on c and waits until the raw peer p has its
// REQUEST_RESPONSE (stream 1); the channel then receives the call's error.
func pendingRR(p *rawPeer, c *Conn) <-chan error {
	p.t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.RequestResponse(context.Background(), Payload{Data: []byte("a")})
		errc <- err
	}()
	p.expect(frame.TypeRequestResponse, 1)
	return errc
}

func (p *rawPeer) expect(typ frame.Type, id uint32) frame.Frame {
	p.t.Helper()
	f := p.next()
	if f.Type() != typ || f.StreamID() != id {
		p.t.Fatalf("raw peer: got %v, want %v on stream %d", f, typ, id)
	}
	return f
}

// quiet checks that no frame (other than KEEPALIVE) arrives for d.
func (p *rawPeer) quiet(d time.Duration) {
	p.t.Helper()
	tm := time.After(d)
	for {
		select {
		case f, ok := <-p.ch:
			if !ok {
				return
			}
			if f.Type() == frame.TypeKeepalive {
				continue
			}
			p.t.Fatalf("raw peer: unexpected frame %v", f)
		case <-tm:
			return
		}
	}
}

// closed waits until the connection to the raw peer is gone and returns the frames seen before.
func (p *rawPeer) closed() []frame.Frame {
	p.t.Helper()
	var fs []frame.Frame
	tm := time.After(5 * time.Second)
	for {
		select {
		case f, ok := <-p.ch:
			if !ok {
				return fs
			}
			fs = append(fs, f)
		case <-tm:
			p.t.Fatal("raw peer: connection not closed within 5s")
		}
	}
}

func setupFrame(lease bool, md, data []byte) []byte {
	return frame.AppendSetup(nil, &frame.Setup{Major: 1, Minor: 0, Keepalive: 60000, Lifetime: 120000,
		Lease: lease, MetadataMIME: "text/plain", DataMIME: "text/plain"}, md, data)
}

// rawClient starts our server (Accept) against a raw client peer that has sent SETUP already.
func rawClient(t testing.TB, h Handler, opts ServerOptions, setup []byte) (*rawPeer, *Conn) {
	t.Helper()
	a, b := transport.Pipe()
	p := newRawPeer(t, a)
	p.send(setup)
	c, err := Accept(context.Background(), b, opts, func(*SetupInfo, *Conn) (Handler, error) { return h, nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return p, c
}

// rawServer starts our client (Connect) against a raw server peer and consumes the SETUP.
func rawServer(t testing.TB, opts Options) (*rawPeer, *Conn) {
	t.Helper()
	a, b := transport.Pipe()
	p := newRawPeer(t, a)
	c, err := Connect(context.Background(), b, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	p.expect(frame.TypeSetup, 0)
	return p, c
}

func waitDone(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: not done within 5s", what)
	}
}

func mustErrIs(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want one matching %v", err, target)
	}
}

func mustCode(t testing.TB, err error, code frame.ErrorCode) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("error %v, want *Error with code %v", err, code)
	}
	return e
}

func payloadString(p Payload) string {
	if p.Metadata == nil {
		return fmt.Sprintf("<nil>|%s", p.Data)
	}
	return fmt.Sprintf("%s|%s", p.Metadata, p.Data)
}

var _ = strings.Repeat

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// fnfErr drops the stream id FireAndForget returns.
func fnfErr(_ uint32, err error) error { return err }
