package rsocket

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/faultproxy"
	"github.com/rsgate/rsgate/rsocket/transport"
)

// The proof of resumption: our client and our server over TCP through a proxy that resets every
// connection every 300 ms (RST on both sides). A long request-stream and many request-responses run
// across the cuts: every item arrives exactly once and in order, every request-response gets its own
// answer. By default go test runs 100,000 items and 2,000 request-responses with a cut every 20 ms;
// RSGATE_RESUME_FULL=1 runs the full 1,000,000 items and 10,000 request-responses with a cut every 300 ms. With fragmentation, items and requests are split at
// an MTU of 64 bytes.
func TestResumeAcrossCuts(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mtu      int
		itemSize int
	}{{"plain", 0, 8}, {"fragmented", 64, 200}} {
		t.Run(tc.name, func(t *testing.T) { resumeAcrossCuts(t, tc.mtu, tc.itemSize) })
	}
}

func resumeAcrossCuts(t *testing.T, mtu, itemSize int) {
	// By default the proxy cuts every 20 ms, so that the short run still crosses many cuts; the full run
	// uses the 300 ms.
	// The producer pauses 1 ms every paceEvery items, and each request-response goroutine rrPause
	// between calls, so that the run spans several cuts however fast the machine is.
	items, calls, every, paceEvery, rrPause := 100_000, 2_000, 20*time.Millisecond, 2_000, time.Duration(0)
	if mtu > 0 {
		items = 20_000
	}
	if os.Getenv("RSGATE_RESUME_FULL") != "" {
		items, calls, every, paceEvery, rrPause = 1_000_000, 10_000, 300*time.Millisecond, 300, 2*time.Millisecond
	}
	if testing.Short() {
		items, calls = 5_000, 200
	}
	leakCheck(t)
	resume := ResumeOptions{Enabled: true, BufferSize: 4 << 20, SessionDuration: 30 * time.Second}
	srv := &Server{
		Options: ServerOptions{MTU: mtu, Resume: resume},
		Acceptor: func(*SetupInfo, *Conn) (Handler, error) {
			return &HandlerFuncs{
				RequestResponseFunc: func(req Payload, s *Stream) { _ = s.Respond(req) },
				RequestStreamFunc: func(req Payload, _ uint32, s *Stream) {
					n := int(binary.BigEndian.Uint64(req.Data))
					go func() {
						buf := make([]byte, itemSize)
						for i := 0; i < n; i++ {
							if i%paceEvery == paceEvery-1 {
								time.Sleep(time.Millisecond)
							}
							binary.BigEndian.PutUint64(buf, uint64(i))
							if err := s.Send(context.Background(), Payload{Data: buf}); err != nil {
								return
							}
						}
						_ = s.Complete()
					}()
				},
			}, nil
		},
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

	dial := func(ctx context.Context) (transport.Conn, error) { return transport.DialTCP(ctx, proxy.Addr(), nil) }
	tc, err := dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	resume.Dial = dial
	c, err := Connect(context.Background(), tc, Options{MTU: mtu, KeepaliveInterval: 50 * time.Millisecond,
		MaxLifetime: 10 * time.Second, Resume: resume})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Cut only once the session exists on the server: a cut before the server has seen SETUP leaves
	// nothing to resume (the client gets REJECTED_RESUME, rightly).
	if m, _, err := c.RequestResponse(context.Background(), Payload{Data: []byte("hello")}); err != nil {
		t.Fatal(err)
	} else {
		m.Release()
	}
	proxy.CutEvery(every)

	// The stream: windowed demand like the gateway's (ask for more as items are consumed).
	sub := &seqSubscriber{done: make(chan struct{})}
	req := make([]byte, 8)
	binary.BigEndian.PutUint64(req, uint64(items))
	st, err := c.RequestStream(Payload{Data: req}, 256, sub)
	if err != nil {
		t.Fatal(err)
	}
	sub.setStream(st)

	// Request-responses from 8 goroutines, each answer checked against its request.
	var rrErrs, rrBad atomic.Int64
	var wg sync.WaitGroup
	per := calls / 8
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			body := make([]byte, itemSize+16)
			for i := 0; i < per; i++ {
				if rrPause > 0 {
					time.Sleep(rrPause)
				}
				want := fmt.Sprintf("%d/%d", g, i)
				copy(body, want)
				p := Payload{Data: body[:len(want)]}
				if mtu > 0 {
					p.Data = body // large enough to be fragmented
				}
				m, _, err := c.RequestResponse(context.Background(), p)
				if err != nil {
					rrErrs.Add(1)
					t.Errorf("request-response %s: %v", want, err)
					return
				}
				if string(m.Data[:len(want)]) != want || len(m.Data) != len(p.Data) {
					rrBad.Add(1)
				}
				m.Release()
			}
		}(g)
	}
	wg.Wait()
	select {
	case <-sub.done:
	case <-time.After(120 * time.Second):
		t.Fatalf("stream stalled at item %d of %d (cuts %d)", sub.next.Load(), items, proxy.Cuts())
	}
	if err := sub.err; err != nil {
		t.Fatalf("stream failed after %d items: %v", sub.next.Load(), err)
	}
	if got := sub.next.Load(); got != int64(items) || sub.bad.Load() != 0 {
		t.Fatalf("stream: %d items in order of %d, %d out of order or duplicated", got, items, sub.bad.Load())
	}
	if rrErrs.Load() != 0 || rrBad.Load() != 0 {
		t.Fatalf("request-response: %d errors, %d wrong answers", rrErrs.Load(), rrBad.Load())
	}
	t.Logf("%d items, %d request-responses, %d cuts", items, per*8, proxy.Cuts())
	if c.Err() != nil {
		t.Fatalf("session ended: %v", c.Err())
	}
	if proxy.Cuts() < 2 {
		t.Fatalf("only %d cuts happened during the run: it proves nothing", proxy.Cuts())
	}
}

// seqSubscriber checks that items carry 0, 1, 2, ... and grants credit in windows.
type seqSubscriber struct {
	mu   sync.Mutex
	st   *Stream
	owed uint32 // credit earned before the stream was known
	next atomic.Int64
	bad  atomic.Int64
	seen int
	err  error
	done chan struct{}
}

func (s *seqSubscriber) OnNext(p Payload, complete bool) {
	if len(p.Data) < 8 || int64(binary.BigEndian.Uint64(p.Data)) != s.next.Load() {
		s.bad.Add(1)
	} else {
		s.next.Add(1)
	}
	if s.seen++; s.seen%128 == 0 {
		s.mu.Lock()
		if s.st != nil {
			s.st.Request(128)
		} else {
			s.owed += 128
		}
		s.mu.Unlock()
	}
	if complete {
		close(s.done)
	}
}

func (s *seqSubscriber) setStream(st *Stream) {
	s.mu.Lock()
	s.st = st
	if s.owed > 0 {
		st.Request(s.owed)
	}
	s.mu.Unlock()
}

func (s *seqSubscriber) OnComplete() { close(s.done) }

func (s *seqSubscriber) OnError(err error) {
	s.err = err
	close(s.done)
}
