package interop

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	rsgo "github.com/rsocket/rsocket-go"
	"github.com/rsocket/rsocket-go/payload"

	"github.com/rsgate/rsgate/bench/interop/peers"
	"github.com/rsgate/rsgate/internal/faultproxy"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/extension"
	"github.com/rsgate/rsgate/rsocket/transport"
)

// TestRSocketGoResumeClient: rsocket-go v0.8.12's resumable client against our resumable server, through a
// proxy that resets the connection between requests. rsocket-go sends RESUME with its received position
// and, as "first available client position", the bytes it has written (it keeps no retransmission
// buffer); our server answers RESUME_OK and the same session continues: requests after the cut are
// answered on the session set up before it (one SETUP, one session). What this cannot cover: frames
// rsocket-go had in flight at the cut are gone on its side (no buffer); our server then sees a first
// available position beyond what it received and answers REJECTED_RESUME instead of losing them silently.
func TestRSocketGoResumeClient(t *testing.T) {
	var setups atomic.Int32
	obs := peers.NewObservations()
	acc := peers.OurAcceptor(obs)
	srv := &rsocket.Server{
		Acceptor: func(s *rsocket.SetupInfo, c *rsocket.Conn) (rsocket.Handler, error) {
			setups.Add(1)
			return acc(s, c)
		},
		Options: rsocket.ServerOptions{Resume: rsocket.ResumeOptions{Enabled: true, SessionDuration: time.Minute}},
	}
	ln, err := transport.ListenTCP("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	proxy, err := faultproxy.Start(ln.Addr().String(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gc, err := rsgo.Connect().
		Resume().
		MetadataMimeType(extension.MimeComposite).
		DataMimeType(octetStream).
		ConnectTimeout(10 * time.Second).
		Transport(rsgo.TCPClient().SetAddr(proxy.Addr()).Build()).
		Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Close()
	echo := func(s string) (string, error) {
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
		defer rcancel()
		p, err := gc.RequestResponse(payload.New([]byte(s), peers.GoRouteMetadata("echo"))).Block(rctx)
		if err != nil {
			return "", err
		}
		return p.DataUTF8(), nil
	}
	for i, s := range []string{"before", "after-cut-1", "after-cut-2"} {
		if i > 0 {
			proxy.Cut()
			// rsocket-go re-dials 1 s after it notices the cut (its _resumeReconnectDelay).
			time.Sleep(1500 * time.Millisecond)
		}
		got, err := echo(s)
		if err != nil || got != s {
			t.Fatalf("request %q: %q, %v (cuts %d)", s, got, err, proxy.Cuts())
		}
	}
	if n := setups.Load(); n != 1 {
		t.Fatalf("%d SETUPs: rsocket-go set up new sessions instead of resuming", n)
	}
	if n := srv.Options.Sessions.Len(); n != 1 {
		t.Fatalf("%d sessions on our server, want the one resumed", n)
	}
}
