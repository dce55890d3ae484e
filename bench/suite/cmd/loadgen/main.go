// Command loadgen drives what wrk cannot, and prints one JSON line per run on stdout:
//
//	-mode rate     HTTP request-response at a constant rate (open loop, coordinated-omission aware: request i
//	               is due at start + i/rate and its latency is measured from that intended send time, so a
//	               stall delays every request scheduled behind it and shows up in the tail). HDR histogram
//	               (1 µs .. 60 s, 3 significant digits); the JSON holds p50..p99.99, max and a percentile curve.
//	-mode sse      Server-Sent Events: -readers streams read as fast as possible (-bps 0) or at -bps bytes/s
//	               each; items (blank-line separated events) per second.
//	-mode ws       WebSocket echo round trips (e.g. the gateway's /ws/chat request-channel): -conns sockets,
//	               one message in flight each; messages/s and latency percentiles.
//	-mode rsocket  RSocket over WebSocket (the gateway's rsocket route): request-response "echo" with
//	               -inflight requests in flight on one connection (rsgate's rsocket package as the client).
//	-mode idle     open -n idle connections (-kind http: one GET each, then idle keep-alive; -kind ws: an
//	               upgraded WebSocket), print "READY <ok> <failed>", and hold them until stdin closes.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"

	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/extension"
	"github.com/rsgate/rsgate/rsocket/transport"
)

var (
	mode     = flag.String("mode", "rate", "rate | sse | ws | rsocket | idle")
	target   = flag.String("url", "", "target URL (http://... or ws://...)")
	method   = flag.String("method", "GET", "HTTP method (rate)")
	bodyFile = flag.String("body", "", "request body file (rate, POST)")
	rate     = flag.Float64("rate", 1000, "requests per second (rate)")
	conns    = flag.Int("conns", 16, "connections (rate, ws)")
	duration = flag.Duration("duration", 5*time.Second, "measured phase")
	warmup   = flag.Duration("warmup", time.Second, "warm-up before the measured phase (same load, not recorded)")
	readers  = flag.Int("readers", 1, "SSE streams (sse)")
	bps      = flag.Int("bps", 0, "bytes per second each SSE reader reads (0 = as fast as it can)")
	size     = flag.Int("size", 64, "message bytes (ws, rsocket)")
	inflight = flag.Int("inflight", 64, "requests in flight (rsocket)")
	n        = flag.Int("n", 1000, "idle connections (idle)")
	kind     = flag.String("kind", "http", "http | ws (idle)")
	label    = flag.String("label", "", "copied into the JSON output")
	errEvery = flag.Duration("errseries", 0, "rate: also report failed requests per interval of intended send time (err_series)")
)

type result struct {
	Label     string       `json:"label,omitempty"`
	Mode      string       `json:"mode"`
	Ops       int64        `json:"ops"`
	Seconds   float64      `json:"seconds"`
	OpsPerSec float64      `json:"ops_per_s"`
	Errors    int64        `json:"errors"`
	Intended  float64      `json:"intended_rate,omitempty"`
	Bytes     int64        `json:"bytes,omitempty"`
	P50       float64      `json:"p50_us,omitempty"`
	P90       float64      `json:"p90_us,omitempty"`
	P99       float64      `json:"p99_us,omitempty"`
	P999      float64      `json:"p999_us,omitempty"`
	P9999     float64      `json:"p9999_us,omitempty"`
	Max       float64      `json:"max_us,omitempty"`
	Curve     [][2]float64 `json:"curve,omitempty"`      // [percentile, µs]
	ErrSeries [][2]float64 `json:"err_series,omitempty"` // rate with -errseries: [seconds since start, failed requests in that interval]
}

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, 60_000_000, 3) }

func fill(r *result, h *hdrhistogram.Histogram) {
	if h.TotalCount() == 0 {
		return
	}
	q := func(p float64) float64 { return float64(h.ValueAtQuantile(p)) }
	r.P50, r.P90, r.P99, r.P999, r.P9999, r.Max = q(50), q(90), q(99), q(99.9), q(99.99), float64(h.Max())
	// percentile curve on a "nines" scale: 0, 50, 75, 87.5, ... up to 99.999
	for k := 0.0; k <= 5*math.Log2(10)+0.01; k += 0.25 {
		p := 100 * (1 - math.Pow(2, -k))
		r.Curve = append(r.Curve, [2]float64{p, q(p)})
	}
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("loadgen: ")
	var r result
	switch *mode {
	case "rate":
		r = runRate()
	case "sse":
		r = runSSE()
	case "ws":
		r = runWS()
	case "rsocket":
		r = runRSocket()
	case "idle":
		runIdle()
		return
	default:
		log.Fatalf("unknown mode %q", *mode)
	}
	r.Mode, r.Label = *mode, *label
	if r.Seconds > 0 {
		r.OpsPerSec = float64(r.Ops) / r.Seconds
	}
	_ = json.NewEncoder(os.Stdout).Encode(r)
}

// ---- rate: constant-rate HTTP, latency from the intended send time ----

func runRate() result {
	u, err := url.Parse(*target)
	if err != nil {
		log.Fatal(err)
	}
	var body []byte
	if *bodyFile != "" {
		if body, err = os.ReadFile(*bodyFile); err != nil {
			log.Fatal(err)
		}
	}
	hc := &fasthttp.HostClient{Addr: u.Host, MaxConns: *conns, MaxIdleConnDuration: time.Minute, ReadTimeout: 30 * time.Second, WriteTimeout: 5 * time.Second, MaxConnWaitTimeout: 30 * time.Second}
	reqURI := u.RequestURI()
	var errBuckets []atomic.Int64
	phase := func(d time.Duration, record bool) (int64, int64, *hdrhistogram.Histogram, float64) {
		interval := time.Duration(float64(time.Second) / *rate)
		total := int64(d / interval)
		if record && *errEvery > 0 {
			errBuckets = make([]atomic.Int64, d / *errEvery + 1)
		}
		var next, errs, done atomic.Int64
		hists := make([]*hdrhistogram.Histogram, *conns)
		start := time.Now().Add(5 * time.Millisecond)
		var wg sync.WaitGroup
		for w := range *conns {
			hists[w] = newHist()
			wg.Go(func() {
				req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(req)
				defer fasthttp.ReleaseResponse(resp)
				for {
					i := next.Add(1) - 1
					if i >= total {
						return
					}
					due := start.Add(time.Duration(i) * interval)
					if wait := time.Until(due); wait > 0 {
						time.Sleep(wait)
					}
					req.Reset()
					req.SetRequestURI(reqURI)
					req.SetHost(u.Host)
					req.Header.SetMethod(*method)
					if body != nil {
						req.Header.SetContentType("application/json")
						req.SetBody(body)
					}
					err := hc.Do(req, resp)
					lat := time.Since(due)
					if err != nil || resp.StatusCode() >= 400 {
						errs.Add(1)
						if record && errBuckets != nil {
							errBuckets[min(int(due.Sub(start) / *errEvery), len(errBuckets)-1)].Add(1)
						}
					}
					done.Add(1)
					if record {
						_ = hists[w].RecordValue(max(lat.Microseconds(), 1))
					}
				}
			})
		}
		wg.Wait()
		h := newHist()
		for _, x := range hists {
			h.Merge(x)
		}
		return done.Load(), errs.Load(), h, time.Since(start).Seconds()
	}
	if *warmup > 0 {
		phase(*warmup, false)
	}
	ops, errs, h, secs := phase(*duration, true)
	r := result{Ops: ops, Errors: errs, Seconds: secs, Intended: *rate}
	fill(&r, h)
	for i := range errBuckets {
		r.ErrSeries = append(r.ErrSeries, [2]float64{(time.Duration(i) * *errEvery).Seconds(), float64(errBuckets[i].Load())})
	}
	return r
}

// ---- sse ----

func runSSE() result {
	var items, bytesRead, errs atomic.Int64
	var recording atomic.Bool
	deadline := time.Now().Add(*warmup + *duration)
	var wg sync.WaitGroup
	for range *readers {
		wg.Go(func() {
			for time.Now().Before(deadline) { // a stream that ends (all its items sent) is reopened
				err := readSSE(deadline, &recording, &items, &bytesRead)
				if err == errEnded {
					continue
				}
				if err != nil {
					log.Print(err)
					errs.Add(1)
				}
				return
			}
		})
	}
	time.Sleep(*warmup)
	recording.Store(true)
	t0 := time.Now()
	wg.Wait()
	return result{Ops: items.Load(), Bytes: bytesRead.Load(), Seconds: time.Since(t0).Seconds(), Errors: errs.Load()}
}

var errEnded = fmt.Errorf("sse: stream ended")

// readSSE reads one event stream over a raw connection (HTTP/1.1, chunked), counting "data:" lines across
// read boundaries; with -bps it reads at most that many bytes per second, so the TCP window closes and the
// gateway must hold (or not) what the backend keeps sending.
func readSSE(deadline time.Time, recording *atomic.Bool, items, bytesRead *atomic.Int64) error {
	u, err := url.Parse(*target)
	if err != nil {
		return err
	}
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		return err
	}
	defer c.Close()
	if tc, ok := c.(*net.TCPConn); ok && *bps > 0 {
		_ = tc.SetReadBuffer(4096) // a slow reader with a small window, as a phone on a bad link
	}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n", u.RequestURI(), u.Host) // close: the end of a stream is EOF
	buf := make([]byte, 32<<10)
	if *bps > 0 {
		buf = buf[:min(len(buf), max(*bps/10, 64))]
	}
	pat := []byte("data:")
	matched := 0 // how much of pat ends the previous read
	t0 := time.Now()
	var total int64
	for time.Now().Before(deadline) {
		_ = c.SetReadDeadline(deadline)
		k, err := c.Read(buf)
		for _, b := range buf[:k] {
			if b == pat[matched] {
				matched++
				if matched == len(pat) {
					matched = 0
					if recording.Load() {
						items.Add(1)
					}
				}
			} else if b == pat[0] {
				matched = 1
			} else {
				matched = 0
			}
		}
		if recording.Load() {
			bytesRead.Add(int64(k))
		}
		total += int64(k)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return nil
			}
			if err == io.EOF && total > 1000 {
				return errEnded
			}
			return err
		}
		if *bps > 0 { // pace: total bytes so far may not run ahead of bps * elapsed
			ahead := time.Duration(float64(total)/float64(*bps)*float64(time.Second)) - time.Since(t0)
			if ahead > 0 {
				time.Sleep(min(ahead, time.Until(deadline)))
			}
		}
	}
	return nil
}

// ---- ws: echo round trips ----

func runWS() result {
	msg := []byte(strings.Repeat("m", *size))
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 4096, WriteBufferSize: 4096}
	socks := make([]*websocket.Conn, *conns)
	for i := range socks {
		c, _, err := d.Dial(*target, nil)
		if err != nil {
			log.Fatalf("ws dial: %v", err)
		}
		socks[i] = c
		defer c.Close()
	}
	return closedLoop(*conns, func(i int) (ok, stop bool) {
		c := socks[i]
		if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
			return false, true
		}
		_, got, err := c.ReadMessage()
		if err != nil || len(got) != len(msg) {
			return false, true
		}
		return true, false
	})
}

// closedLoop runs op in a loop on each of workers goroutines; after the warm-up it counts the successful
// ops and records their latency for the measured duration. An op reports ok (counted) and stop (the worker
// quits, e.g. its socket broke); a failure that does not stop the worker is retried after 1 ms.
func closedLoop(workers int, op func(worker int) (ok, stop bool)) result {
	var ops, errs atomic.Int64
	var recording, stopping atomic.Bool
	hists := make([]*hdrhistogram.Histogram, workers)
	var wg sync.WaitGroup
	for i := range workers {
		hists[i] = newHist()
		wg.Go(func() {
			for !stopping.Load() {
				t0 := time.Now()
				ok, quit := op(i)
				if !ok {
					errs.Add(1)
					if quit {
						return
					}
					time.Sleep(time.Millisecond)
					continue
				}
				if recording.Load() {
					ops.Add(1)
					_ = hists[i].RecordValue(max(time.Since(t0).Microseconds(), 1))
				}
			}
		})
	}
	time.Sleep(*warmup)
	recording.Store(true)
	t0 := time.Now()
	time.Sleep(*duration)
	recording.Store(false)
	secs := time.Since(t0).Seconds()
	stopping.Store(true)
	wg.Wait()
	h := newHist()
	for _, x := range hists {
		h.Merge(x)
	}
	r := result{Ops: ops.Load(), Errors: errs.Load(), Seconds: secs}
	fill(&r, h)
	return r
}

// ---- rsocket over the gateway's WebSocket rsocket route ----

func runRSocket() result {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tc, err := transport.DialWebSocket(ctx, *target, nil, nil)
	if err != nil {
		log.Fatalf("rsocket dial: %v", err)
	}
	c, err := rsocket.Connect(ctx, tc, rsocket.Options{MetadataMIME: extension.MimeComposite, DataMIME: "application/json"})
	if err != nil {
		log.Fatalf("rsocket connect: %v", err)
	}
	defer c.Close()
	md := extension.AppendCompositeEntry(nil, extension.MimeRouting, extension.AppendRouting(nil, "echo"))
	data := []byte(`"` + strings.Repeat("x", max(*size-2, 0)) + `"`)
	return closedLoop(*inflight, func(int) (ok, stop bool) {
		m, _, err := c.RequestResponse(context.Background(), rsocket.Payload{Metadata: md, Data: data})
		if err != nil {
			return false, false
		}
		m.Release()
		return true, false
	})
}

// ---- idle connections ----

func runIdle() {
	u, err := url.Parse(*target)
	if err != nil {
		log.Fatal(err)
	}
	var mu sync.Mutex
	var keep []io.Closer
	var ok, failed atomic.Int64
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	d := websocket.Dialer{HandshakeTimeout: 20 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 1024}
	for range *n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			var c io.Closer
			var err error
			if *kind == "ws" {
				var wc *websocket.Conn
				wc, _, err = d.Dial(*target, nil)
				if wc != nil {
					c = wc.NetConn()
				}
			} else {
				c, err = idleHTTP(u)
			}
			if err != nil {
				failed.Add(1)
				return
			}
			ok.Add(1)
			mu.Lock()
			keep = append(keep, c)
			mu.Unlock()
		})
	}
	wg.Wait()
	fmt.Printf("READY %d %d\n", ok.Load(), failed.Load())
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range keep {
		_ = c.Close()
	}
}

func idleHTTP(u *url.URL) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", u.RequestURI(), u.Host)
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReaderSize(c, 512)
	var clen int
	status := ""
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			c.Close()
			return nil, err
		}
		if status == "" {
			status = line
		}
		line = strings.TrimSpace(line)
		if line == "" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "content-length") {
			fmt.Sscan(strings.TrimSpace(v), &clen)
		}
	}
	if _, err := io.CopyN(io.Discard, br, int64(clen)); err != nil || !strings.Contains(status, " 200") {
		c.Close()
		return nil, fmt.Errorf("idle http: %q %v", status, err)
	}
	_ = c.SetReadDeadline(time.Time{})
	return c, nil
}
