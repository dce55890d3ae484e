package rsocket

import (
	"context"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
)

var (
	benchMD   = []byte("\xfe\x00\x00\x05\x04echo.route")
	benchData = func() []byte {
		b := make([]byte, 1024)
		for i := range b {
			b[i] = byte('a' + i%26)
		}
		return b
	}()
)

func benchRR(b *testing.B, tcp bool, inflight int) {
	client, _ := pair(b, pairCfg{tcp: tcp, handler: echoHandler()})
	p := Payload{Metadata: benchMD, Data: benchData}
	// Warm the pools.
	for i := 0; i < 1000; i++ {
		m, _, err := client.RequestResponse(context.Background(), p)
		if err != nil {
			b.Fatal(err)
		}
		m.Release()
	}
	b.SetParallelism((inflight + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.SetBytes(int64(len(benchData)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m, _, err := client.RequestResponse(ctx, p)
			if err != nil {
				b.Error(err)
				return
			}
			m.Release()
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

func BenchmarkRequestResponse(b *testing.B) {
	for _, tc := range []struct {
		name     string
		tcp      bool
		inflight int
	}{
		{"pipe/inflight=1", false, 1},
		{"pipe/inflight=64", false, 64},
		{"pipe/inflight=256", false, 256},
		{"tcp/inflight=1", true, 1},
		{"tcp/inflight=64", true, 64},
		{"tcp/inflight=256", true, 256},
	} {
		b.Run(tc.name, func(b *testing.B) { benchRR(b, tc.tcp, tc.inflight) })
	}
}

// countSub counts items and signals the end.
type countSub struct {
	n    atomic.Int64
	done chan struct{}
}

func (c *countSub) OnNext(p Payload, complete bool) {
	c.n.Add(1)
	if complete {
		close(c.done)
	}
}
func (c *countSub) OnComplete()       { close(c.done) }
func (c *countSub) OnError(err error) { close(c.done) }

func BenchmarkRequestStream(b *testing.B) {
	for _, tcp := range []bool{false, true} {
		name := "pipe"
		if tcp {
			name = "tcp"
		}
		b.Run(name, func(b *testing.B) {
			var items atomic.Int64
			h := &HandlerFuncs{RequestStreamFunc: func(req Payload, n uint32, s *Stream) {
				count := items.Load()
				go func() {
					p := Payload{Data: benchData}
					for i := int64(0); i < count; i++ {
						if err := s.Send(context.Background(), p); err != nil {
							return
						}
					}
					_ = s.Complete()
				}()
			}}
			client, _ := pair(b, pairCfg{tcp: tcp, handler: h})
			items.Store(int64(b.N))
			b.SetBytes(int64(len(benchData)))
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			sub := &countSub{done: make(chan struct{})}
			st, err := client.RequestStream(Payload{Data: []byte("go")}, 1<<31-1, sub)
			if err != nil {
				b.Fatal(err)
			}
			<-sub.done
			<-st.Done()
			b.StopTimer()
			if got := sub.n.Load(); got != int64(b.N) {
				b.Fatalf("got %d items, want %d", got, b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "items/s")
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime returns the process's user+system CPU time in ns: with other processes competing for the
// cores, CPU per operation is a steadier measure than wall time.
func cpuTime() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
