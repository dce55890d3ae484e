package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/rsgate/rsgate/internal/demo"
	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/mapping"
)

// testConfig is the configuration the tests of this package run the process with (ops_test.go adds
// routes to it): listeners on free ports and the demo backend. %s: the demo's address, then more routes.
const testConfig = `listen: "127.0.0.1:0"
admin: "127.0.0.1:0"
shutdown_grace: 10s
backends:
  demo:
    addresses: ["%s"]
    connections: 2
routes:
  - name: echo
    method: POST
    path: /api/echo
    backend: demo
    interaction: request-response
    route: echo
%s`

const extraRoute = `  - name: user
    method: GET
    path: /api/users/{id}
    backend: demo
    interaction: request-response
    route: users.{id}
`

// startTestGateway runs the whole process wiring (pools, ingress, admin) against a demo backend.
func startTestGateway(t *testing.T) (*gateway, string) {
	t.Helper()
	d, err := demo.Serve("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return startFromYAML(t, fmt.Sprintf(testConfig, d.Addr(), ""))
}

// startFromYAML writes yaml to a config file and starts the process wiring with -config on it, as main does.
func startFromYAML(t *testing.T, yaml string) (*gateway, string) {
	t.Helper()
	f, cfg, table := loadYAML(t, yaml)
	g, err := start(f, cfg, table, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return g, f.config
}

// loadYAML writes yaml to a config file and loads and compiles it as main does with -config.
func loadYAML(t *testing.T, yaml string) (*flags, *mapping.Config, *mapping.Table) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gw.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	f := &flags{config: path}
	cfg, err := loadConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	table, err := mapping.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f, cfg, table
}

func get(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitReady(t *testing.T, admin string) {
	t.Helper()
	testutil.EventuallyWithin(t, 5*time.Second, func() bool {
		code, _ := get(t, "GET", admin+"/readyz", "")
		return code == 200
	}, "the gateway to become ready (/readyz 200)")
}

func TestGatewayServesReloadsAndDrains(t *testing.T) {
	g, path := startTestGateway(t)
	base := "http://" + g.listenAddr()
	admin := "http://" + g.admin.ln.Addr().String()
	waitReady(t, admin)

	if code, body := get(t, "POST", base+"/api/echo", `{"a":1}`); code != 200 || body != `{"a":1}` {
		t.Fatalf("echo: %d %q", code, body)
	}
	if code, _ := get(t, "GET", base+"/api/users/7", ""); code != 404 {
		t.Fatalf("route not yet configured: got %d, want 404", code)
	}
	if code, body := get(t, "GET", admin+"/healthz", ""); code != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("healthz: %d %q", code, body)
	}
	if code, body := get(t, "GET", admin+"/metrics", ""); code != 200 || !strings.Contains(body, "rsgate_") || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("metrics: %d, %d bytes", code, len(body))
	}
	if code, body := get(t, "GET", admin+"/routes", ""); code != 200 || !strings.Contains(body, "/api/echo") {
		t.Fatalf("routes: %d %q", code, body)
	}
	if code, body := get(t, "GET", admin+"/backends", ""); code != 200 || !strings.Contains(body, "demo") {
		t.Fatalf("backends: %d %q", code, body)
	}
	if code, _ := get(t, "GET", admin+"/reload", ""); code != 405 {
		t.Fatalf("GET /reload: %d, want 405", code)
	}

	// A bad file changes nothing.
	good, _ := os.ReadFile(path)
	if err := os.WriteFile(path, []byte("listen: [oops\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, "POST", admin+"/reload", ""); code != 400 || !strings.Contains(body, "gw.yaml") {
		t.Fatalf("bad reload: %d %q", code, body)
	}
	if code, _ := get(t, "POST", base+"/api/echo", `x`); code != 200 {
		t.Fatalf("echo after failed reload: %d", code)
	}

	// A good file adds the route; the backend's pool is kept.
	addr := g.cfg.Backends["demo"].Addresses[0]
	if err := os.WriteFile(path, []byte(fmt.Sprintf(testConfig, addr, extraRoute)), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = good
	before := g.pools.Get("demo")
	if code, body := get(t, "POST", admin+"/reload", ""); code != 200 {
		t.Fatalf("reload: %d %q", code, body)
	}
	if g.pools.Get("demo") != before {
		t.Fatal("reload replaced the pool of an unchanged backend")
	}
	if code, body := get(t, "GET", base+"/api/users/7", ""); code != 200 || body != `{"id":"7"}` {
		t.Fatalf("new route: %d %q", code, body)
	}

	// SIGTERM drains and exits 0.
	sig := make(chan os.Signal, 1)
	sig <- syscall.SIGTERM
	done := make(chan int, 1)
	go func() { done <- g.wait(sig) }()
	waitExit(t, done)
}

// waitExit waits for wait()'s exit code on done and wants 0 within 10 s.
func waitExit(t *testing.T, done <-chan int) {
	t.Helper()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("drain did not finish")
	}
}

// An http (legacy REST) backend counts for /readyz, and /backends lists it.
func TestReadyWithHTTPBackend(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "legacy "+r.URL.Path)
	}))
	defer upstream.Close()
	cfg := fmt.Sprintf(`listen: "127.0.0.1:0"
admin: "127.0.0.1:0"
backends:
  legacy:
    transport: http
    addresses: ["%s"]
routes:
  - name: old
    path: /old/{rest...}
    backend: legacy
    interaction: http
`, upstream.URL)
	g, _ := startFromYAML(t, cfg)
	defer g.shutdown()
	admin := "http://" + g.admin.ln.Addr().String()
	waitReady(t, admin)
	if code, body := get(t, "GET", "http://"+g.listenAddr()+"/old/x", ""); code != 200 || body != "legacy /old/x" {
		t.Fatalf("proxied: %d %q", code, body)
	}
	if code, body := get(t, "GET", admin+"/backends", ""); code != 200 || !strings.Contains(body, `"legacy"`) {
		t.Fatalf("backends: %d %q", code, body)
	}
}
