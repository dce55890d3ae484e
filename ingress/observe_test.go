package ingress

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket"
)

func TestMetricsAndAccessLog(t *testing.T) {
	d := startDemo(t)
	core, logs := observer.New(zapcore.InfoLevel)
	cfg := newConfig(map[string]string{"demo": d.Addr().String()}, demoRoutes())
	cfg.Log.AccessLog.Enabled = true
	g := startGateway(t, cfg, Options{Logger: zap.New(core)})

	g.do("POST", "/api/echo", "hi")
	g.do("POST", "/api/echo", "hi")
	g.do("GET", "/api/fail", "")
	g.do("GET", "/nope", "")
	g.do("GET", "/api/ticks/3", "")
	testutil.Eventually(t, func() bool { return g.srv.InFlight() == 0 }, "the stream to be counted")

	var buf bytes.Buffer
	g.set.WritePrometheus(&buf)
	out := buf.String()
	for _, want := range []string{
		`rsgate_http_requests_total{route="echo",status="2xx"} 2`,
		`rsgate_http_requests_total{route="fail",status="5xx"} 1`,
		`rsgate_http_requests_total{route="_unmatched",status="4xx"} 1`,
		`rsgate_http_requests_total{route="ticks",status="2xx"} 1`,
		`rsgate_stream_items_total{route="ticks"} 3`,
		`rsgate_http_inflight_requests{route="echo"} 0`,
		`rsgate_http_request_duration_seconds_count{route="echo"} 2`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", out)
	}

	testutil.Eventually(t, func() bool { return logs.FilterMessage("access").Len() == 5 }, "5 access log lines")
	var sawStream, saw404 bool
	for _, e := range logs.FilterMessage("access").All() {
		f := e.ContextMap()
		switch f["path"] {
		case "/api/ticks/3":
			sawStream = f["route"] == "ticks" && f["status"] == int64(200) && f["bytes"] == int64(3*11) && f["backend"] == "demo"
		case "/nope":
			saw404 = f["status"] == int64(404) && f["route"] == ""
		}
		if _, ok := f["duration"].(time.Duration); !ok || f["method"] == nil {
			t.Fatalf("access log entry %v", f)
		}
	}
	if !sawStream || !saw404 {
		t.Fatalf("access log entries: %v", logs.FilterMessage("access").All())
	}
}

func TestAccessLogOff(t *testing.T) {
	d := startDemo(t)
	core, logs := observer.New(zapcore.InfoLevel)
	g := startGateway(t, newConfig(map[string]string{"demo": d.Addr().String()}, demoRoutes()), Options{Logger: zap.New(core)})
	g.do("POST", "/api/echo", "hi")
	if n := logs.FilterMessage("access").Len(); n != 0 {
		t.Fatalf("%d access log lines with access_log disabled", n)
	}
}

func TestRouteMaxBody(t *testing.T) {
	d := startDemo(t)
	routes := demoRoutes()
	routes[0].mutate = func(r *mapping.Route) { r.MaxBody = 10 }
	g := startGateway(t, newConfig(map[string]string{"demo": d.Addr().String()}, routes), Options{})
	if r := g.do("POST", "/api/echo", "0123456789"); r.status != 200 {
		t.Fatalf("10 bytes: %d", r.status)
	}
	jsonError(t, g.do("POST", "/api/echo", "0123456789x"), 413, CodeBodyTooLarge)
}

func TestStreamTimeoutBeforeFirstItemIs504(t *testing.T) {
	sp, _, g := startSpecial(t, Options{StreamErrorWait: 5 * time.Second})
	jsonError(t, g.do("GET", "/idle-timeout", ""), 504, CodeTimeout)
	select {
	case <-sp.canceled:
	case <-time.After(testTimeout):
		t.Fatal("backend stream not canceled")
	}
}

func TestStreamerCreditOverflow(t *testing.T) {
	sr := &streamer{itemQueue: itemQueue{granted: 2, notify: make(chan struct{}, 1), first: make(chan struct{})}}
	for i := 0; i < 3; i++ {
		sr.OnNext(rsocket.Payload{Data: []byte("x")}, false)
	}
	if !sr.ended || sr.endErr != errBackendOverflow || sr.backDone || len(sr.queue) != 3 {
		t.Fatalf("after overflow: ended %v err %v backDone %v queued %d", sr.ended, sr.endErr, sr.backDone, len(sr.queue))
	}
	sr.OnNext(rsocket.Payload{Data: []byte("late")}, false)
	if len(sr.queue) != 3 {
		t.Fatal("item queued after the stream ended")
	}
}

// BenchmarkRouteMetrics: what every request does to its route's shared series (in-flight gauge, status
// counter, duration histogram), from parallel goroutines (-cpu 1,2,...): whether one busy route's
// metrics stop scaling with cores (bench/README.md, the 16-core projection).
func BenchmarkRouteMetrics(b *testing.B) {
	m := newRouteMetrics(metrics.NewSet(), "echo")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		rq := acquireRequest() // from the per-P pool, as in handle
		defer releaseRequest(rq)
		for pb.Next() {
			m.begin(rq)
			m.end(rq, 200, 1200*time.Microsecond)
		}
	})
}

// TestInflightGaugeAcrossReload: the route in-flight gauge sums its shards, and a route rebuilt by a
// reload (newRouteMetrics again, same set and name) counts on the same shards the registered gauge reads:
// a request begun before the reload and ended after it leaves the gauge at 0.
func TestInflightGaugeAcrossReload(t *testing.T) {
	set := metrics.NewSet()
	read := func() string {
		var b bytes.Buffer
		set.WritePrometheus(&b)
		for _, l := range strings.Split(b.String(), "\n") {
			if strings.HasPrefix(l, `rsgate_http_inflight_requests{route="r"}`) {
				return l
			}
		}
		return ""
	}
	old := newRouteMetrics(set, "r")
	a, b := acquireRequest(), acquireRequest()
	defer releaseRequest(a)
	defer releaseRequest(b)
	old.begin(a)
	old.begin(b)
	if got := read(); got != `rsgate_http_inflight_requests{route="r"} 2` {
		t.Fatalf("two in flight: %q", got)
	}
	reloaded := newRouteMetrics(set, "r")
	if reloaded.inflight != old.inflight {
		t.Fatal("the reloaded route counts on other shards than the gauge reads")
	}
	reloaded.end(a, 200, time.Millisecond)
	old.end(b, 200, time.Millisecond)
	if got := read(); got != `rsgate_http_inflight_requests{route="r"} 0` {
		t.Fatalf("all ended: %q", got)
	}
}
