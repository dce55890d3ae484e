package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/demo"
	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/transport"
)

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" || resp.StatusCode != 200 {
		t.Fatalf("%s: %d %q", url, resp.StatusCode, ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// /routes and /backends: the documented shape, readable units, no duplication (issue 13).
func TestAdminRoutesAndBackendsShape(t *testing.T) {
	d, err := demo.Serve("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	g, _ := startFromYAML(t, fmt.Sprintf(testConfig, d.Addr(), extraRoute+`  - name: ticks
    path: /api/ticks/{n}
    backend: demo
    interaction: request-stream
    route: ticks.{n}
`))
	t.Cleanup(func() { _ = g.shutdown() })
	admin := "http://" + g.admin.ln.Addr().String()
	testutil.Eventually(t, func() bool { return g.pools.BackendReady("demo") }, "backend ready")

	var routes []map[string]any
	getJSON(t, admin+"/routes", &routes)
	if len(routes) != 3 {
		t.Fatalf("%d routes", len(routes))
	}
	echo, ticks := routes[0], routes[2]
	for k, want := range map[string]any{"name": "echo", "method": "POST", "path": "/api/echo", "backend": "demo",
		"interaction": "request-response", "route": "echo", "timeout": "30s", "max_body": float64(4 << 20), "forward_auth": true} {
		if echo[k] != want {
			t.Errorf("echo.%s = %#v, want %#v", k, echo[k], want)
		}
	}
	for _, k := range []string{"stream", "websocket", "BackendConfig", "Timeout", "Index"} {
		if _, ok := echo[k]; ok {
			t.Errorf("echo has %q: %v", k, echo)
		}
	}
	if s, _ := ticks["stream"].(map[string]any); s["format"] != "auto" || s["window"] != float64(64) {
		t.Errorf("ticks.stream = %v", ticks["stream"])
	}
	if _, ok := ticks["timeout"]; ok {
		t.Errorf("a stream without timeout shows one: %v", ticks)
	}

	var backends []map[string]any
	getJSON(t, admin+"/backends", &backends)
	if len(backends) != 1 || backends[0]["name"] != "demo" {
		t.Fatalf("backends %v", backends)
	}
	b := backends[0]
	cfg, _ := b["config"].(map[string]any)
	if cfg["transport"] != "tcp" || cfg["keepalive"] != "20s" || cfg["max_lifetime"] != "1m30s" || cfg["lease"] != false ||
		cfg["connections"] != float64(2) || cfg["max_inflight"] != float64(10000) {
		t.Errorf("config %v", cfg)
	}
	if _, ok := cfg["http"]; ok {
		t.Errorf("a tcp backend shows an http block: %v", cfg)
	}
	conns, _ := b["connections"].([]any)
	if len(conns) != 2 {
		t.Fatalf("connections %v", b["connections"])
	}
	c0, _ := conns[0].(map[string]any)
	if c0["address"] != d.Addr().String() || c0["state"] != "ready" {
		t.Errorf("connection %v", c0)
	}
	for _, k := range []string{"addr", "ip", "lease", "lease_available", "ewma_ns"} {
		if _, ok := c0[k]; ok {
			t.Errorf("connection has %q: %v", k, c0)
		}
	}
	if _, ok := c0["ewma_latency"].(string); !ok {
		t.Errorf("ewma_latency is not a duration string: %v", c0)
	}
}

// Every family on /metrics has a # HELP text; the gateway's own families have their own (issue 13).
func TestMetricsHelpLines(t *testing.T) {
	g, _ := startTestGateway(t)
	t.Cleanup(func() { _ = g.shutdown() })
	resp, err := http.Get("http://" + g.admin.ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, "# HELP ") {
			continue
		}
		n++
		f := strings.Fields(l)
		if len(f) < 4 {
			t.Errorf("empty help: %q", l)
		}
	}
	if n < 10 {
		t.Fatalf("%d HELP lines", n)
	}
	// The README's metric table: each family has a written text, not the derived one.
	re := regexp.MustCompile("`(rsgate_[a-z_]+)`")
	for _, m := range re.FindAllStringSubmatch(readRepoFile(t, "README.md"), -1) {
		if _, ok := metricHelp[m[1]]; !ok {
			t.Errorf("README names %s; metricshelp.go has no text for it", m[1])
		}
	}
}

func TestFillHelpKeepsExistingText(t *testing.T) {
	var b strings.Builder
	fillHelp(&b, []byte("# HELP a_total\n# TYPE a_total counter\na_total 1\n# HELP b has text\nb 2"))
	want := "# HELP a_total a total.\n# TYPE a_total counter\na_total 1\n# HELP b has text\nb 2"
	if b.String() != want {
		t.Fatalf("got %q\nwant %q", b.String(), want)
	}
}

// A backend configured `lease: true` shows it in its config, and each connection says whether a request
// may be sent under its current lease (issue 13: /backends showed "lease": true for `lease: false`).
func TestAdminBackendsLease(t *testing.T) {
	l, err := transport.ListenTCP("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := &rsocket.Server{
		Acceptor: func(*rsocket.SetupInfo, *rsocket.Conn) (rsocket.Handler, error) { return nil, nil },
		Options:  rsocket.ServerOptions{Lease: &rsocket.LeaseGrant{TTL: time.Hour, Requests: 100}},
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	cfgYAML := strings.Replace(fmt.Sprintf(testConfig, l.Addr(), ""), "    connections: 2\n", "    connections: 2\n    lease: true\n", 1)
	g, _ := startFromYAML(t, cfgYAML)
	t.Cleanup(func() { _ = g.shutdown() })
	admin := "http://" + g.admin.ln.Addr().String()

	var backends []map[string]any
	testutil.Eventually(t, func() bool {
		getJSON(t, admin+"/backends", &backends)
		if len(backends) != 1 {
			return false
		}
		conns, _ := backends[0]["connections"].([]any)
		if len(conns) != 2 {
			return false
		}
		for _, c := range conns {
			if c.(map[string]any)["lease_available"] != true {
				return false
			}
		}
		return true
	}, "both connections to hold a lease")
	if cfg, _ := backends[0]["config"].(map[string]any); cfg["lease"] != true {
		t.Errorf("config %v", cfg)
	}
}
