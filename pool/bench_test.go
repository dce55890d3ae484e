package pool

import (
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil/rstest"
)

func benchPool(b *testing.B, maxInflight int) *Pool {
	bk := testBackend("bench", "10.0.0.1:1", "10.0.0.2:1")
	bk.Connections = 4
	bk.MaxInflight = maxInflight
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

// BenchmarkPick measures Pick+Done (8 connections) from parallel goroutines, with and without a
// max_inflight limit (which adds one per-pool atomic counter).
func BenchmarkPick(b *testing.B) {
	for _, bc := range []struct {
		name  string
		limit int
	}{{"unlimited", 0}, {"max_inflight", 1 << 20}} {
		b.Run(bc.name, func(b *testing.B) {
			p := benchPool(b, bc.limit)
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
	p := benchPool(b, 0)
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
