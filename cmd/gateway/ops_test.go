package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rsgate/rsgate/internal/demo"
	"github.com/rsgate/rsgate/internal/testutil"
)

// opsRoutes are the routes of the ops tests besides testConfig's echo: every interaction of the demo
// service.
const opsRoutes = `  - name: slow
    method: GET
    path: /api/slow/{ms}
    backend: demo
    interaction: request-response
    route: slow.{ms}
  - name: ticks
    method: GET
    path: /api/ticks/{count}
    backend: demo
    interaction: request-stream
    route: ticks.{count}
  - name: clock
    method: GET
    path: /api/clock/{ms}
    backend: demo
    interaction: request-stream
    route: clock.{ms}
    stream: {format: sse}
  - name: log
    method: POST
    path: /api/log
    backend: demo
    interaction: fire-and-forget
    route: log
  - name: chat
    path: /ws/chat
    backend: demo
    interaction: request-channel
    route: chat
`

// startOpsGateway runs the process wiring with testConfig and opsRoutes against a demo backend; it is shut down at the
// end of the test unless the test drained it.
func startOpsGateway(t *testing.T) (g *gateway, path, demoAddr, base, admin string) {
	t.Helper()
	d, err := demo.Serve("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	demoAddr = d.Addr().String()
	g, path = startFromYAML(t, fmt.Sprintf(testConfig, demoAddr, opsRoutes))
	base = "http://" + g.listenAddr()
	admin = "http://" + g.admin.ln.Addr().String()
	waitReady(t, admin)
	return g, path, demoAddr, base, admin
}

// sseReader reads an SSE stream of the demo's clock items and records the ticks in order; anything else
// (an error event, a gap, the end of the stream) is recorded as a failure.
type sseReader struct {
	mu     sync.Mutex
	ticks  []int
	ids    []int
	failed string
	resp   *http.Response
	ended  chan struct{}
}

func openClock(t *testing.T, base string, ms int) *sseReader {
	t.Helper()
	req, err := http.NewRequest("GET", base+"/api/clock/"+strconv.Itoa(ms), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := (&http.Client{}).Do(req) // no client timeout: the stream is endless; closed by the test
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("clock stream: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	r := &sseReader{resp: resp, ended: make(chan struct{})}
	t.Cleanup(func() { resp.Body.Close(); <-r.ended })
	go r.run()
	return r
}

func (r *sseReader) fail(format string, args ...any) {
	r.mu.Lock()
	if r.failed == "" {
		r.failed = fmt.Sprintf(format, args...)
	}
	r.mu.Unlock()
}

func (r *sseReader) run() {
	defer close(r.ended)
	sc := bufio.NewScanner(r.resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "" || strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "id: "):
			// "id: <stream session>-<item sequence>" (SSE resumption, README "Streams")
			session, seq, ok := strings.Cut(line[4:], "-")
			id, err := strconv.Atoi(seq)
			if !ok || session == "" || err != nil {
				r.fail("bad id line %q", line)
				return
			}
			r.mu.Lock()
			r.ids = append(r.ids, id)
			r.mu.Unlock()
		case strings.HasPrefix(line, "data: "):
			var item struct {
				Tick *int `json:"tick"`
			}
			if err := json.Unmarshal([]byte(line[6:]), &item); err != nil || item.Tick == nil {
				r.fail("bad item %q", line)
				return
			}
			r.mu.Lock()
			if n := len(r.ticks); n > 0 && *item.Tick != r.ticks[n-1]+1 {
				r.failed = fmt.Sprintf("gap: tick %d after %d", *item.Tick, r.ticks[n-1])
			}
			r.ticks = append(r.ticks, *item.Tick)
			r.mu.Unlock()
		default:
			r.fail("unexpected line %q (an error event?)", line)
			return
		}
	}
	r.fail("stream ended: %v", sc.Err())
}

// count returns the ticks received so far and the failure, if any.
func (r *sseReader) count() (int, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ticks), r.failed
}

func (r *sseReader) waitTicks(t *testing.T, n int) {
	t.Helper()
	testutil.Eventually(t, func() bool {
		got, failed := r.count()
		if failed != "" {
			t.Fatalf("clock stream: %s", failed)
		}
		return got >= n
	}, fmt.Sprintf("clock stream: %d ticks", n))
}

func dialChat(t *testing.T, base string) *websocket.Conn {
	t.Helper()
	ws, resp, err := (&websocket.Dialer{HandshakeTimeout: 5 * time.Second}).Dial("ws"+strings.TrimPrefix(base, "http")+"/ws/chat", nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("chat: %v (status %d)", err, status)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

// chatRoundTrip sends message i on the chat channel and expects its echo.
func chatRoundTrip(ws *websocket.Conn, i int) error {
	msg := `{"n":` + strconv.Itoa(i) + `}`
	_ = ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		return fmt.Errorf("send %d: %w", i, err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, got, err := ws.ReadMessage()
	if err != nil {
		return fmt.Errorf("echo %d: %w", i, err)
	}
	if string(got) != msg {
		return fmt.Errorf("echo %d: got %q, want %q", i, got, msg)
	}
	return nil
}

// A reload that adds a route leaves a running SSE stream and a running WebSocket channel alone: the
// stream's ticks and ids go on without a gap or an error event, the chat echoes every message sent
// before, during and after the reload, and the new route answers.
func TestReloadKeepsStreamAndChannel(t *testing.T) {
	g, path, demoAddr, base, admin := startOpsGateway(t)
	t.Cleanup(func() { _ = g.shutdown() })
	clock := openClock(t, base, 10)
	clock.waitTicks(t, 5)
	ws := dialChat(t, base)
	next := 0
	for ; next < 5; next++ {
		if err := chatRoundTrip(ws, next); err != nil {
			t.Fatal(err)
		}
	}
	if code, _ := get(t, "GET", base+"/api/users/7", ""); code != 404 {
		t.Fatalf("route before the reload: %d, want 404", code)
	}

	if err := os.WriteFile(path, []byte(fmt.Sprintf(testConfig, demoAddr, opsRoutes+extraRoute)), 0o644); err != nil {
		t.Fatal(err)
	}
	ticksAtReload, _ := clock.count()
	reloaded := make(chan int, 1)
	go func() {
		resp, err := http.Post(admin+"/reload", "", nil)
		if err != nil {
			reloaded <- -1
			return
		}
		resp.Body.Close()
		reloaded <- resp.StatusCode
	}()
	// Chat while the reload runs, and until it is done.
	var code int
	for waiting := true; waiting; next++ {
		select {
		case code = <-reloaded:
			waiting = false
		default:
		}
		if err := chatRoundTrip(ws, next); err != nil {
			t.Fatalf("chat during the reload: %v", err)
		}
	}
	if code != 200 {
		t.Fatalf("reload: %d", code)
	}
	if code, body := get(t, "GET", base+"/api/users/7", ""); code != 200 || body != `{"id":"7"}` {
		t.Fatalf("new route: %d %q", code, body)
	}
	for end := next + 5; next < end; next++ {
		if err := chatRoundTrip(ws, next); err != nil {
			t.Fatalf("chat after the reload: %v", err)
		}
	}
	clock.waitTicks(t, ticksAtReload+20)

	clock.mu.Lock()
	ticks, ids := clock.ticks, clock.ids
	failed := clock.failed
	clock.mu.Unlock()
	if failed != "" {
		t.Fatalf("clock stream: %s", failed)
	}
	if len(ids) < len(ticks) {
		t.Fatalf("%d ids for %d items", len(ids), len(ticks))
	}
	for i := 1; i < len(ticks); i++ {
		if ticks[i] != ticks[i-1]+1 || ids[i] != ids[i-1]+1 {
			t.Fatalf("item %d: tick %d id %d after tick %d id %d", i, ticks[i], ids[i], ticks[i-1], ids[i-1])
		}
	}
	// The channel is still open: one more round trip, and no close frame came.
	if err := chatRoundTrip(ws, next); err != nil {
		t.Fatalf("chat at the end: %v", err)
	}
}

// SIGTERM while requests are in flight: every one of them is answered 200, and the listener refuses new
// connections as soon as the drain starts.
func TestSIGTERMDrainsInFlight(t *testing.T) {
	g, _, _, base, _ := startOpsGateway(t)
	const n = 16
	type answer struct {
		code int
		body string
		err  error
	}
	answers := make(chan answer, n)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxConnsPerHost: n, MaxIdleConnsPerHost: n}}
	for i := 0; i < n; i++ {
		go func() {
			resp, err := client.Get(base + "/api/slow/1500")
			if err != nil {
				answers <- answer{err: err}
				return
			}
			defer resp.Body.Close()
			var b strings.Builder
			_, err = bufio.NewReader(resp.Body).WriteTo(&b)
			answers <- answer{code: resp.StatusCode, body: b.String(), err: err}
		}()
	}
	testutil.EventuallyWithin(t, 5*time.Second, func() bool { return g.ingress.InFlight() >= n },
		fmt.Sprintf("%d requests in flight", n))

	sig := make(chan os.Signal, 1)
	sig <- syscall.SIGTERM
	done := make(chan int, 1)
	go func() { done <- g.wait(sig) }()

	// New connections are refused while the requests are still running.
	addr := g.listenAddr()
	testutil.EventuallyWithin(t, time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return true
		}
		c.Close()
		return false
	}, "the listener to refuse new connections during the drain")
	if len(answers) == n || g.ingress.InFlight() == 0 {
		t.Fatal("the requests finished before the drain could be observed; make them slower")
	}

	for i := 0; i < n; i++ {
		select {
		case a := <-answers:
			if a.err != nil || a.code != 200 {
				t.Fatalf("request %d: %d %q %v", i, a.code, a.body, a.err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d requests answered", i, n)
		}
	}
	waitExit(t, done)
}

// /metrics parses with the Prometheus text parser (github.com/prometheus/common/expfmt, the format's
// reference implementation), and the families the README lists are there with sane values.
func TestMetricsParseWithPrometheusParser(t *testing.T) {
	g, _, _, base, admin := startOpsGateway(t)
	t.Cleanup(func() { _ = g.shutdown() })
	for i := 0; i < 2; i++ {
		if code, body := get(t, "POST", base+"/api/echo", `{"a":1}`); code != 200 || body != `{"a":1}` {
			t.Fatalf("echo: %d %q", code, body)
		}
	}
	if code, _ := get(t, "GET", base+"/nope", ""); code != 404 {
		t.Fatalf("unmatched: %d", code)
	}
	if code, _ := get(t, "POST", base+"/api/log", "x"); code != 202 {
		t.Fatalf("log: %d", code)
	}
	if code, body := get(t, "GET", base+"/api/ticks/3", ""); code != 200 || strings.Count(body, "\n") != 3 {
		t.Fatalf("ticks: %d %q", code, body)
	}
	// Open while scraping: one stream and one WebSocket session in flight.
	clock := openClock(t, base, 10)
	clock.waitTicks(t, 1)
	ws := dialChat(t, base)
	if err := chatRoundTrip(ws, 0); err != nil {
		t.Fatal(err)
	}

	// The finished requests have given their pool slots back (a stream's slot is released by its writer).
	testutil.EventuallyWithin(t, 5*time.Second, func() bool { return g.pools.Get("demo").InFlight() == 2 },
		"backend in flight to be 2")
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("Content-Type %q", ct)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("the Prometheus text parser rejects /metrics: %v", err)
	}

	// value returns the value of the series of family name whose labels include want (k=v pairs).
	value := func(name string, want ...string) (float64, bool) {
		t.Helper()
		mf := families[name]
		if mf == nil {
			t.Fatalf("no family %s", name)
		}
	series:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(want); i += 2 {
				if labels[want[i]] != want[i+1] {
					continue series
				}
			}
			return metricValue(m), true
		}
		return 0, false
	}
	expect := func(name string, ok func(float64) bool, labels ...string) {
		t.Helper()
		v, found := value(name, labels...)
		if !found {
			t.Errorf("%s%v: no such series", name, labels)
		} else if !ok(v) {
			t.Errorf("%s%v = %v", name, labels, v)
		}
	}
	eq := func(want float64) func(float64) bool { return func(v float64) bool { return v == want } }
	positive := func(v float64) bool { return v > 0 }

	expect("rsgate_http_requests_total", eq(2), "route", "echo", "status", "2xx")
	expect("rsgate_http_requests_total", eq(0), "route", "echo", "status", "5xx")
	expect("rsgate_http_requests_total", eq(1), "route", "_unmatched", "status", "4xx")
	expect("rsgate_http_requests_total", eq(1), "route", "log", "status", "2xx")
	expect("rsgate_http_requests_total", eq(1), "route", "ticks", "status", "2xx")
	expect("rsgate_http_inflight_requests", eq(0), "route", "echo")
	expect("rsgate_http_inflight_requests", eq(1), "route", "clock")
	expect("rsgate_stream_items_total", eq(3), "route", "ticks")
	expect("rsgate_stream_items_total", positive, "route", "clock")
	expect("rsgate_websocket_sessions", eq(1), "route", "chat")
	expect("rsgate_backend_connections", eq(2), "backend", "demo")
	expect("rsgate_backend_inflight", eq(2), "backend", "demo") // the clock stream and the chat channel
	expect("rsgate_backend_ewma_latency_seconds", positive, "backend", "demo")
	expect("rsgate_backend_reconnects_total", eq(0), "backend", "demo")
	expect("go_goroutines", positive)

	// The latency histogram is a typed HISTOGRAM family (the gateway exposes # TYPE lines): count 2 for
	// echo, a positive sum, buckets cumulative and never above the count.
	hist := families["rsgate_http_request_duration_seconds"]
	if hist == nil || hist.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("rsgate_http_request_duration_seconds: want a histogram family, got %v", hist.GetType())
	}
	var echo *dto.Histogram
	for _, m := range hist.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "route" && l.GetValue() == "echo" {
				echo = m.GetHistogram()
			}
		}
	}
	if echo == nil {
		t.Fatal("no echo series in the latency histogram")
	}
	if echo.GetSampleCount() != 2 || echo.GetSampleSum() <= 0 {
		t.Fatalf("echo latency: count %d sum %v, want 2 and > 0", echo.GetSampleCount(), echo.GetSampleSum())
	}
	b := echo.GetBucket()
	if len(b) < 2 {
		t.Fatalf("echo latency buckets %v: want several", b)
	}
	for i := range b {
		if b[i].GetCumulativeCount() > echo.GetSampleCount() || (i > 0 && (b[i].GetCumulativeCount() < b[i-1].GetCumulativeCount() || b[i].GetUpperBound() <= b[i-1].GetUpperBound())) {
			t.Fatalf("echo latency buckets not cumulative: %v", b)
		}
	}
}

// metricValue is the value of a counter, gauge or untyped sample.
func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	}
	return m.GetUntyped().GetValue()
}
