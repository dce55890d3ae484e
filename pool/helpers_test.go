package pool

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/transport"
)

// testServer is an RSocket server on 127.0.0.1 that answers request-response with the request data,
// after delay. It can be stopped and restarted on the same address.
type testServer struct {
	t     *testing.T
	addr  string
	delay time.Duration
	lease *rsocket.LeaseGrant
	tls   *tls.Config

	mu       sync.Mutex
	srv      *rsocket.Server
	served   chan struct{}
	requests atomic.Int64
}

func startServer(t *testing.T, delay time.Duration) *testServer {
	t.Helper()
	s := &testServer{t: t, addr: "127.0.0.1:0", delay: delay}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *testServer) handler() rsocket.Handler {
	return &rsocket.HandlerFuncs{
		RequestResponseFunc: func(req rsocket.Payload, st *rsocket.Stream) {
			s.requests.Add(1)
			data := append([]byte(nil), req.Data...)
			if s.delay <= 0 {
				_ = st.Respond(rsocket.Payload{Data: data})
				return
			}
			time.AfterFunc(s.delay, func() { _ = st.Respond(rsocket.Payload{Data: data}) })
		},
	}
}

// start listens on s.addr (the same port again after a stop).
func (s *testServer) start() {
	s.t.Helper()
	var (
		l   transport.Listener
		err error
	)
	for i := 0; i < 50; i++ { // the port may take a moment to be free again after a stop
		if l, err = transport.ListenTCP(s.addr, s.tls); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("listen %s: %v", s.addr, err)
	}
	s.addr = l.Addr().String()
	h := s.handler()
	srv := &rsocket.Server{
		Acceptor: func(*rsocket.SetupInfo, *rsocket.Conn) (rsocket.Handler, error) { return h, nil },
		Options:  rsocket.ServerOptions{Lease: s.lease},
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(l)
	}()
	s.mu.Lock()
	s.srv, s.served = srv, served
	s.mu.Unlock()
}

// serveUntilCleanup serves srv on l until the test ends.
func serveUntilCleanup(t *testing.T, srv *rsocket.Server, l transport.Listener) {
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-served
	})
}

// stop closes the listener and every connection.
func (s *testServer) stop() {
	s.mu.Lock()
	srv, served := s.srv, s.served
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	_ = srv.Close()
	<-served
}

// testBackend is a tcp backend with fast reconnects for tests.
func testBackend(name string, addrs ...string) *mapping.Backend {
	b := mapping.NewBackend(name)
	b.Addresses = addrs
	b.Connections = 1
	b.DialTimeout = mapping.Duration(2 * time.Second)
	b.Reconnect = mapping.Reconnect{MinBackoff: mapping.Duration(10 * time.Millisecond), MaxBackoff: mapping.Duration(100 * time.Millisecond)}
	b.ResolveInterval = 0
	return b
}

func newPool(t *testing.T, b *mapping.Backend, opts Options) *Pool {
	t.Helper()
	p, err := New(b, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func readyConns(p *Pool) int { return p.Stats().ReadyConns }

// request picks a member, runs one request-response on it and calls Done.
func request(t *testing.T, p *Pool) (*Member, error) {
	t.Helper()
	m, err := p.Pick()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	msg, _, err := m.Conn().RequestResponse(ctx, rsocket.Payload{Data: []byte("ping")})
	m.Done(start, err)
	if err != nil {
		return m, err
	}
	if string(msg.Data) != "ping" {
		t.Errorf("echo: got %q", msg.Data)
	}
	msg.Release()
	return m, nil
}

// pipeDialer serves every dial with an in-memory pipe to an rsocket server side (no network).
func pipeDialer(t testing.TB, h rsocket.Handler, lease *rsocket.LeaseGrant) func(context.Context, string) (transport.Conn, error) {
	t.Helper()
	var mu sync.Mutex
	var conns []*rsocket.Conn
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return func(ctx context.Context, addr string) (transport.Conn, error) {
		a, b := transport.Pipe()
		go func() {
			c, err := rsocket.Accept(context.Background(), b, rsocket.ServerOptions{Lease: lease},
				func(*rsocket.SetupInfo, *rsocket.Conn) (rsocket.Handler, error) { return h, nil })
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}()
		return a, nil
	}
}

var errRefused = errors.New("test: connection refused")

// localAddr returns a 127.0.0.1 address nothing listens on.
func localAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}
