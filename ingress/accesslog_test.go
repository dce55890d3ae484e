package ingress

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket"
)

// The access log names the backend connection (upstream address and slot, as /backends shows them) and
// the RSocket stream id of the request on it, the same id the backend sees.
func TestAccessLogUpstreamAndStreamID(t *testing.T) {
	ids := make(chan uint32, 16) // stream ids as the backend sees them
	b := startBackend(t, func() rsocket.Handler {
		return &rsocket.HandlerFuncs{
			FireAndForgetFunc: func(rsocket.Payload) {},
			RequestResponseFunc: func(req rsocket.Payload, s *rsocket.Stream) {
				ids <- s.ID()
				_ = s.Respond(rsocket.Payload{Data: []byte(`{}`)})
			},
			RequestStreamFunc: func(req rsocket.Payload, n uint32, s *rsocket.Stream) {
				ids <- s.ID()
				go func() {
					_ = s.Send(context.Background(), rsocket.Payload{Data: []byte(`{"i":0}`)})
					_ = s.Complete()
				}()
			},
		}
	})
	core, logs := observer.New(zapcore.InfoLevel)
	cfg := newConfig(map[string]string{"b": b.addr}, []routeSpec{
		{name: "rr", method: "POST", path: "/rr", backend: "b", interaction: mapping.InteractionRequestResponse, tag: "rr"},
		{name: "fnf", method: "POST", path: "/fnf", backend: "b", interaction: mapping.InteractionFireAndForget, tag: "fnf"},
		{name: "stream", method: "GET", path: "/stream", backend: "b", interaction: mapping.InteractionRequestStream, tag: "stream"},
	})
	cfg.Log.AccessLog.Enabled = true
	g := startGateway(t, cfg, Options{Logger: zap.New(core)})

	backendID := func() uint32 {
		select {
		case id := <-ids:
			return id
		case <-time.After(testTimeout):
			t.Fatal("the backend saw no request")
		}
		return 0
	}
	backendSaw := map[uint32]string{} // stream id -> path, as the backend saw them
	for _, path := range []string{"/rr", "/rr", "/stream"} {
		method := "POST"
		if path == "/stream" {
			method = "GET"
		}
		if r := g.do(method, path, "x"); r.status != 200 {
			t.Fatalf("%s: %d %q", path, r.status, r.body)
		}
		backendSaw[backendID()] = path
	}
	if r := g.do("POST", "/fnf", "x"); r.status != 202 {
		t.Fatalf("fnf: %d", r.status)
	}
	g.do("GET", "/nope", "")
	testutil.Eventually(t, func() bool { return logs.FilterMessage("access").Len() == 5 }, "5 access log lines")

	seen := map[uint32]bool{}
	var rr, streams, fnf, unmatched int
	for _, e := range logs.FilterMessage("access").All() {
		f := e.ContextMap()
		for _, k := range []string{"method", "path", "route", "status", "bytes", "duration", "backend"} {
			if _, ok := f[k]; !ok {
				t.Fatalf("access log entry lacks %q: %v", k, f)
			}
		}
		if f["path"] == "/nope" {
			unmatched++
			if _, ok := f["upstream"]; ok {
				t.Fatalf("unmatched request with an upstream: %v", f)
			}
			if _, ok := f["stream_id"]; ok {
				t.Fatalf("unmatched request with a stream id: %v", f)
			}
			continue
		}
		if f["upstream"] != b.addr || f["upstream_slot"] != int64(0) || f["backend"] != "b" {
			t.Fatalf("upstream fields %v, want upstream %s slot 0", f, b.addr)
		}
		id, ok := f["stream_id"].(uint32)
		if !ok || id == 0 || id%2 == 0 {
			t.Fatalf("stream_id %v (%T): want the odd id of a client-initiated stream", f["stream_id"], f["stream_id"])
		}
		if seen[id] {
			t.Fatalf("stream id %d logged twice", id)
		}
		seen[id] = true
		switch f["path"] {
		case "/rr", "/stream":
			if backendSaw[id] != f["path"] {
				t.Fatalf("%v logged stream %d; the backend saw %v", f["path"], id, backendSaw)
			}
			if f["path"] == "/rr" {
				rr++
			} else {
				streams++
			}
		case "/fnf":
			fnf++
		}
	}
	if rr != 2 || streams != 1 || fnf != 1 || unmatched != 1 {
		t.Fatalf("logged %d rr, %d stream, %d fnf, %d unmatched", rr, streams, fnf, unmatched)
	}
}
