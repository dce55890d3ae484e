package pool

import (
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/mapping"
)

func httpBackend(addrs ...string) *mapping.Backend {
	b := mapping.NewBackend("legacy")
	b.Transport = mapping.TransportHTTP
	b.Addresses = addrs
	b.HTTP.HealthInterval = 0
	b.Reconnect.MinBackoff = mapping.Duration(time.Hour) // a down address stays down for the test
	b.Reconnect.MaxBackoff = mapping.Duration(time.Hour)
	return b
}

// serveHTTP starts a fasthttp server on 127.0.0.1 answering with its own address.
func serveHTTP(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("X-Addr", addr)
		ctx.WriteString(string(ctx.Host()) + " " + string(ctx.RequestURI()))
	}}
	go s.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { _ = s.Shutdown() })
	return addr
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func doGet(t *testing.T, p *HTTPPool, path string) (string, error) {
	t.Helper()
	u, err := p.Pick()
	if err != nil {
		return "", err
	}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.URI().SetPath(path)
	err = u.Do(req, resp, time.Now().Add(5*time.Second))
	var body string
	if err == nil {
		b, rerr := readAllStream(resp)
		body, err = string(b), rerr
	}
	p.Done(u, err)
	return body, err
}

func readAllStream(resp *fasthttp.Response) ([]byte, error) {
	var out []byte
	buf := make([]byte, 4096)
	r := resp.BodyStream()
	for r != nil {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			break
		}
	}
	return out, resp.CloseBodyStream()
}

func TestHTTPPoolRoundRobinAndPrefix(t *testing.T) {
	a, b := serveHTTP(t), serveHTTP(t)
	p, err := NewHTTP(httpBackend("http://"+a+"/base/", "http://"+b+"/base"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.PathPrefix() != "/base" || p.Scheme() != "http" {
		t.Errorf("prefix %q scheme %q", p.PathPrefix(), p.Scheme())
	}
	seen := map[string]int{}
	for i := 0; i < 4; i++ {
		body, err := doGet(t, p, "/x")
		if err != nil {
			t.Fatal(err)
		}
		seen[body]++
	}
	if seen[a+" /x"] != 2 || seen[b+" /x"] != 2 {
		t.Errorf("round robin (Host is the address's host): %v", seen)
	}
	if !p.Ready() || p.InFlight() != 0 {
		t.Errorf("ready %v inflight %d", p.Ready(), p.InFlight())
	}
}

func TestHTTPPoolDownAndNoConnection(t *testing.T) {
	up, down := serveHTTP(t), closedAddr(t)
	p, err := NewHTTP(httpBackend("http://"+down, "http://"+up), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var dialErrs int
	for i := 0; i < 4; i++ {
		_, err := doGet(t, p, "/")
		var de *DialError
		if errors.As(err, &de) {
			dialErrs++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if dialErrs != 1 {
		t.Errorf("dial errors = %d, want 1 (the dead address is skipped once marked down)", dialErrs)
	}
	if st := p.Stats(); st.Upstreams[0].State != "down" || st.Upstreams[1].State != "up" || !st.Ready {
		t.Errorf("stats %+v", st)
	}

	only, err := NewHTTP(httpBackend("http://"+down), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer only.Close()
	if _, err := doGet(t, only, "/"); err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	_, err = only.Pick()
	if !errors.Is(err, ErrNoConnection) || only.Ready() {
		t.Fatalf("Pick = %v, Ready %v; want ErrNoConnection, not ready", err, only.Ready())
	}
	if ra, ok := RetryAfter(err); !ok || ra < 59*time.Minute {
		t.Errorf("RetryAfter = %v %v", ra, ok)
	}
}

func TestHTTPPoolOverloadAndHealth(t *testing.T) {
	addr := closedAddr(t)
	b := httpBackend("http://" + addr)
	b.MaxInflight = 1
	b.HTTP.HealthInterval = mapping.Duration(20 * time.Millisecond)
	b.Reconnect.MinBackoff, b.Reconnect.MaxBackoff = mapping.Duration(time.Hour), mapping.Duration(time.Hour)
	p, err := NewHTTP(b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	u, err := p.Pick()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Pick(); !errors.Is(err, ErrOverloaded) {
		t.Errorf("second Pick = %v, want ErrOverloaded", err)
	}
	p.Done(u, nil)

	p.Start()
	testutil.EventuallyWithin(t, 5*time.Second, func() bool { return !p.Ready() }, "health check marks the closed port down")
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	defer ln.Close()
	testutil.EventuallyWithin(t, 5*time.Second, p.Ready, "health check marks the listening port up")
	p.Close()
	if _, err := p.Pick(); !errors.Is(err, ErrClosed) {
		t.Errorf("Pick after Close = %v", err)
	}
}

func TestNewHTTPErrors(t *testing.T) {
	for _, addrs := range [][]string{
		{"ftp://x:1"},
		{"http://a:1/p", "http://b:1/q"},
		{"http://a:1", "https://b:1"},
		{"http://a:1/?q=1"},
	} {
		if _, err := NewHTTP(httpBackend(addrs...), Options{}); err == nil {
			t.Errorf("NewHTTP(%v) accepted", addrs)
		}
	}
	rs := mapping.NewBackend("rs")
	rs.Addresses = []string{"127.0.0.1:1"}
	if _, err := NewHTTP(rs, Options{}); !errors.Is(err, ErrUnsupportedTransport) {
		t.Errorf("NewHTTP(tcp) = %v", err)
	}
}

func TestGroupHTTP(t *testing.T) {
	a := serveHTTP(t)
	cfg := mapping.NewConfig()
	cfg.Backends["legacy"] = httpBackend("http://" + a)
	g, err := NewGroup(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	g.Start()
	p := g.HTTP("legacy")
	if p == nil || g.Get("legacy") != nil || !g.BackendReady("legacy") || g.BackendReady("nope") || !g.Ready() {
		t.Fatalf("HTTP %v Get %v ready %v", p, g.Get("legacy"), g.BackendReady("legacy"))
	}
	if s := g.Skipped(); len(s) != 1 || s[0] != "legacy" {
		t.Errorf("Skipped = %v", s)
	}
	// Unchanged backend: same pool; changed: new pool, old one closed.
	if err := g.Update(cfg); err != nil || g.HTTP("legacy") != p {
		t.Fatalf("Update unchanged: %v, pool kept %v", err, g.HTTP("legacy") == p)
	}
	cfg2 := mapping.NewConfig()
	cfg2.Backends["legacy"] = httpBackend("http://" + a + "/v2")
	if err := g.Update(cfg2); err != nil || g.HTTP("legacy") == p || g.HTTP("legacy").PathPrefix() != "/v2" {
		t.Fatalf("Update changed: %v", err)
	}
	if _, err := p.Pick(); !errors.Is(err, ErrClosed) {
		t.Errorf("replaced pool still picks: %v", err)
	}
	if st := g.HTTPStats(); len(st) != 1 || st[0].Backend != "legacy" {
		t.Errorf("HTTPStats = %+v", st)
	}
}

// TestHTTPPoolTLS: https:// addresses use the backend's tls section (here: the test CA); without it the
// upstream's self-signed certificate is refused.
func TestHTTPPoolTLS(t *testing.T) {
	srvCfg, certFile, _ := testCert(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.WriteString("tls " + string(ctx.Host()) + " " + strconv.FormatBool(ctx.IsTLS()))
	}}
	go s.Serve(tls.NewListener(ln, srvCfg)) //nolint:errcheck
	defer s.Shutdown()                      //nolint:errcheck
	url := "https://" + ln.Addr().String()

	b := httpBackend(url)
	b.TLS = &mapping.TLS{CA: certFile}
	p, err := NewHTTP(b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if body, err := doGet(t, p, "/"); err != nil || body != "tls "+ln.Addr().String()+" true" {
		t.Fatalf("with the CA: %q, %v", body, err)
	}

	untrusted, err := NewHTTP(httpBackend(url), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer untrusted.Close()
	if _, err := doGet(t, untrusted, "/"); err == nil {
		t.Fatal("a self-signed upstream was accepted without tls.ca")
	}
}
