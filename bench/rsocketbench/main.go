// Command rsocketbench compares rsgate's RSocket implementation with rsocket-go v0.8.12, side by side in
// one run, each as client and server of itself over one TCP loopback connection:
//
//   - request-response, 1 KiB data + composite routing metadata, echoed by a responder that routes on the
//     tag, with 64 and 256 requests in flight: ops/s, latency p50/p99, allocations per request on the
//     client and on the server;
//   - request-stream of 1 KiB items with unbounded credit: items/s, allocations per item on both sides.
//
// Server, client and driver are separate processes (this binary re-executes itself with -role), so each
// side's runtime.MemStats delta covers only its own work, bracketed around the measured phase.
//
//	go run ./bench/rsocketbench [-duration 3s] [-warmup 1s] [-items 200000] [-impl ours,rsgo]
package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/extension"
	"github.com/rsgate/rsgate/rsocket/frame"
	"github.com/rsgate/rsgate/rsocket/transport"

	rsgo "github.com/rsocket/rsocket-go"
	gotransport "github.com/rsocket/rsocket-go/core/transport"
	goext "github.com/rsocket/rsocket-go/extension"
	"github.com/rsocket/rsocket-go/payload"
	"github.com/rsocket/rsocket-go/rx"
	"github.com/rsocket/rsocket-go/rx/flux"
	"github.com/rsocket/rsocket-go/rx/mono"
)

const itemSize = 1 << 10

var (
	role     = flag.String("role", "driver", "driver | server | client (internal)")
	impl     = flag.String("impl", "ours,rsgo", "implementations to compare (driver), or the one to run")
	addr     = flag.String("addr", "", "server address (client)")
	workload = flag.String("workload", "", "rr | stream (client)")
	inflight = flag.Int("inflight", 64, "requests in flight (client rr)")
	duration = flag.Duration("duration", 3*time.Second, "measured phase of each request-response run")
	warmup   = flag.Duration("warmup", time.Second, "warm-up before each measured phase")
	items    = flag.Int("items", 200000, "items in the request-stream run")
	runs     = flag.Int("runs", 3, "runs per implementation and workload; the table shows the median run by throughput")
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("rsocketbench " + *role + ": ")
	switch *role {
	case "server":
		serve()
	case "client":
		runClient()
	case "driver":
		drive()
	default:
		log.Fatalf("unknown role %q", *role)
	}
}

// ---- wire content shared by both implementations ----

var (
	ourRouteMD = extension.AppendCompositeEntry(nil, extension.MimeRouting, extension.AppendRouting(nil, "echo"))
	data1K     = func() []byte {
		b := make([]byte, itemSize)
		for i := range b {
			b[i] = byte(i)
		}
		return b
	}()
)

func goRouteMD(tag string) []byte {
	rt, _ := goext.EncodeRouting(tag)
	md, _ := goext.NewCompositeMetadataBuilder().PushWellKnown(goext.MessageRouting, rt).Build()
	return md
}

// ---- server role ----

// serve runs one implementation's server on 127.0.0.1:0, prints "READY <addr>", and answers each "stats"
// line on stdin with "STATS <mallocs> <bytes>" until stdin closes.
func serve() {
	var a string
	var stop func()
	switch *impl {
	case "ours":
		l, err := transport.ListenTCP("127.0.0.1:0", nil)
		if err != nil {
			log.Fatal(err)
		}
		srv := &rsocket.Server{Acceptor: func(*rsocket.SetupInfo, *rsocket.Conn) (rsocket.Handler, error) {
			return ourHandler{}, nil
		}}
		go srv.Serve(l)
		a, stop = l.Addr().String(), func() { srv.Close() }
	case "rsgo":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		started := make(chan struct{})
		go func() {
			err := rsgo.Receive().
				OnStart(func() { close(started) }).
				Acceptor(func(context.Context, payload.SetupPayload, rsgo.CloseableRSocket) (rsgo.RSocket, error) {
					return goResponder(), nil
				}).
				Transport(func(context.Context) (gotransport.ServerTransport, error) {
					return gotransport.NewTCPServerTransport(func(context.Context) (net.Listener, error) { return ln, nil }), nil
				}).
				Serve(ctx)
			if err != nil {
				log.Printf("serve: %v", err)
			}
		}()
		<-started
		a, stop = ln.Addr().String(), cancel
	default:
		log.Fatalf("unknown impl %q", *impl)
	}
	fmt.Printf("READY %s\n", a)
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if sc.Text() == "stats" {
			m := memStats()
			fmt.Printf("STATS %d %d\n", m.Mallocs, m.TotalAlloc)
		}
	}
	stop()
}

func memStats() runtime.MemStats {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

// ourHandler: echo (request-response, answers the request data; Respond copies it) and stream.{n}
// (n items of 1 KiB; Send copies, so one buffer serves every item). Routing on the first tag.
type ourHandler struct{}

func ourRoute(md []byte) string {
	v, ok := extension.FindComposite(md, extension.MimeRouting)
	if !ok {
		return ""
	}
	tag, err := extension.FirstRoutingTag(v)
	if err != nil {
		return ""
	}
	return string(tag) // only compared or parsed: the compiler does not allocate for that
}

func (ourHandler) FireAndForget(rsocket.Payload) {}
func (ourHandler) MetadataPush([]byte)           {}
func (ourHandler) RequestResponse(req rsocket.Payload, s *rsocket.Stream) {
	if ourRoute(req.Metadata) != "echo" {
		_ = s.Error(frame.CodeApplicationError, "no route")
		return
	}
	_ = s.Respond(rsocket.Payload{Data: req.Data})
}
func (ourHandler) RequestStream(req rsocket.Payload, n uint32, s *rsocket.Stream) {
	r := ourRoute(req.Metadata)
	count, err := strconv.Atoi(strings.TrimPrefix(r, "stream."))
	if !strings.HasPrefix(r, "stream.") || err != nil {
		_ = s.Error(frame.CodeApplicationError, "no route")
		return
	}
	go func() {
		for i := 0; i < count; i++ {
			if err := s.Send(context.Background(), rsocket.Payload{Data: data1K}); err != nil {
				return
			}
		}
		_ = s.Complete()
	}()
}
func (ourHandler) RequestChannel(req rsocket.Payload, n uint32, complete bool, s *rsocket.Stream) rsocket.Subscriber {
	_ = s.Error(frame.CodeApplicationError, "no route")
	return nil
}

// goResponder is the same service written as rsocket-go users write it (mono.Just of the request).
func goResponder() rsgo.RSocket {
	route := func(p payload.Payload) string {
		md, ok := p.Metadata()
		if !ok {
			return ""
		}
		sc := goext.NewCompositeMetadataBytes(md).Scanner()
		for sc.Scan() {
			mime, v, err := sc.Metadata()
			if err != nil {
				return ""
			}
			if mime == goext.MessageRouting.String() {
				tags, err := goext.ParseRoutingTags(v)
				if err != nil || len(tags) == 0 {
					return ""
				}
				return tags[0]
			}
		}
		return ""
	}
	return rsgo.NewAbstractSocket(
		rsgo.RequestResponse(func(p payload.Payload) mono.Mono {
			if route(p) != "echo" {
				return mono.Error(fmt.Errorf("no route"))
			}
			return mono.Just(p)
		}),
		rsgo.RequestStream(func(p payload.Payload) flux.Flux {
			r := route(p)
			count, err := strconv.Atoi(strings.TrimPrefix(r, "stream."))
			if !strings.HasPrefix(r, "stream.") || err != nil {
				return flux.Error(fmt.Errorf("no route"))
			}
			return flux.Create(func(ctx context.Context, s flux.Sink) {
				for i := 0; i < count; i++ {
					s.Next(payload.New(data1K, nil))
				}
				s.Complete()
			})
		}),
	)
}

// ---- client role ----

// result is what a client process reports (one JSON line on stdout).
type result struct {
	Ops           int64   `json:"ops"`
	Seconds       float64 `json:"seconds"`
	P50, P99      float64 // microseconds
	ClientMallocs uint64  `json:"client_mallocs"`
	ClientBytes   uint64  `json:"client_bytes"`
	Errors        int64   `json:"errors"`
}

type requester interface {
	rr() error
	stream(n int, done func(items int64, err error))
	close()
}

// mark tells the driver a phase boundary and waits for its go-ahead (it samples the server's MemStats).
func mark(in *bufio.Scanner, what string) {
	fmt.Printf("MARK %s\n", what)
	if !in.Scan() {
		log.Fatal("driver went away")
	}
}

func runClient() {
	in := bufio.NewScanner(os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rq requester
	switch *impl {
	case "ours":
		tc, err := transport.DialTCP(ctx, *addr, nil)
		if err != nil {
			log.Fatal(err)
		}
		c, err := rsocket.Connect(ctx, tc, rsocket.Options{MetadataMIME: extension.MimeComposite, DataMIME: "application/octet-stream"})
		if err != nil {
			log.Fatal(err)
		}
		rq = &ourRequester{c: c}
	case "rsgo":
		c, err := rsgo.Connect().
			MetadataMimeType(extension.MimeComposite).
			DataMimeType("application/octet-stream").
			Transport(rsgo.TCPClient().SetAddr(*addr).Build()).
			Start(context.Background()) // rsocket-go ties the connection to this context
		if err != nil {
			log.Fatal(err)
		}
		rq = &goRequester{c: c, md: goRouteMD("echo")}
	}
	defer rq.close()

	var r result
	switch *workload {
	case "rr":
		r = benchRR(in, rq)
	case "stream":
		r = benchStream(in, rq)
	default:
		log.Fatalf("unknown workload %q", *workload)
	}
	_ = json.NewEncoder(os.Stdout).Encode(r)
}

func benchRR(in *bufio.Scanner, rq requester) result {
	var (
		stop   atomic.Bool
		record atomic.Bool
		ops    atomic.Int64
		errs   atomic.Int64
		next   atomic.Int64
	)
	lat := make([]int64, 8<<20) // preallocated: recording allocates nothing
	var wg sync.WaitGroup
	for range *inflight {
		wg.Go(func() {
			for !stop.Load() {
				t0 := time.Now()
				if err := rq.rr(); err != nil {
					errs.Add(1)
					continue
				}
				if record.Load() {
					ops.Add(1)
					if i := next.Add(1) - 1; i < int64(len(lat)) {
						lat[i] = int64(time.Since(t0))
					}
				}
			}
		})
	}
	time.Sleep(*warmup)
	runtime.GC()
	mark(in, "start")
	before := memStats()
	t0 := time.Now()
	record.Store(true)
	time.Sleep(*duration)
	record.Store(false)
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(t0)
	after := memStats()
	mark(in, "end")
	n := min(next.Load(), int64(len(lat)))
	l := lat[:n]
	slices.Sort(l)
	pct := func(p float64) float64 {
		if len(l) == 0 {
			return 0
		}
		return float64(l[int(p*float64(len(l)-1))]) / 1e3
	}
	// The workers' last requests after record stopped are in the MemStats window too: count them in.
	total := ops.Load()
	return result{
		Ops: total, Seconds: elapsed.Seconds(), P50: pct(0.50), P99: pct(0.99),
		ClientMallocs: after.Mallocs - before.Mallocs, ClientBytes: after.TotalAlloc - before.TotalAlloc,
		Errors: errs.Load(),
	}
}

func benchStream(in *bufio.Scanner, rq requester) result {
	// warm up with a short stream
	wait := func(n int) (int64, error) {
		done := make(chan struct{})
		var got int64
		var err error
		rq.stream(n, func(items int64, e error) { got, err = items, e; close(done) })
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
			return got, fmt.Errorf("stream of %d items did not finish in 2 minutes", n)
		}
		return got, err
	}
	if _, err := wait(*items / 10); err != nil {
		log.Fatal(err)
	}
	runtime.GC()
	mark(in, "start")
	before := memStats()
	t0 := time.Now()
	got, err := wait(*items)
	elapsed := time.Since(t0)
	after := memStats()
	mark(in, "end")
	r := result{Ops: got, Seconds: elapsed.Seconds(), ClientMallocs: after.Mallocs - before.Mallocs, ClientBytes: after.TotalAlloc - before.TotalAlloc}
	if err != nil || got != int64(*items) {
		log.Printf("stream: got %d of %d items: %v", got, *items, err)
		r.Errors = 1
	}
	return r
}

type ourRequester struct{ c *rsocket.Conn }

func (o *ourRequester) close() { o.c.Close() }
func (o *ourRequester) rr() error {
	m, _, err := o.c.RequestResponse(context.Background(), rsocket.Payload{Metadata: ourRouteMD, Data: data1K})
	if err != nil {
		return err
	}
	if len(m.Data) != itemSize {
		err = fmt.Errorf("answer of %d B", len(m.Data))
	}
	m.Release()
	return err
}

type countSub struct {
	n    atomic.Int64
	once sync.Once
	done func(int64, error)
}

func (s *countSub) OnNext(p rsocket.Payload, complete bool) {
	s.n.Add(1)
	if complete {
		s.OnComplete()
	}
}
func (s *countSub) OnComplete()       { s.once.Do(func() { s.done(s.n.Load(), nil) }) }
func (s *countSub) OnError(err error) { s.once.Do(func() { s.done(s.n.Load(), err) }) }

func (o *ourRequester) stream(n int, done func(int64, error)) {
	md := extension.AppendCompositeEntry(nil, extension.MimeRouting, extension.AppendRouting(nil, fmt.Sprintf("stream.%d", n)))
	if _, err := o.c.RequestStream(rsocket.Payload{Metadata: md}, frame.MaxRequestN, &countSub{done: done}); err != nil {
		done(0, err)
	}
}

type goRequester struct {
	c  rsgo.Client
	md []byte
}

func (g *goRequester) close() { g.c.Close() }
func (g *goRequester) rr() error {
	p, release, err := g.c.RequestResponse(payload.New(data1K, g.md)).BlockUnsafe(context.Background())
	if err != nil {
		return err
	}
	if len(p.Data()) != itemSize {
		err = fmt.Errorf("answer of %d B", len(p.Data()))
	}
	release()
	return err
}

func (g *goRequester) stream(n int, done func(int64, error)) {
	var count int64
	var once sync.Once
	g.c.RequestStream(payload.New(nil, goRouteMD(fmt.Sprintf("stream.%d", n)))).Subscribe(context.Background(),
		rx.OnNext(func(payload.Payload) error { count++; return nil }),
		rx.OnComplete(func() { once.Do(func() { done(count, nil) }) }),
		rx.OnError(func(err error) { once.Do(func() { done(count, err) }) }),
	)
}

// ---- driver role ----

type proc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
}

func start(args ...string) *proc {
	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		log.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		log.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	return &proc{cmd: cmd, stdin: stdin, out: sc}
}

func (p *proc) line(prefix string) string {
	for p.out.Scan() {
		if t := p.out.Text(); strings.HasPrefix(t, prefix) {
			return t
		}
	}
	log.Fatalf("process %v ended before printing %q", p.cmd.Args, prefix)
	return ""
}

func (p *proc) stop() {
	p.stdin.Close()
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
	}
}

type serverStats struct{ mallocs, bytes uint64 }

func (p *proc) stats() serverStats {
	fmt.Fprintln(p.stdin, "stats")
	var s serverStats
	fmt.Sscanf(p.line("STATS "), "STATS %d %d", &s.mallocs, &s.bytes)
	return s
}

type measurement struct {
	result
	ServerMallocs, ServerBytes uint64
}

func measure(implName, addr, wl string, inflight int) measurement {
	c := start("-role", "client", "-impl", implName, "-addr", addr, "-workload", wl,
		"-inflight", strconv.Itoa(inflight), "-duration", duration.String(), "-warmup", warmup.String(),
		"-items", strconv.Itoa(*items))
	defer c.stop()
	return measureWith(c, wl)
}

var servers = map[string]*proc{}

func measureWith(c *proc, wl string) measurement {
	srv := servers[currentImpl]
	c.line("MARK start")
	s0 := srv.stats()
	fmt.Fprintln(c.stdin, "go")
	c.line("MARK end")
	s1 := srv.stats()
	fmt.Fprintln(c.stdin, "go")
	var m measurement
	if err := json.Unmarshal([]byte(c.line("{")), &m.result); err != nil {
		log.Fatal(err)
	}
	m.ServerMallocs, m.ServerBytes = s1.mallocs-s0.mallocs, s1.bytes-s0.bytes
	return m
}

var currentImpl string

func drive() {
	impls := strings.Split(*impl, ",")
	type row struct {
		name string
		get  func(m measurement) float64
		unit string
	}
	type wl struct {
		name     string
		workload string
		inflight int
	}
	workloads := []wl{{"request-response 1 KiB, 64 in flight", "rr", 64}, {"request-response 1 KiB, 256 in flight", "rr", 256}, {fmt.Sprintf("request-stream %d x 1 KiB", *items), "stream", 1}}
	results := map[string]map[string]measurement{}
	for _, im := range impls {
		currentImpl = im
		srv := start("-role", "server", "-impl", im)
		a := strings.TrimPrefix(srv.line("READY "), "READY ")
		servers[im] = srv
		results[im] = map[string]measurement{}
		for _, w := range workloads {
			var ms []measurement
			for r := range max(1, *runs) {
				log.Printf("%s: %s (run %d of %d)", im, w.name, r+1, max(1, *runs))
				ms = append(ms, measure(im, a, w.workload, w.inflight))
			}
			slices.SortFunc(ms, func(a, b measurement) int {
				return cmp.Compare(float64(a.Ops)/a.Seconds, float64(b.Ops)/b.Seconds)
			})
			results[im][w.name] = ms[len(ms)/2]
		}
		srv.stop()
	}

	fmt.Printf("\nrsgate rsocket vs rsocket-go v0.8.12 — one TCP loopback connection, %d CPUs, %s, warm-up %v, measured %v per request-response run, median of %d runs\n\n",
		runtime.NumCPU(), runtime.Version(), *warmup, *duration, max(1, *runs))
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := "workload\tmetric\t"
	for _, im := range impls {
		header += im + "\t"
	}
	if len(impls) == 2 {
		header += impls[0] + "/" + impls[1] + "\t"
	}
	fmt.Fprintln(tw, header)
	for _, w := range workloads {
		per := func(v uint64, m measurement) float64 {
			if m.Ops == 0 {
				return 0
			}
			return float64(v) / float64(m.Ops)
		}
		rows := []row{
			{"ops/s", func(m measurement) float64 { return float64(m.Ops) / m.Seconds }, "%.0f"},
		}
		if w.workload == "stream" {
			rows[0].name = "items/s"
		} else {
			rows = append(rows,
				row{"p50 µs", func(m measurement) float64 { return m.P50 }, "%.0f"},
				row{"p99 µs", func(m measurement) float64 { return m.P99 }, "%.0f"})
		}
		unit := "req"
		if w.workload == "stream" {
			unit = "item"
		}
		rows = append(rows,
			row{"client allocs/" + unit, func(m measurement) float64 { return per(m.ClientMallocs, m) }, "%.2f"},
			row{"server allocs/" + unit, func(m measurement) float64 { return per(m.ServerMallocs, m) }, "%.2f"},
			row{"client B/" + unit, func(m measurement) float64 { return per(m.ClientBytes, m) }, "%.0f"},
			row{"server B/" + unit, func(m measurement) float64 { return per(m.ServerBytes, m) }, "%.0f"},
			row{"errors", func(m measurement) float64 { return float64(m.Errors) }, "%.0f"},
		)
		for i, r := range rows {
			name := ""
			if i == 0 {
				name = w.name
			}
			line := name + "\t" + r.name + "\t"
			var vals []float64
			for _, im := range impls {
				v := r.get(results[im][w.name])
				vals = append(vals, v)
				line += fmt.Sprintf(r.unit, v) + "\t"
			}
			if len(vals) == 2 {
				if vals[1] != 0 {
					line += fmt.Sprintf("%.2f", vals[0]/vals[1]) + "\t"
				} else {
					line += "-\t"
				}
			}
			fmt.Fprintln(tw, line)
		}
	}
	tw.Flush()
}
