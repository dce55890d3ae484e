package pool

import (
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil/rstest"
)

func benchPool(b *testing.B, maxInflight int, balancer string) *Pool {
	bk := testBackend("bench", "10.0.0.1:1", "10.0.0.2:1")
	bk.Connections = 4
	bk.MaxInflight = maxInflight
	bk.Balancer = balancer
	p, err := New(bk, Options{Dialer: pipeDialer(b, rstest.EchoHandler(), nil)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close() })
	p.Start()
	deadline := time.Now().Add(5 * time.Second)
	for readyConns(p) != 8 {
		if time.Now().After(deadline) {
			b.Fatal("pool not ready")
		}
		time.Sleep(time.Millisecond)
	}
	return p
}

// BenchmarkPick measures Pick+Done (8 connections) from parallel goroutines under each balancer (the
// max_inflight limit adds one per-pool atomic counter).
func BenchmarkPick(b *testing.B) {
	for _, bc := range []struct {
		name     string
		balancer string
	}{{"weighted", "weighted"}, {"p2c", "p2c"}} {
		b.Run(bc.name, func(b *testing.B) {
			p := benchPool(b, 1<<20, bc.balancer)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				start := time.Now()
				for pb.Next() {
					m, err := p.Pick()
					if err != nil {
						b.Fatal(err)
					}
					m.Done(start, nil)
				}
			})
		})
	}
}

func BenchmarkPickSerial(b *testing.B) {
	p := benchPool(b, 1<<20, "weighted")
	start := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m, err := p.Pick()
		if err != nil {
			b.Fatal(err)
		}
		m.Done(start, nil)
	}
}
