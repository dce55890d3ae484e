package rsocket

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/rsgate/rsgate/rsocket/transport"
)

// resumePair is pair with resumption on both sides (or off), so that the resume buffer's cost shows.
func resumePair(b testing.TB, on, tcp bool, h Handler) *Conn {
	pc := pairCfg{tcp: tcp, handler: h}
	if on {
		pc.client.Resume = ResumeOptions{Enabled: true, Dial: func(context.Context) (transport.Conn, error) {
			return nil, errors.New("no redial in benchmarks")
		}}
		pc.server.Resume = ResumeOptions{Enabled: true}
		pc.server.Sessions = NewSessions(pc.server.Resume)
	}
	client, _ := pair(b, pc)
	return client
}

// BenchmarkResume compares request-response and stream throughput with resumption off and on (every
// resumable frame is copied into the resume buffer and trimmed by KEEPALIVE positions).
//
//	go test ./rsocket -run '^$' -bench 'BenchmarkResume$' -benchtime 2s -count 5
func BenchmarkResume(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name+"/rr/tcp/inflight=64", func(b *testing.B) {
			client := resumePair(b, on, true, echoHandler())
			p := Payload{Metadata: benchMD, Data: benchData}
			b.SetParallelism((64 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.SetBytes(int64(len(benchData)))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					m, _, err := client.RequestResponse(context.Background(), p)
					if err != nil {
						b.Error(err)
						return
					}
					m.Release()
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
		b.Run(name+"/stream/tcp", func(b *testing.B) {
			n := b.N
			h := &HandlerFuncs{RequestStreamFunc: func(req Payload, _ uint32, s *Stream) {
				go func() {
					p := Payload{Data: benchData}
					for i := 0; i < n; i++ {
						if s.Send(context.Background(), p) != nil {
							return
						}
					}
					_ = s.Complete()
				}()
			}}
			client := resumePair(b, on, true, h)
			b.SetBytes(int64(len(benchData)))
			b.ReportAllocs()
			b.ResetTimer()
			sub := &countSub{done: make(chan struct{})}
			if _, err := client.RequestStream(Payload{Data: []byte("go")}, 1<<31-1, sub); err != nil {
				b.Fatal(err)
			}
			<-sub.done
			b.StopTimer()
			if got := sub.n.Load(); got != int64(n) {
				b.Fatalf("got %d items, want %d", got, n)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "items/s")
		})
	}
}

// BenchmarkIdleSessionMemory reports the heap held per idle session pair (client and server side over
// an in-memory pipe, after one request-response), with resumption off and on.
//
//	go test ./rsocket -run '^$' -bench 'BenchmarkIdleSessionMemory' -benchtime 1x
func BenchmarkIdleSessionMemory(b *testing.B) {
	const n = 500
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				var ms0, ms1 runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&ms0)
				conns := make([]*Conn, 0, n)
				for j := 0; j < n; j++ {
					c := resumePair(b, on, false, echoHandler())
					m, _, err := c.RequestResponse(context.Background(), Payload{Data: benchData})
					if err != nil {
						b.Fatal(err)
					}
					m.Release()
					conns = append(conns, c)
				}
				time.Sleep(50 * time.Millisecond) // writers exit
				runtime.GC()
				runtime.ReadMemStats(&ms1)
				b.ReportMetric(float64(ms1.HeapInuse-ms0.HeapInuse)/n, "heap-B/session-pair")
				b.ReportMetric(float64(ms1.NumGC-ms0.NumGC), "gcs")
				runtime.KeepAlive(conns)
			}
		})
	}
}
