package interop

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rsgate/rsgate/bench/interop/peers"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/frame"
	"github.com/rsgate/rsgate/rsocket/transport"

	rsgo "github.com/rsocket/rsocket-go"
	gotransport "github.com/rsocket/rsocket-go/core/transport"
	"github.com/rsocket/rsocket-go/payload"
)

// TestSetupRejected: a server that refuses the SETUP answers ERROR[REJECTED_SETUP] on stream 0 with its
// reason, and the client reports exactly that code and message — both directions, both transports. Also
// rsocket-go asking for resumption, which our server does not offer.
func TestSetupRejected(t *testing.T) {
	for _, kind := range []string{"tcp", "ws"} {
		t.Run("ours-to-rsgo/"+kind, func(t *testing.T) {
			s, err := peers.StartGoServer(kind, 0, func(context.Context, payload.SetupPayload, rsgo.CloseableRSocket) (rsgo.RSocket, error) {
				return nil, errors.New("go away: rsocket-go says no")
			})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ctx := caseCtx(t)
			var tc transport.Conn
			if kind == "tcp" {
				tc, err = transport.DialTCP(ctx, s.Addr, nil)
			} else {
				tc, err = transport.DialWebSocket(ctx, s.URL, nil, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			c, err := rsocket.Connect(ctx, tc, rsocket.Options{})
			if err == nil {
				defer c.Close()
				select {
				case <-c.Done():
					err = c.Err()
				case <-ctx.Done():
					t.Fatal("connection still open after the server rejected the SETUP")
				}
			}
			var re *rsocket.Error
			if !errors.As(err, &re) || re.Code != frame.CodeRejectedSetup || re.Message != "go away: rsocket-go says no" {
				t.Fatalf("connection ended with %v, want REJECTED_SETUP %q", err, "go away: rsocket-go says no")
			}
		})
		t.Run("rsgo-to-ours/"+kind, func(t *testing.T) {
			addr := startOurServer(t, kind, func(*rsocket.SetupInfo, *rsocket.Conn) (rsocket.Handler, error) {
				return nil, &rsocket.Error{Code: frame.CodeRejectedSetup, Message: "go away: rsgate says no"}
			})
			code, msg := goClientSetupError(t, kind, addr, false)
			if code != uint32(frame.CodeRejectedSetup) || msg != "go away: rsgate says no" {
				t.Fatalf("rsocket-go saw ERROR %s %q, want REJECTED_SETUP %q", frame.ErrorCode(code), msg, "go away: rsgate says no")
			}
		})
		t.Run("rsgo-resume-to-ours/"+kind, func(t *testing.T) {
			addr := startOurServer(t, kind, peers.OurAcceptor(peers.NewObservations()))
			code, msg := goClientSetupError(t, kind, addr, true)
			if c := frame.ErrorCode(code); c != frame.CodeRejectedSetup && c != frame.CodeUnsupportedSetup {
				t.Fatalf("rsocket-go SETUP with resume: ERROR %s %q, want REJECTED_SETUP or UNSUPPORTED_SETUP", c, msg)
			}
			t.Logf("SETUP with the resume flag: %s %q", frame.ErrorCode(code), msg)
		})
	}
}

// startOurServer serves acceptor on an ephemeral port; it returns host:port (tcp) or a ws:// URL.
func startOurServer(t *testing.T, kind string, acceptor rsocket.Acceptor) string {
	t.Helper()
	var l transport.Listener
	var err error
	if kind == "tcp" {
		l, err = transport.ListenTCP("127.0.0.1:0", nil)
	} else {
		l, err = transport.ListenWebSocket("127.0.0.1:0", "/", nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	srv := &rsocket.Server{Acceptor: acceptor}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	if kind == "tcp" {
		return l.Addr().String()
	}
	return "ws://" + l.Addr().String() + "/"
}

// goClientSetupError connects an rsocket-go client (optionally asking for resumption) and returns the
// code and message of the connection-level ERROR it ends with.
func goClientSetupError(t *testing.T, kind, addr string, resume bool) (uint32, string) {
	t.Helper()
	life, stop := context.WithCancel(context.Background())
	defer stop()
	closed := make(chan error, 1)
	var tp gotransport.ClientTransporter
	if kind == "tcp" {
		tp = rsgo.TCPClient().SetAddr(addr).Build()
	} else {
		tp = rsgo.WebsocketClient().SetURL(addr).Build()
	}
	b := rsgo.Connect()
	if resume {
		b = b.Resume()
	}
	c, err := b.OnClose(func(err error) {
		select {
		case closed <- err:
		default:
		}
	}).Transport(tp).Start(life)
	if err == nil {
		defer c.Close()
		select {
		case err = <-closed:
		case <-time.After(2 * time.Second):
			// Not closed yet: a request makes rsocket-go act on the ERROR. rsocket-go panics ("this pool
			// has been closed") on a request racing the close, hence the recover.
			var rerr error
			func() {
				defer func() {
					if r := recover(); r != nil {
						rerr = fmt.Errorf("rsocket-go panicked: %v", r)
					}
				}()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_, _, rerr = c.RequestResponse(payload.New([]byte("x"), peers.GoRouteMetadata("echo"))).BlockUnsafe(ctx)
			}()
			select {
			case err = <-closed:
			case <-time.After(5 * time.Second):
				err = rerr
			}
		}
	}
	if code, msg, ok := appError(err); ok {
		return code, msg
	}
	t.Fatalf("rsocket-go client: %v, want a connection-level ERROR", err)
	return 0, ""
}
