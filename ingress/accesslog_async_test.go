package ingress

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rsgate/rsgate/mapping"
)

// gatedWriter blocks every Write until open is closed, then records.
type gatedWriter struct {
	open chan struct{}
	mu   sync.Mutex
	b    bytes.Buffer
}

func (w *gatedWriter) Write(p []byte) (int, error) {
	<-w.open
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// A sink that does not take anything never blocks the writers: lines beyond the bound are dropped and
// counted; what was queued is written whole and in order once the sink moves again.
func TestAsyncWriterNeverBlocks(t *testing.T) {
	out := &gatedWriter{open: make(chan struct{})}
	set := metrics.NewSet()
	dropped := set.GetOrCreateCounter("rsgate_access_log_dropped_total")
	w := NewAsyncWriter(out, 1000, dropped)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 100; i++ {
			_, _ = fmt.Fprintf(w, "line %03d %s\n", i, strings.Repeat("x", 90)) // 100 bytes
		}
	}()
	select {
	case <-done:
	case <-time.After(testTimeout):
		t.Fatal("Write blocked on a stuck sink")
	}
	if w.Dropped() == 0 || dropped.Get() != w.Dropped() {
		t.Fatalf("dropped %d, counter %d; want > 0 and equal", w.Dropped(), dropped.Get())
	}
	close(out.open)
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.b.String(), "\n"), "\n")
	if uint64(len(lines))+w.Dropped() != 100 {
		t.Fatalf("%d lines written + %d dropped != 100", len(lines), w.Dropped())
	}
	last := -1
	for _, l := range lines {
		var n int
		if _, err := fmt.Sscanf(l, "line %d", &n); err != nil || len(l) != 99 || n <= last {
			t.Fatalf("line %q broken or out of order", l)
		}
		last = n
	}
}

// log.access_log.sample thins 2xx/3xx only; 4xx and 5xx are always logged.
func TestAccessLogSampleOnlySuccess(t *testing.T) {
	d := startDemo(t)
	core, logs := observer.New(zapcore.InfoLevel)
	cfg := newConfig(map[string]string{"demo": d.Addr().String()}, []routeSpec{
		{name: "echo", method: "POST", path: "/api/echo", backend: "demo", interaction: mapping.InteractionRequestResponse, tag: "echo"},
		{name: "fail", method: "POST", path: "/api/fail", backend: "demo", interaction: mapping.InteractionRequestResponse, tag: "fail"},
	})
	cfg.Log.AccessLog.Enabled = true
	cfg.Log.AccessLog.Sample = 0
	g := startGateway(t, cfg, Options{AccessLog: zap.New(core), Logger: zap.NewNop()})
	for i := 0; i < 20; i++ {
		if r := g.do("POST", "/api/echo", "{}"); r.status != 200 {
			t.Fatalf("echo: %d", r.status)
		}
	}
	for i := 0; i < 7; i++ {
		g.do("POST", "/api/fail", "{}")
		g.do("GET", "/nope", "")
	}
	byStatus := map[int64]int{}
	for _, e := range logs.FilterMessage("access").All() {
		byStatus[e.ContextMap()["status"].(int64)]++
	}
	if byStatus[200] != 0 || byStatus[500] != 7 || byStatus[404] != 7 {
		t.Fatalf("logged by status %v; want no 200 (sample 0), 7 of 500 and 7 of 404", byStatus)
	}
}
