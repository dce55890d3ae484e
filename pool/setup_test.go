package pool

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/internal/testutil/rstest"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/frame"
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
					return rstest.EchoHandler(), nil
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

// TestSetupRefusedIsItsOwnError: a backend that answers SETUP with ERROR[REJECTED_SETUP] is not "no
// connection" (503, retry later) but ErrSetupRefused with the code (the ingress answers 502); a backend
// that cannot be reached at all stays ErrNoConnection.
func TestSetupRefusedIsItsOwnError(t *testing.T) {
	dialer := func(ctx context.Context, addr string) (transport.Conn, error) {
		a, b := transport.Pipe()
		go func() {
			_, _ = rsocket.Accept(context.Background(), b, rsocket.ServerOptions{},
				func(*rsocket.SetupInfo, *rsocket.Conn) (rsocket.Handler, error) {
					return nil, errors.New("tenant unknown")
				})
		}()
		return a, nil
	}
	bk := testBackend("refusing", "10.0.0.1:1", "10.0.0.2:1")
	p := newPool(t, bk, Options{Dialer: dialer})
	p.Start()
	var err error
	testutil.EventuallyWithin(t, 5*time.Second, func() bool {
		var m *Member
		if m, err = p.Pick(); m != nil {
			m.Done(time.Now(), nil)
		}
		return errors.Is(err, ErrSetupRefused)
	}, "ErrSetupRefused from Pick")

	var pe *PickError
	if !errors.As(err, &pe) || pe.Code != frame.CodeRejectedSetup || pe.Backend != "refusing" {
		t.Fatalf("Pick: %#v", err)
	}
	if _, retry := RetryAfter(err); retry {
		t.Fatal("RetryAfter treats a refused SETUP as retryable (503)")
	}
	if !strings.Contains(err.Error(), "REJECTED_SETUP") {
		t.Fatalf("message %q does not name the code", err)
	}

	down := newPool(t, testBackend("down", "127.0.0.1:1"), Options{})
	down.Start()
	testutil.EventuallyWithin(t, 5*time.Second, func() bool { return down.Stats().Conns[0].DialFailures > 0 }, "a dial failure")
	if _, err := down.Pick(); !errors.Is(err, ErrNoConnection) {
		t.Fatalf("unreachable backend: %v, want ErrNoConnection", err)
	}
}
