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
