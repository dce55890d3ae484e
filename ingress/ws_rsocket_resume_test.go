package ingress

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/transport"
)

// A resuming client on an rsocket route with rsocket.resume: its WebSocket is cut every 20 ms; the gateway
// keeps the session and its upstream stream; the client reconnects, sends RESUME and receives every tick
// exactly once and in order, and its request-responses all get their answers.
func TestWSRSocketClientResume(t *testing.T) {
	d := startDemo(t)
	g := rsGateway(t, map[string]string{"b": d.Addr().String()}, Options{}, func(r *mapping.Route) {
		r.RSocket = &mapping.RSocketConfig{Resume: &mapping.RSocketResume{}}
	})
	var (
		mu  sync.Mutex
		cur transport.Conn
	)
	dial := func(ctx context.Context) (transport.Conn, error) {
		tc, err := transport.DialWebSocket(ctx, "ws://"+g.addr+"/rsocket", nil, nil)
		if err == nil {
			mu.Lock()
			cur = tc
			mu.Unlock()
		}
		return tc, err
	}
	tc, err := dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c, err := rsocket.Connect(context.Background(), tc, rsocket.Options{DataMIME: "application/json",
		KeepaliveInterval: 50 * time.Millisecond, Resume: rsocket.ResumeOptions{Enabled: true, Dial: dial}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if m, _, err := c.RequestResponse(context.Background(), rsocket.Payload{Metadata: routeMD("users.1")}); err != nil {
		t.Fatal(err)
	} else {
		m.Release()
	}

	var cuts atomic.Int64
	stop := make(chan struct{})
	go func() {
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				mu.Lock()
				if cur != nil {
					_ = cur.Close()
					cur = nil
					cuts.Add(1)
				}
				mu.Unlock()
			}
		}
	}()
	defer close(stop)

	const n = 20000
	var (
		next, bad atomic.Int64
		smu       sync.Mutex
		st        *rsocket.Stream
		owed      uint32
	)
	done := make(chan error, 1)
	sub := &funcSubscriber{
		next: func(p rsocket.Payload, complete bool) {
			if string(p.Data) == fmt.Sprintf(`{"tick":%d}`, next.Load()) {
				next.Add(1)
			} else {
				bad.Add(1)
			}
			if next.Load()%32 == 0 {
				smu.Lock()
				if st != nil {
					st.Request(32)
				} else {
					owed += 32
				}
				smu.Unlock()
			}
			if complete {
				done <- nil
			}
		},
		complete: func() { done <- nil },
		err:      func(err error) { done <- err },
	}
	s, err := c.RequestStream(rsocket.Payload{Metadata: routeMD(fmt.Sprintf("ticks.%d", n))}, 64, sub)
	if err != nil {
		t.Fatal(err)
	}
	smu.Lock()
	st = s
	if owed > 0 {
		st.Request(owed)
	}
	smu.Unlock()
	for i := 0; i < 200; i++ {
		m, _, err := c.RequestResponse(context.Background(), rsocket.Payload{Metadata: routeMD(fmt.Sprintf("users.%d", i))})
		if err != nil {
			t.Fatalf("request-response %d: %v", i, err)
		}
		if want := fmt.Sprintf(`{"id":"%d"}`, i); string(m.Data) != want {
			t.Fatalf("request-response %d answered %q", i, m.Data)
		}
		m.Release()
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("stream failed after %d ticks (%d cuts): %v", next.Load(), cuts.Load(), err)
		}
	case <-time.After(testTimeout):
		t.Fatalf("stream stalled at %d ticks (%d cuts)", next.Load(), cuts.Load())
	}
	if next.Load() != n || bad.Load() != 0 {
		t.Fatalf("%d ticks in order of %d, %d out of order or repeated", next.Load(), n, bad.Load())
	}
	if cuts.Load() < 2 {
		t.Fatalf("only %d cuts", cuts.Load())
	}
	t.Logf("%d ticks, 200 request-responses, %d cuts", n, cuts.Load())
}

type funcSubscriber struct {
	next     func(rsocket.Payload, bool)
	complete func()
	err      func(error)
}

func (f *funcSubscriber) OnNext(p rsocket.Payload, c bool) { f.next(p, c) }
func (f *funcSubscriber) OnComplete()                      { f.complete() }
func (f *funcSubscriber) OnError(err error)                { f.err(err) }
