package pool

import (
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/internal/testutil/rstest"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/transport"
)

func TestWebSocketBackend(t *testing.T) {
	l, err := transport.ListenWebSocket("127.0.0.1:0", "/rsocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	h := rstest.EchoHandler()
	srv := &rsocket.Server{Acceptor: func(*rsocket.SetupInfo, *rsocket.Conn) (rsocket.Handler, error) { return h, nil }}
	serveUntilCleanup(t, srv, l)

	bk := testBackend("ws", "ws://"+l.Addr().String()+"/rsocket")
	bk.Transport = mapping.TransportWebSocket
	bk.Connections = 2
	p := newPool(t, bk, Options{})
	p.Start()
	testutil.EventuallyWithin(t, 5*time.Second, func() bool { return readyConns(p) == 2 }, "2 websocket connections")
	for i := 0; i < 10; i++ {
		if _, err := request(t, p); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if setup := (*p.members.Load())[0].Conn().Setup(); setup.DataMIME != mapping.DefaultDataMIME || setup.MetadataMIME != mapping.DefaultMetadataMIME {
		t.Errorf("SETUP MIME types: %q %q", setup.DataMIME, setup.MetadataMIME)
	}

	// A wrong path is refused by the server: dial failures, not ready.
	bad := testBackend("ws-404", "ws://"+l.Addr().String()+"/nope")
	bad.Transport = mapping.TransportWebSocket
	q := newPool(t, bad, Options{})
	q.Start()
	testutil.EventuallyWithin(t, 5*time.Second, func() bool { return connStats(q, bad.Addresses[0]).DialFailures > 0 }, "a failed upgrade")
	if q.Ready() {
		t.Fatal("ready after a refused upgrade")
	}
}
