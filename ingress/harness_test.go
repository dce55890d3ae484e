package ingress

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/rsgate/rsgate/internal/demo"
	"github.com/rsgate/rsgate/internal/httpmeta"
	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/pool"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/extension"
	"github.com/rsgate/rsgate/rsocket/frame"
	"github.com/rsgate/rsgate/rsocket/transport"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 10 * time.Second

// special is a backend with the behaviours the demo does not have: every error code, a request that never
// answers, metadata echo, endless and idle streams. It counts what it sees.
type special struct {
	cancels      atomic.Int64 // request-response or streams that saw CANCEL
	canceled     chan string  // tag of each canceled request/stream
	emitted      atomic.Int64 // items sent by "endless"
	itemSize     atomic.Int64 // size of "endless" items (default 16)
	lastMetadata atomic.Pointer[[]byte]
}

func newSpecial() *special {
	return &special{canceled: make(chan string, 64)}
}

func firstTag(md []byte) string {
	v, ok := extension.FindComposite(md, extension.MimeRouting)
	if !ok {
		return ""
	}
	tag, err := extension.FirstRoutingTag(v)
	if err != nil {
		return ""
	}
	return string(tag)
}

// expectCanceled waits for the backend to see CANCEL, which must be for tag; failure is the message when
// none comes within testTimeout.
func (b *special) expectCanceled(t *testing.T, tag, failure string) {
	t.Helper()
	select {
	case got := <-b.canceled:
		if got != tag {
			t.Fatalf("canceled %q", got)
		}
	case <-time.After(testTimeout):
		t.Fatal(failure)
	}
}

func (b *special) noteCancel(tag string) {
	b.cancels.Add(1)
	select {
	case b.canceled <- tag:
	default:
	}
}

func (b *special) handler() rsocket.Handler {
	return &rsocket.HandlerFuncs{
		FireAndForgetFunc: func(req rsocket.Payload) {},
		RequestResponseFunc: func(req rsocket.Payload, s *rsocket.Stream) {
			md := append([]byte(nil), req.Metadata...)
			b.lastMetadata.Store(&md)
			tag := firstTag(req.Metadata)
			switch {
			case strings.HasPrefix(tag, "err."):
				code, _ := strconv.ParseUint(tag[4:], 0, 32)
				_ = s.Error(frame.ErrorCode(code), "failed with "+tag[4:])
			case tag == "hang":
				go func() {
					<-s.Done()
					b.noteCancel(tag)
				}()
			case tag == "meta":
				_ = s.Respond(rsocket.Payload{Metadata: metaResponse(), Data: describeMetadata(req.Metadata)})
			case tag == "empty":
				_ = s.Complete()
			case strings.HasPrefix(tag, "sleep."):
				ms, _ := strconv.Atoi(tag[len("sleep."):])
				data := append([]byte(nil), req.Data...)
				go func() {
					select {
					case <-time.After(time.Duration(ms) * time.Millisecond):
						_ = s.Respond(rsocket.Payload{Data: data})
					case <-s.Done():
						b.noteCancel(tag)
					}
				}()
			default:
				_ = s.Respond(rsocket.Payload{Data: append([]byte(nil), req.Data...)})
			}
		},
		RequestStreamFunc: func(req rsocket.Payload, n uint32, s *rsocket.Stream) {
			tag := firstTag(req.Metadata)
			switch {
			case tag == "endless":
				size := int(b.itemSize.Load())
				if size <= 0 {
					size = 16
				}
				go func() {
					item := []byte(strings.Repeat("x", size))
					for {
						if err := s.Send(context.Background(), rsocket.Payload{Data: item}); err != nil {
							b.noteCancel(tag)
							return
						}
						b.emitted.Add(1)
					}
				}()
			case tag == "idle":
				go func() {
					<-s.Done()
					b.noteCancel(tag)
				}()
			case strings.HasPrefix(tag, "fail-after."):
				k, _ := strconv.Atoi(tag[len("fail-after."):])
				go func() {
					for i := 0; i < k; i++ {
						if s.Send(context.Background(), rsocket.Payload{Data: []byte(`{"n":` + strconv.Itoa(i) + `}`)}) != nil {
							return
						}
					}
					_ = s.Error(frame.CodeApplicationError, "broke after "+strconv.Itoa(k))
				}()
			case tag == "multiline":
				go func() {
					_ = s.Send(context.Background(), rsocket.Payload{Data: []byte("a\nb\r\nc")})
					_ = s.Complete()
				}()
			case strings.HasPrefix(tag, "err."):
				code, _ := strconv.ParseUint(tag[4:], 0, 32)
				_ = s.Error(frame.ErrorCode(code), "stream failed with "+tag[4:])
			default:
				_ = s.Error(frame.CodeInvalid, "no stream "+tag)
			}
		},
	}
}

// metaResponse is a response composite with the gateway entry: 201, X-Backend: special, text/plain.
func metaResponse() []byte {
	v, err := httpmeta.AppendResponse(nil, 201,
		httpmeta.Header{Name: []byte("X-Backend"), Value: []byte("special")},
		httpmeta.Header{Name: []byte("Content-Type"), Value: []byte("text/plain")},
		httpmeta.Header{Name: []byte("Connection"), Value: []byte("close")}) // hop-by-hop: dropped
	if err != nil {
		panic(err)
	}
	return extension.AppendCompositeEntry(nil, httpmeta.MIME, v)
}

// describeMetadata answers what the backend received, as JSON.
func describeMetadata(md []byte) []byte {
	out := map[string]any{}
	it := extension.NewCompositeIter(md)
	for it.Next() {
		e := it.Entry()
		switch {
		case e.Is(extension.MimeRouting):
			tag, _ := extension.FirstRoutingTag(e.Value)
			out["route"] = string(tag)
		case e.Is(extension.MimeAuth):
			a, err := extension.ParseAuth(e.Value)
			if err == nil {
				tok, _ := a.Bearer()
				out["bearer"] = string(tok)
			}
		case e.Is(httpmeta.MIME):
			v, err := httpmeta.ParseRequest(e.Value)
			if err != nil {
				out["http_error"] = err.Error()
				continue
			}
			out["method"], out["target"] = string(v.Method), string(v.Target)
			var hs []string
			h := v.Headers
			for h.Next() {
				hs = append(hs, string(h.Name())+": "+string(h.Value()))
			}
			out["headers"] = hs
		}
	}
	if it.Err() != nil {
		out["composite_error"] = it.Err().Error()
	}
	b, _ := json.Marshal(out)
	return b
}

// rsocketBackend is an RSocket server on 127.0.0.1 that can be stopped and started again on its port.
type rsocketBackend struct {
	t       *testing.T
	addr    string
	handler func() rsocket.Handler
	mu      sync.Mutex
	srv     *rsocket.Server
	conns   []*rsocket.Conn
}

func startBackend(t *testing.T, h func() rsocket.Handler) *rsocketBackend {
	t.Helper()
	b := &rsocketBackend{t: t, addr: "127.0.0.1:0", handler: h}
	b.start()
	t.Cleanup(b.stop)
	return b
}

func (b *rsocketBackend) start() {
	b.t.Helper()
	var ln transport.Listener
	var err error
	deadline := time.Now().Add(testTimeout)
	for {
		ln, err = transport.ListenTCP(b.addr, nil)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // the port of a stopped backend may linger briefly
	}
	if err != nil {
		b.t.Fatalf("backend listen %s: %v", b.addr, err)
	}
	b.addr = ln.Addr().String()
	srv := &rsocket.Server{Acceptor: func(_ *rsocket.SetupInfo, c *rsocket.Conn) (rsocket.Handler, error) {
		b.mu.Lock()
		b.conns = append(b.conns, c)
		b.mu.Unlock()
		return b.handler(), nil
	}}
	b.mu.Lock()
	b.srv = srv
	b.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// stop closes the listener and every connection (the gateway sees its connections lost).
func (b *rsocketBackend) stop() {
	b.mu.Lock()
	srv, conns := b.srv, b.conns
	b.srv, b.conns = nil, nil
	b.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
	for _, c := range conns {
		_ = c.Close()
	}
}

// gateway is a running ingress with its pools.
type gateway struct {
	t      *testing.T
	srv    *Server
	pools  *pool.Group
	set    *metrics.Set
	addr   string
	base   string
	served chan error
}

// routeSpec is a compact route description for tests.
type routeSpec struct {
	name, method, path, backend, interaction, tag string
	timeout                                       time.Duration
	mutate                                        func(r *mapping.Route)
}

func newConfig(backends map[string]string, routes []routeSpec) *mapping.Config {
	cfg := mapping.NewConfig()
	cfg.Limits.MaxBody = 1 << 16
	for name, addr := range backends {
		b := mapping.NewBackend(name)
		b.Addresses = []string{addr}
		b.Connections = 1
		b.ResolveInterval = 0
		b.Reconnect.MinBackoff = mapping.Duration(10 * time.Millisecond)
		b.Reconnect.MaxBackoff = mapping.Duration(50 * time.Millisecond)
		b.DialTimeout = mapping.Duration(time.Second)
		cfg.Backends[name] = b
	}
	for _, rs := range routes {
		r := mapping.NewRoute(rs.name, rs.interaction)
		if rs.method != "" {
			r.Method = rs.method
		}
		r.Path, r.Backend, r.Route = rs.path, rs.backend, rs.tag
		if rs.timeout > 0 {
			r.Timeout = mapping.Duration(rs.timeout)
		}
		if rs.mutate != nil {
			rs.mutate(r)
		}
		if r.Interaction == mapping.InteractionRSocket { // -check requires rsocket.allow: open these on purpose
			if r.RSocket == nil {
				r.RSocket = &mapping.RSocketConfig{}
			}
			if r.RSocket.Allow == nil {
				r.RSocket.Allow = []string{"*"}
			}
		}
		cfg.Routes = append(cfg.Routes, r)
	}
	return cfg
}

func startGateway(t *testing.T, cfg *mapping.Config, opts Options) *gateway {
	t.Helper()
	return startGatewayListener(t, cfg, opts, nil)
}

// startGatewayListener is startGateway with a listener wrapper (nil: none).
func startGatewayListener(t *testing.T, cfg *mapping.Config, opts Options, wrap func(net.Listener) net.Listener) *gateway {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	table, err := mapping.Compile(cfg)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	g := &gateway{t: t, set: metrics.NewSet(), served: make(chan error, 1)}
	// As the gateway does: limits.reduce_memory (default true) decides, so that these tests run the lean
	// connection path (leanconn_unix.go) that production runs.
	opts.ReduceMemoryUsage = opts.ReduceMemoryUsage || cfg.Limits.ReduceMemory
	if opts.Metrics == nil {
		opts.Metrics = g.set
	}
	g.pools, err = pool.NewGroup(cfg, pool.Options{})
	if err != nil {
		t.Fatalf("pools: %v", err)
	}
	g.pools.Start()
	t.Cleanup(func() { _ = g.pools.Close() })
	g.srv, err = New(cfg, table, g.pools, opts)
	if err != nil {
		t.Fatalf("ingress.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.addr = ln.Addr().String()
	g.base = "http://" + g.addr
	if wrap != nil {
		ln = wrap(ln)
	}
	go func() { g.served <- g.srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = g.srv.Shutdown(ctx)
	})
	g.waitReady()
	return g
}

// startGatewayB is startGateway for benchmarks.
func startGatewayB(b *testing.B, cfg *mapping.Config, opts Options) *gateway {
	b.Helper()
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	table, err := mapping.Compile(cfg)
	if err != nil {
		b.Fatal(err)
	}
	pools, err := pool.NewGroup(cfg, pool.Options{})
	if err != nil {
		b.Fatal(err)
	}
	pools.Start()
	b.Cleanup(func() { _ = pools.Close() })
	srv, err := New(cfg, table, pools, opts)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	testutil.EventuallyWithin(b, testTimeout, pools.Ready, "pools ready")
	return &gateway{srv: srv, pools: pools, addr: ln.Addr().String()}
}

func (g *gateway) waitReady() {
	g.t.Helper()
	testutil.EventuallyWithin(g.t, testTimeout, g.pools.Ready, "pools ready")
}

var httpClient = &http.Client{Timeout: testTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}

type result struct {
	status int
	header http.Header
	body   string
}

func (g *gateway) do(method, path, body string, hdr ...string) result {
	g.t.Helper()
	req, err := http.NewRequest(method, g.base+path, strings.NewReader(body))
	if err != nil {
		g.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return result{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// jsonError decodes an error body and checks it is JSON with the given code.
func jsonError(t *testing.T, r result, status int, code string) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d (body %q)", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json (body %q)", ct, r.body)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("error body %q is not JSON: %v", r.body, err)
	}
	if code != "" && m["code"] != code {
		t.Fatalf("code %v, want %s (body %q)", m["code"], code, r.body)
	}
	if _, ok := m["error"].(string); !ok {
		t.Fatalf("no error message in %q", r.body)
	}
	return m
}

func startDemo(t *testing.T) *demo.Server {
	t.Helper()
	d, err := demo.Serve("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// startGatewayNoWait starts a gateway whose pools may never become ready.
func startGatewayNoWait(t *testing.T, cfg *mapping.Config, table *mapping.Table) *gateway {
	t.Helper()
	return startGatewayWith(t, cfg, table, pool.Options{})
}

// startGatewayWith is startGatewayNoWait with pool options.
func startGatewayWith(t *testing.T, cfg *mapping.Config, table *mapping.Table, po pool.Options) *gateway {
	t.Helper()
	g := &gateway{t: t, set: metrics.NewSet(), served: make(chan error, 1)}
	var err error
	g.pools, err = pool.NewGroup(cfg, po)
	if err != nil {
		t.Fatal(err)
	}
	g.pools.Start()
	t.Cleanup(func() { _ = g.pools.Close() })
	g.srv, err = New(cfg, table, g.pools, Options{Metrics: g.set})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.addr = ln.Addr().String()
	g.base = "http://" + g.addr
	go func() { g.served <- g.srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = g.srv.Shutdown(ctx)
	})
	return g
}
