package ingress

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/rsgate/rsgate/mapping"
)

// legacyService is a fasthttp REST upstream on 127.0.0.1 standing in for the service being migrated.
type legacyService struct {
	addr    string
	url     string
	hits    atomic.Int64
	release chan struct{} // /sse: the second event waits for it
	srv     *fasthttp.Server
}

// bigBody is the deterministic body of /big and /chunked.
func bigBody(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%23)
	}
	return b
}

const bigSize = 8 << 20

func startLegacy(t testing.TB) *legacyService {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &legacyService{addr: ln.Addr().String(), release: make(chan struct{})}
	l.url = "http://" + l.addr
	big := bigBody(bigSize)
	l.srv = &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		l.hits.Add(1)
		path := string(ctx.Path())
		ctx.Response.Header.Set("X-Backend", "legacy")
		switch {
		case strings.HasPrefix(path, "/v1/users/"):
			id := strings.TrimPrefix(path, "/v1/users/")
			ctx.SetContentType("application/json")
			switch id {
			case "diff":
				ctx.WriteString(`{"id":"something else"}`)
			case "missing":
				ctx.SetStatusCode(fasthttp.StatusNotFound)
				ctx.WriteString(`{"error":"no such user"}`)
			default:
				ctx.WriteString(`{"id":"` + id + `"}`)
			}
		case path == "/big":
			ctx.SetBody(big)
		case path == "/chunked":
			ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
				for off := 0; off < len(big); off += 64 << 10 {
					_, _ = w.Write(big[off:min(off+64<<10, len(big))])
					_ = w.Flush()
				}
			})
		case path == "/sse":
			ctx.SetContentType("text/event-stream")
			ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
				_, _ = w.WriteString("data: one\n\n")
				_ = w.Flush()
				select {
				case <-l.release:
				case <-time.After(testTimeout):
					return
				}
				_, _ = w.WriteString("data: two\n\n")
				_ = w.Flush()
			})
		case path == "/slow":
			time.Sleep(300 * time.Millisecond)
			ctx.WriteString("slow")
		default:
			// Describe the request, with hop-by-hop response headers that must not reach the client.
			hdr := map[string]string{}
			for k, v := range ctx.Request.Header.All() {
				hdr[string(k)] = string(v)
			}
			out, _ := json.Marshal(map[string]any{
				"method": string(ctx.Method()), "uri": string(ctx.RequestURI()), "host": string(ctx.Host()),
				"body": string(ctx.PostBody()), "headers": hdr,
			})
			ctx.Response.Header.Set("Connection", "X-Secret")
			ctx.Response.Header.Set("X-Secret", "hop")
			ctx.Response.Header.Set("Keep-Alive", "timeout=5")
			ctx.Response.Header.Set("X-Visible", "end-to-end")
			ctx.SetContentType("application/json")
			ctx.SetBody(out)
		}
	}}
	go l.srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { _ = l.srv.Shutdown() })
	return l
}

// addHTTPBackend adds a backend with transport http to cfg.
func addHTTPBackend(cfg *mapping.Config, name string, urls ...string) *mapping.Backend {
	b := mapping.NewBackend(name)
	b.Transport = mapping.TransportHTTP
	b.Addresses = urls
	b.DialTimeout = mapping.Duration(time.Second)
	b.HTTP.HealthInterval = 0
	b.Reconnect.MinBackoff = mapping.Duration(time.Hour) // a dead address stays down during a test
	b.Reconnect.MaxBackoff = mapping.Duration(time.Hour)
	cfg.Backends[name] = b
	return b
}

type echoed struct {
	Method  string            `json:"method"`
	URI     string            `json:"uri"`
	Host    string            `json:"host"`
	Body    string            `json:"body"`
	Headers map[string]string `json:"headers"`
}

func decodeEcho(t *testing.T, r result) echoed {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("status %d body %q", r.status, r.body)
	}
	var e echoed
	if err := json.Unmarshal([]byte(r.body), &e); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return e
}

// rawRequest sends raw request bytes on a new connection and reads one response.
func rawRequest(t *testing.T, addr, raw string) (*http.Response, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func legacyGateway(t *testing.T, l *legacyService) *gateway { return legacyGatewayLog(t, l, false) }

// legacyGatewayLog is legacyGateway with the access log on or off.
func legacyGatewayLog(t *testing.T, l *legacyService, accessLog bool) *gateway {
	cfg := newConfig(nil, []routeSpec{
		{name: "users", path: "/api/users/{id}", backend: "legacy", interaction: mapping.InteractionHTTP,
			mutate: func(r *mapping.Route) { r.Rewrite = "/v1/users/{id}" }},
		{name: "files", path: "/files/{rest...}", backend: "legacy", interaction: mapping.InteractionHTTP,
			mutate: func(r *mapping.Route) { r.Rewrite = "/static/{rest...}" }},
		{name: "plain", path: "/legacy/{rest...}", backend: "based", interaction: mapping.InteractionHTTP},
		{name: "big", method: "GET", path: "/big", backend: "legacy", interaction: mapping.InteractionHTTP},
		{name: "chunked", method: "GET", path: "/chunked", backend: "legacy", interaction: mapping.InteractionHTTP},
		{name: "sse", method: "GET", path: "/sse", backend: "legacy", interaction: mapping.InteractionHTTP,
			mutate: func(r *mapping.Route) { r.Timeout = 0 }},
		{name: "slow", method: "GET", path: "/slow", backend: "legacy", interaction: mapping.InteractionHTTP, timeout: 100 * time.Millisecond},
		{name: "dead", path: "/dead", backend: "dead", interaction: mapping.InteractionHTTP},
	})
	addHTTPBackend(cfg, "legacy", l.url)
	addHTTPBackend(cfg, "based", l.url+"/base/")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := ln.Addr().String()
	ln.Close()
	addHTTPBackend(cfg, "dead", "http://"+deadAddr)
	cfg.Log.AccessLog.Enabled = accessLog
	return startGateway(t, cfg, Options{})
}

func TestHTTPProxyRequest(t *testing.T) {
	l := startLegacy(t)
	g := legacyGateway(t, l)

	// Path rewrite with a parameter, query string kept byte for byte.
	r := g.do("GET", "/api/users/42/?", "")
	if r.status != 404 {
		t.Errorf("/api/users/42/ matched: %d", r.status)
	}
	r = g.do("GET", "/api/users/42", "")
	if r.status != 200 || r.body != `{"id":"42"}` || r.header.Get("X-Backend") != "legacy" || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("users: %d %q %v", r.status, r.body, r.header)
	}
	e := decodeEcho(t, g.do("POST", "/files/a/b%20c.txt?x=1&y=%2Fz", "payload", "X-Forwarded-For", "10.0.0.1",
		"X-Forwarded-Proto", "https", "X-Keep", "yes"))
	if e.URI != "/static/a/b%20c.txt?x=1&y=%2Fz" || e.Method != "POST" || e.Body != "payload" {
		t.Errorf("rest rewrite: %+v", e)
	}
	if e.Host != l.addr {
		t.Errorf("upstream Host %q, want the address's host %q", e.Host, l.addr)
	}
	h := e.Headers
	if h["X-Forwarded-For"] != "10.0.0.1, 127.0.0.1" || h["X-Forwarded-Proto"] != "http" || h["X-Forwarded-Host"] != g.addr || h["X-Keep"] != "yes" {
		t.Errorf("forwarded headers: %v", h)
	}
	// No rewrite: the request path behind the address URL's path.
	e = decodeEcho(t, g.do("GET", "/legacy/x/y?q", ""))
	if e.URI != "/base/legacy/x/y?q" {
		t.Errorf("prefix: %q", e.URI)
	}
}

func TestHTTPProxyHopByHop(t *testing.T) {
	l := startLegacy(t)
	g := legacyGateway(t, l)
	resp, body := rawRequest(t, g.addr, "GET /files/hop HTTP/1.1\r\nHost: gw.example\r\n"+
		"Connection: keep-alive, X-Drop\r\nX-Drop: 1\r\nKeep-Alive: 300\r\nProxy-Authorization: Basic eA==\r\n"+
		"TE: trailers\r\nUpgrade: websocket\r\nX-Keep: kept\r\n\r\n")
	var e echoed
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("%q: %v", body, err)
	}
	for _, name := range []string{"X-Drop", "Keep-Alive", "Proxy-Authorization", "Te", "Upgrade", "Connection"} {
		if v, ok := e.Headers[name]; ok && !(name == "Connection" && v == "keep-alive") {
			t.Errorf("hop-by-hop request header %s: %q reached the upstream", name, v)
		}
	}
	if e.Headers["X-Keep"] != "kept" || e.Headers["X-Forwarded-Host"] != "gw.example" {
		t.Errorf("end-to-end request headers: %v", e.Headers)
	}
	for _, name := range []string{"X-Secret", "Keep-Alive"} {
		if v := resp.Header.Get(name); v != "" {
			t.Errorf("hop-by-hop response header %s: %q reached the client", name, v)
		}
	}
	if resp.Header.Get("X-Visible") != "end-to-end" || resp.Close {
		t.Errorf("response headers %v (close %v)", resp.Header, resp.Close)
	}
}

// TestHTTPProxyStreaming runs with the access log on: logging a streamed response must not read it.
func TestHTTPProxyStreaming(t *testing.T) {
	l := startLegacy(t)
	g := legacyGatewayLog(t, l, true)
	want := sha256.Sum256(bigBody(bigSize))
	for _, path := range []string{"/big", "/chunked"} {
		resp, err := httpClient.Get(g.base + path)
		if err != nil {
			t.Fatal(err)
		}
		hash := sha256.New()
		n, err := io.Copy(hash, resp.Body)
		resp.Body.Close()
		if err != nil || n != bigSize || !bytes.Equal(hash.Sum(nil), want[:]) {
			t.Errorf("%s: %d bytes, err %v, digest ok %v", path, n, err, bytes.Equal(hash.Sum(nil), want[:]))
		}
		if path == "/big" && resp.ContentLength != bigSize {
			t.Errorf("/big Content-Length %d", resp.ContentLength)
		}
	}

	// SSE: the first event reaches the client while the upstream still holds the second one back, so
	// nothing between them buffers the body.
	resp, err := httpClient.Get(g.base + "/sse")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	br := bufio.NewReader(resp.Body)
	got := make(chan string, 1)
	go func() {
		line, _ := br.ReadString('\n')
		got <- line
	}()
	select {
	case line := <-got:
		if line != "data: one\n" {
			t.Fatalf("first event %q", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("first SSE event not delivered while the upstream holds the stream open (buffered?)")
	}
	close(l.release)
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "\ndata: two\n\n" {
		t.Errorf("rest of the stream %q, %v", rest, err)
	}
}

func TestHTTPProxyErrors(t *testing.T) {
	l := startLegacy(t)
	g := legacyGateway(t, l)
	jsonError(t, g.do("GET", "/slow", ""), 504, CodeTimeout)
	// A dead address: the first request fails to dial (502), then the address is down (503, Retry-After).
	jsonError(t, g.do("GET", "/dead", ""), 502, CodeBadGateway)
	r := g.do("GET", "/dead", "")
	jsonError(t, r, 503, CodeNoConnection)
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	// The gateway keeps serving the live backend, and its upstream connections are reused.
	before := l.hits.Load()
	for i := 0; i < 20; i++ {
		if r := g.do("GET", "/api/users/7", ""); r.status != 200 {
			t.Fatalf("users after errors: %d", r.status)
		}
	}
	if l.hits.Load()-before != 20 {
		t.Errorf("upstream hits %d", l.hits.Load()-before)
	}
	st := g.pools.HTTP("legacy").Stats()
	if st.Upstreams[0].Conns > 4 {
		t.Errorf("upstream connections not kept alive: %+v", st)
	}
}

// TestHTTPProxyHTTP10Upstream: an HTTP/1.0 upstream (python -m http.server, old servlet containers) is
// answered to an HTTP/1.1 client as HTTP/1.1, and the client's connection stays open.
func TestHTTPProxyHTTP10Upstream(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = http.ReadRequest(bufio.NewReader(c))
				_, _ = io.WriteString(c, "HTTP/1.0 200 OK\r\nServer: old\r\nContent-Type: text/plain\r\n\r\nold body")
			}()
		}
	}()
	cfg := newConfig(nil, []routeSpec{{name: "old", path: "/old", backend: "old", interaction: mapping.InteractionHTTP}})
	addHTTPBackend(cfg, "old", "http://"+ln.Addr().String())
	g := startGateway(t, cfg, Options{})
	c, err := net.DialTimeout("tcp", g.addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	br := bufio.NewReader(c)
	for i := 0; i < 2; i++ { // two requests on one client connection
		if _, err := io.WriteString(c, "GET /old HTTP/1.1\r\nHost: gw\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Proto != "HTTP/1.1" || resp.Close || string(body) != "old body" {
			t.Fatalf("request %d: %s close=%v body %q", i, resp.Proto, resp.Close, body)
		}
	}
}
