//go:build !race

package rsocket

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/rsgate/rsgate/rsocket/frame"
	"github.com/rsgate/rsgate/rsocket/transport"
)

// One request-response round trip over loopback TCP, measured in the whole process, so it counts the
// client side (RequestResponse, the answer's Message and buffer: pooled) and the server side (one
// *Stream per request for the handler). Target: <= 2 per request on each side.
func TestRequestResponseAllocs(t *testing.T) {
	client, _ := pair(t, pairCfg{tcp: true, handler: echoHandler()})
	p := Payload{Metadata: benchMD, Data: benchData}
	ctx := context.Background()
	n := rrAllocsPerRun(t, ctx, client, p)
	t.Logf("allocations per round trip (client + server): %.2f", n)
	if n > 2 {
		t.Fatalf("%.2f allocations per request-response round trip (client + server), want <= 2", n)
	}
}

// rrAllocsPerRun warms client up with 100 request-responses of p, then returns the allocations per
// request-response (answer released) over 2000 more.
func rrAllocsPerRun(t *testing.T, ctx context.Context, client *Conn, p Payload) float64 {
	rr := func() {
		m, _, err := client.RequestResponse(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		m.Release()
	}
	for i := 0; i < 100; i++ {
		rr()
	}
	return testing.AllocsPerRun(2000, rr)
}

// The requester side alone: the peer is a raw loop over loopback TCP that answers every
// REQUEST_RESPONSE from a reused buffer without allocating, so every counted allocation is the client's.
func TestRequestResponseClientAllocs(t *testing.T) {
	ln, err := transport.ListenTCP("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		tc, err := ln.Accept()
		if err != nil {
			return
		}
		defer tc.Close()
		var out []byte
		for {
			b, err := tc.ReadFrame()
			if err != nil {
				return
			}
			f, err := frame.Parse(b)
			if err != nil || f.Type() != frame.TypeRequestResponse {
				continue
			}
			out = frame.AppendPayload(out[:0], f.StreamID(), frame.FlagNext|frame.FlagComplete, f.Metadata(), f.Data())
			if tc.WriteFrame(out, nil, nil) != nil || tc.Flush() != nil {
				return
			}
		}
	}()
	tc, err := transport.DialTCP(context.Background(), ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	client, err := Connect(context.Background(), tc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	p := Payload{Metadata: benchMD, Data: benchData}
	ctx, cancel := context.WithCancel(context.Background()) // a ctx with a Done channel: the select path
	defer cancel()
	n := rrAllocsPerRun(t, ctx, client, p)
	t.Logf("client allocations per request-response: %.2f", n)
	if n > 0.1 {
		t.Fatalf("client side allocates %.2f per request-response, want 0", n)
	}
}

func TestFireAndForgetAllocs(t *testing.T) {
	got := 0
	client, _ := pair(t, pairCfg{tcp: true, handler: &HandlerFuncs{FireAndForgetFunc: func(Payload) { got++ }}})
	p := Payload{Metadata: benchMD, Data: benchData}
	ctx := context.Background()
	n := testing.AllocsPerRun(2000, func() {
		if err := fnfErr(client.FireAndForget(ctx, p, FireAndForgetOptions{})); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("fire-and-forget allocations (both sides): %.2f", n)
	if n > 0.1 {
		t.Fatalf("fire-and-forget allocates %.2f per request", n)
	}
}

// A request-stream of 200 items over loopback TCP: the per-stream setup allocates (Stream objects,
// channels), the items must not.
func TestRequestStreamAllocs(t *testing.T) {
	const items = 200
	h := &HandlerFuncs{RequestStreamFunc: func(req Payload, n uint32, s *Stream) {
		go func() {
			p := Payload{Data: benchData}
			for i := 0; i < items; i++ {
				if s.Send(context.Background(), p) != nil {
					return
				}
			}
			_ = s.Complete()
		}()
	}}
	client, _ := pair(t, pairCfg{tcp: true, handler: h})
	run := func() {
		sub := &countSub{done: make(chan struct{})}
		st, err := client.RequestStream(Payload{Data: []byte("go")}, frame.MaxRequestN, sub)
		if err != nil {
			t.Fatal(err)
		}
		<-sub.done
		<-st.Done()
	}
	for i := 0; i < 5; i++ {
		run()
	}
	n := testing.AllocsPerRun(50, run)
	t.Logf("allocations per %d-item stream (both sides): %.1f", items, n)
	if n > 20 {
		t.Fatalf("%.1f allocations per %d-item stream: items allocate", n, items)
	}
}

func TestFireAndForgetAsyncAllocs(t *testing.T) {
	var got atomic.Int64
	client, _ := pair(t, pairCfg{tcp: true, handler: &HandlerFuncs{FireAndForgetFunc: func(Payload) { got.Add(1) }}})
	p := Payload{Metadata: benchMD, Data: benchData}
	ctx := context.Background()
	sent := int64(0)
	n := testing.AllocsPerRun(2000, func() {
		if err := fnfErr(client.FireAndForget(ctx, p, FireAndForgetOptions{NoWait: true})); err != nil {
			t.Fatal(err)
		}
		sent++
		for sent-got.Load() > 256 { // keep the queue short, as a real sender under back-pressure would
			runtime.Gosched()
		}
	})
	t.Logf("async fire-and-forget allocations (both sides): %.2f", n)
	if n > 0.1 {
		t.Fatalf("async fire-and-forget allocates %.2f per request", n)
	}
}
