package rsocket

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// FireAndForget with NoWait copies the payload: the caller may reuse its buffer at once, and every frame arrives,
// in order, with the bytes it had at the call.
func TestFireAndForgetAsync(t *testing.T) {
	forBoth(t, func(t *testing.T, tcp bool) {
		leakCheck(t)
		const n = 500
		got := make(chan string, n)
		h := &HandlerFuncs{FireAndForgetFunc: func(req Payload) { got <- payloadString(req) }}
		client, _ := pair(t, pairCfg{tcp: tcp, handler: h})
		buf := make([]byte, 0, 16)
		for i := 0; i < n; i++ {
			buf = fmt.Appendf(buf[:0], "msg-%d", i)
			if err := fnfErr(client.FireAndForget(context.Background(), Payload{Metadata: []byte("m"), Data: buf}, FireAndForgetOptions{NoWait: true})); err != nil {
				t.Fatal(err)
			}
			copy(buf, "XXXXXXXX") // reusing the buffer must not change what is sent
		}
		for i := 0; i < n; i++ {
			select {
			case s := <-got:
				if want := fmt.Sprintf("m|msg-%d", i); s != want {
					t.Fatalf("frame %d: got %q, want %q", i, s, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("only %d of %d fire-and-forget frames arrived", i, n)
			}
		}
		if client.InFlight() != 0 {
			t.Fatal("fire-and-forget left a stream")
		}
	})
}

func TestFireAndForgetAsyncErrors(t *testing.T) {
	leakCheck(t)
	client, _ := pair(t, pairCfg{handler: &HandlerFuncs{}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := fnfErr(client.FireAndForget(ctx, Payload{Data: []byte("x")}, FireAndForgetOptions{NoWait: true})); err != context.Canceled {
		t.Fatalf("canceled ctx: %v", err)
	}
	client.Close()
	<-client.Done()
	if err := fnfErr(client.FireAndForget(context.Background(), Payload{Data: []byte("x")}, FireAndForgetOptions{NoWait: true})); err == nil {
		t.Fatal("send on a closed connection succeeded")
	}
}

// Fire-and-forget throughput from one goroutine: FireAndForget waits for each write, with NoWait it
// does not (frames of many calls share one writev).
func BenchmarkFireAndForget(b *testing.B) {
	for _, mode := range []string{"wait", "async"} {
		b.Run(mode, func(b *testing.B) {
			var got atomic.Int64
			client, _ := pair(b, pairCfg{tcp: true, handler: &HandlerFuncs{FireAndForgetFunc: func(Payload) { got.Add(1) }}})
			p := Payload{Metadata: benchMD, Data: benchData}
			ctx := context.Background()
			b.ReportAllocs()
			b.SetBytes(int64(len(benchData)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				var err error
				if mode == "wait" {
					err = fnfErr(client.FireAndForget(ctx, p, FireAndForgetOptions{}))
				} else {
					err = fnfErr(client.FireAndForget(ctx, p, FireAndForgetOptions{NoWait: true}))
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			for got.Load() < int64(b.N) {
				time.Sleep(time.Millisecond)
			}
		})
	}
}
