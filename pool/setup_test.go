package pool

import (
	"context"
	"testing"
	"time"

	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/transport"
)

func TestSetupCarriesBackendSettings(t *testing.T) {
	got := make(chan *rsocket.SetupInfo, 1)
	dialer := func(ctx context.Context, addr string) (transport.Conn, error) {
		a, b := transport.Pipe()
		go func() {
			c, err := rsocket.Accept(context.Background(), b, rsocket.ServerOptions{},
				func(s *rsocket.SetupInfo, _ *rsocket.Conn) (rsocket.Handler, error) {
					got <- s
					return echoHandler(), nil
				})
			if err == nil {
				t.Cleanup(func() { _ = c.Close() })
			}
		}()
		return a, nil
	}
	bk := testBackend("setup", "10.0.0.1:1")
	bk.Keepalive = mapping.Duration(1500 * time.Millisecond)
	bk.MaxLifetime = mapping.Duration(7 * time.Second)
	bk.DataMIME = "application/cbor"
	bk.MetadataMIME = "message/x.rsocket.routing.v0"
	bk.Setup = &mapping.SetupPayload{Data: "hello", Metadata: "md"}
	p := newPool(t, bk, Options{Dialer: dialer})
	p.Start()
	var s *rsocket.SetupInfo
	select {
	case s = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no SETUP")
	}
	if s.Keepalive != 1500*time.Millisecond || s.MaxLifetime != 7*time.Second || s.DataMIME != "application/cbor" ||
		s.MetadataMIME != "message/x.rsocket.routing.v0" || s.Lease ||
		string(s.Payload.Data) != "hello" || string(s.Payload.Metadata) != "md" {
		t.Fatalf("SETUP: %+v", s)
	}
}
