package pool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/faultproxy"
	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/transport"
)

// resumableServer serves echo request-response and request-stream (n items carrying 0..n-1; n in the
// request data) with resumption; sessionDuration bounds how long it keeps a cut session.
func resumableServer(t *testing.T, sessionDuration time.Duration) string {
	return resumableServerOn(t, sessionDuration, false)
}

// resumableServerOn is resumableServer over TCP, or over WebSocket at path /rsocket.
func resumableServerOn(t *testing.T, sessionDuration time.Duration, ws bool) string {
	t.Helper()
	h := &rsocket.HandlerFuncs{
		RequestResponseFunc: func(req rsocket.Payload, st *rsocket.Stream) {
			_ = st.Respond(rsocket.Payload{Data: append([]byte(nil), req.Data...)})
		},
		RequestStreamFunc: func(req rsocket.Payload, _ uint32, st *rsocket.Stream) {
			n := int(binary.BigEndian.Uint64(req.Data))
			go func() {
				b := make([]byte, 8)
				for i := 0; i < n; i++ {
					binary.BigEndian.PutUint64(b, uint64(i))
					if st.Send(context.Background(), rsocket.Payload{Data: b}) != nil {
						return
					}
				}
				_ = st.Complete()
			}()
		},
	}
	var (
		l   transport.Listener
		err error
	)
	if ws {
		l, err = transport.ListenWebSocket("127.0.0.1:0", "/rsocket", nil)
	} else {
		l, err = transport.ListenTCP("127.0.0.1:0", nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	srv := &rsocket.Server{
		Acceptor: func(*rsocket.SetupInfo, *rsocket.Conn) (rsocket.Handler, error) { return h, nil },
		Options:  rsocket.ServerOptions{Resume: rsocket.ResumeOptions{Enabled: true, SessionDuration: sessionDuration}},
	}
	serveUntilCleanup(t, srv, l)
	return l.Addr().String()
}

func resumableBackend(addr string) *mapping.Backend {
	b := testBackend("resumable", addr)
	b.Resume = mapping.BackendResume{Enabled: true, SessionDuration: mapping.Duration(20 * time.Second), Buffer: 1 << 20}
	b.Keepalive = mapping.Duration(50 * time.Millisecond)
	b.MaxLifetime = mapping.Duration(10 * time.Second)
	return b
}

// seqSub checks items 0, 1, 2, ... and grants credit in windows of 64.
type seqSub struct {
	mu   sync.Mutex
	st   *rsocket.Stream
	owed uint32
	next atomic.Int64
	bad  atomic.Int64
	err  error
	done chan struct{}
}

func (s *seqSub) setStream(st *rsocket.Stream) {
	s.mu.Lock()
	s.st = st
	if s.owed > 0 {
		st.Request(s.owed)
	}
	s.mu.Unlock()
}

func (s *seqSub) OnNext(p rsocket.Payload, complete bool) {
	if len(p.Data) == 8 && int64(binary.BigEndian.Uint64(p.Data)) == s.next.Load() {
		s.next.Add(1)
	} else {
		s.bad.Add(1)
	}
	if s.next.Load()%64 == 0 {
		s.mu.Lock()
		if s.st != nil {
			s.st.Request(64)
		} else {
			s.owed += 64
		}
		s.mu.Unlock()
	}
	if complete {
		close(s.done)
	}
}
func (s *seqSub) OnComplete()       { close(s.done) }
func (s *seqSub) OnError(err error) { s.err = err; close(s.done) }

// A backend connection (TCP or WebSocket) cut every 10 ms (RST both ways, by a proxy) is resumed by the
// pool's connection: request-responses in flight complete with their own answers, a stream continues
// without losing or repeating an item, and the pool keeps the same session throughout (no reconnect).
func TestResumeAcrossCutsThroughPool(t *testing.T) {
	for _, ws := range []bool{false, true} {
		name := "tcp"
		if ws {
			name = "websocket"
		}
		t.Run(name, func(t *testing.T) { resumeAcrossCutsThroughPool(t, ws) })
	}
}

func resumeAcrossCutsThroughPool(t *testing.T, ws bool) {
	proxy, err := faultproxy.Start(resumableServerOn(t, time.Minute, ws), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	bk := resumableBackend(proxy.Addr())
	if ws {
		bk = resumableBackend("ws://" + proxy.Addr() + "/rsocket")
		bk.Transport = mapping.TransportWebSocket
	}
	p := newPool(t, bk, Options{})
	p.Start()
	testutil.EventuallyWithin(t, 5*time.Second, func() bool { return readyConns(p) == 1 }, "a ready connection")
	m, err := p.Pick()
	if err != nil {
		t.Fatal(err)
	}
	session := m.Conn()
	m.Done(time.Now(), nil)
	proxy.CutEvery(10 * time.Millisecond)

	const items, calls = 50_000, 1_000
	sub := &seqSub{done: make(chan struct{})}
	req := make([]byte, 8)
	binary.BigEndian.PutUint64(req, items)
	st, err := session.RequestStream(rsocket.Payload{Data: req}, 128, sub)
	if err != nil {
		t.Fatal(err)
	}
	sub.setStream(st)
	var failed atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < calls/4; i++ {
				m, err := p.Pick()
				if err != nil {
					failed.Add(1)
					continue
				}
				want := fmt.Sprintf("%d/%d", g, i)
				start := time.Now()
				msg, _, err := m.Conn().RequestResponse(context.Background(), rsocket.Payload{Data: []byte(want)})
				m.Done(start, err)
				if err != nil {
					t.Errorf("request %s: %v", want, err)
					failed.Add(1)
					continue
				}
				if string(msg.Data) != want {
					t.Errorf("request %s answered %q", want, msg.Data)
				}
				msg.Release()
			}
		}(g)
	}
	wg.Wait()
	select {
	case <-sub.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("stream stalled at %d items (%d cuts)", sub.next.Load(), proxy.Cuts())
	}
	if sub.err != nil || sub.next.Load() != items || sub.bad.Load() != 0 {
		t.Fatalf("stream: %d in order of %d, %d bad, err %v", sub.next.Load(), items, sub.bad.Load(), sub.err)
	}
	if failed.Load() != 0 {
		t.Fatalf("%d request-responses failed", failed.Load())
	}
	if proxy.Cuts() < 2 {
		t.Fatalf("only %d cuts during the run", proxy.Cuts())
	}
	m, err = p.Pick()
	if err != nil {
		t.Fatal(err)
	}
	if m.Conn() != session {
		t.Fatal("the pool reconnected instead of resuming")
	}
	m.Done(time.Now(), nil)
	t.Logf("%d items, %d request-responses, %d cuts, one session", items, calls, proxy.Cuts())
}

// When the backend refuses the resume (here: the re-dialled connection reaches another backend instance,
// as after a restart, which does not know the session), the streams of the cut connection fail with an
// error matching rsocket.ErrResumeRejected, and new requests go out on a new connection.
func TestResumeRefusedThroughPool(t *testing.T) {
	other := resumableServer(t, time.Minute)
	proxy, err := faultproxy.Start(resumableServer(t, time.Minute), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	b := resumableBackend(proxy.Addr())
	p := newPool(t, b, Options{})
	p.Start()
	testutil.EventuallyWithin(t, 5*time.Second, func() bool { return readyConns(p) == 1 }, "a ready connection")
	m, err := p.Pick()
	if err != nil {
		t.Fatal(err)
	}
	session := m.Conn()
	m.Done(time.Now(), nil)
	sub := &seqSub{done: make(chan struct{})}
	req := make([]byte, 8)
	binary.BigEndian.PutUint64(req, 1_000_000_000)
	st, err := session.RequestStream(rsocket.Payload{Data: req}, 1, sub) // one item, then it waits
	if err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyWithin(t, 5*time.Second, func() bool { return sub.next.Load() == 1 }, "the first item")
	proxy.SetTarget(other)
	proxy.Cut()
	select {
	case <-sub.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("the stream did not fail after the refused resume: bound %v err %v cuts %d", session.Bound(), session.Err(), proxy.Cuts())
	}
	if !errors.Is(sub.err, rsocket.ErrResumeRejected) || !errors.Is(sub.err, rsocket.ErrClosed) {
		t.Fatalf("stream error %v, want ErrResumeRejected", sub.err)
	}
	_ = st
	testutil.EventuallyWithin(t, 5*time.Second, func() bool {
		m, err := p.Pick()
		if err != nil {
			return false
		}
		defer m.Done(time.Now(), nil)
		return m.Conn() != session && m.Conn().Err() == nil
	}, "a new connection")
	if _, err := request(t, p); err != nil {
		t.Fatalf("request on the new connection: %v", err)
	}
}
