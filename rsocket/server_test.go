package rsocket

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rsgate/rsgate/rsocket/frame"
	"github.com/rsgate/rsgate/rsocket/transport"
)

func TestServer(t *testing.T) {
	leakCheck(t)
	ln, err := transport.ListenTCP("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{
		Acceptor: func(si *SetupInfo, c *Conn) (Handler, error) {
			if string(si.Payload.Data) == "let me in" {
				return echoHandler(), nil
			}
			return nil, errors.New("wrong password")
		},
		Options: ServerOptions{SetupTimeout: time.Second},
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	dial := func(pw string) *Conn {
		tc, err := transport.DialTCP(context.Background(), ln.Addr().String(), nil)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Connect(context.Background(), tc, Options{SetupPayload: Payload{Data: []byte(pw)}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	good := dial("let me in")
	for i := 0; i < 10; i++ {
		m, _, err := good.RequestResponse(context.Background(), Payload{Data: []byte("hi")})
		if err != nil {
			t.Fatal(err)
		}
		m.Release()
	}
	bad := dial("guess")
	waitDone(t, bad.Done(), "rejected client")
	if e := mustCode(t, bad.Err(), frame.CodeRejectedSetup); e.Message != "wrong password" {
		t.Fatalf("message %q", e.Message)
	}

	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	mustErrIs(t, <-served, ErrServerClosed)
	waitDone(t, good.Done(), "client of the closed server")
	mustCode(t, good.Err(), frame.CodeConnectionClose)
	if err := srv.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Close: %v", err)
	}
}

// An Acceptor may close the connection it is given before Accept has bound the transport: the session
// ends and the transport is closed (no reader left blocked on it).
func TestCloseInAcceptor(t *testing.T) {
	leakCheck(t)
	a, b := transport.Pipe()
	p := newRawPeer(t, a)
	p.send(setupFrame(false, nil, nil))
	c, err := Accept(context.Background(), b, ServerOptions{}, func(_ *SetupInfo, c *Conn) (Handler, error) {
		go func() { _ = c.Close() }()
		time.Sleep(10 * time.Millisecond) // let Close run before Accept binds the transport
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, c.Done(), "session closed in its acceptor")
	p.closed()
}

// Frames queued on a session before its first transport is bound (Accept's LEASE, Connect's SETUP) wait
// for the binding instead of being dropped by a writer that finds none.
func TestFramesQueuedBeforeBind(t *testing.T) {
	leakCheck(t)
	cfg, err := normalize(0, 0, 0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.keepalive, cfg.lifetime = time.Hour, time.Hour
	c := newConn(cfg, true, nil)
	if err := c.SendLease(time.Second, 1, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // a writer started now would find no binding
	a, b := transport.Pipe()
	p := newRawPeer(t, a)
	c.start(b, false)
	t.Cleanup(func() { _ = c.Close() })
	p.expect(frame.TypeLease, 0)
}
