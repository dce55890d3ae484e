package webdemo_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/rsgate/rsgate"
	"github.com/rsgate/rsgate/ingress"
	"github.com/rsgate/rsgate/internal/demo"
	"github.com/rsgate/rsgate/internal/webdemo"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/pool"
)

// startGateway runs the example configuration (routes /rsocket and /ws/chat among others) against a demo
// service on a free port, with the demo page as fallback, and returns the gateway's address.
func startGateway(t *testing.T) string {
	t.Helper()
	d, err := demo.Serve("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	cfg, err := mapping.Parse(rsgate.ExampleConfig, rsgate.ExampleConfigName)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Backends["demo"].Addresses = []string{d.Addr().String()}
	table, err := mapping.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pools, err := pool.NewGroup(cfg, pool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pools.Start()
	t.Cleanup(func() { _ = pools.Close() })
	srv, err := ingress.New(cfg, table, pools, ingress.Options{Fallback: webdemo.Handler})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	deadline := time.Now().Add(10 * time.Second)
	for !pools.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("backend pool not ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return ln.Addr().String()
}

func TestPageServed(t *testing.T) {
	addr := startGateway(t)
	for _, c := range []struct {
		path, ctype, contains string
		status                int
	}{
		{"/", "text/html", "rsgate in the browser", 200},
		{"/demo/", "text/html", "app.js", 200},
		{"/demo/app.js", "javascript", "", 200},
		{"/demo/nothing.js", "application/json", "NO_ROUTE", 404},
		{"/api/users/5", "application/json", `{"id":"5"}`, 200}, // routes still win
	} {
		status, body, err := fasthttp.Get(nil, "http://"+addr+c.path)
		if err != nil {
			t.Fatal(err)
		}
		if status != c.status || !bytes.Contains(body, []byte(c.contains)) {
			t.Fatalf("GET %s: %d %.80q", c.path, status, body)
		}
	}
	if !webdemo.HasBundle() {
		t.Fatal(webdemo.BuildHint)
	}
}

// browserTestsEnv enables the tests that run npm, node and Chromium. `go test ./...` stays hermetic (no
// network, no tools beyond Go) without it; internal/webdemo/test.sh, which .ci/run calls, sets it.
const browserTestsEnv = "RSGATE_BROWSER_TESTS"

// jsDir returns the npm project, installing its dependencies with `npm ci` when they are missing. It skips
// the test unless RSGATE_BROWSER_TESTS=1, or when node is not installed.
func jsDir(t *testing.T) string {
	t.Helper()
	if os.Getenv(browserTestsEnv) != "1" {
		t.Skip("skipping the npm/node/Chromium tests: set " + browserTestsEnv + "=1 to run them (internal/webdemo/test.sh does, and installs node, npm and chromium)")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed: skipping the rsocket-js tests (apt-get install nodejs npm, or run internal/webdemo/test.sh)")
	}
	dir, _ := filepath.Abs("js")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "rsocket-core")); err != nil {
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
		}
	}
	return dir
}

func runNode(t *testing.T, dir string, timeout time.Duration, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	t.Logf("node %s:\n%s", strings.Join(args, " "), out)
	if err != nil {
		t.Fatalf("node %s: %v", args[0], err)
	}
	return string(out)
}

// TestNodeClients runs rsocket-js 1.0.0-alpha.3 and 0.0.27 through ws://127.0.0.1:PORT/rsocket.
func TestNodeClients(t *testing.T) {
	dir := jsDir(t)
	addr := startGateway(t)
	out := runNode(t, dir, time.Minute, "test/node-clients.mjs", "ws://"+addr+"/rsocket")
	if !strings.Contains(out, "node: 6 passed, 0 failed") {
		t.Fatal("not every Node check passed")
	}
}

// TestBrowser loads the demo page in headless Chromium (see js/test/browser.mjs). It needs Debian's
// chromium (internal/webdemo/test.sh installs it); the screenshot goes to the test's temp dir, and also to
// docs/demo.png when RSGATE_SCREENSHOT is set to that path.
func TestBrowser(t *testing.T) {
	dir := jsDir(t)
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("no Chromium at %s: run internal/webdemo/test.sh (it installs the Debian package) or set CHROMIUM", chromium)
	}
	addr := startGateway(t)
	shot := filepath.Join(t.TempDir(), "demo.png")
	args := []string{"test/browser.mjs", "http://" + addr + "/", shot}
	if extra := os.Getenv("RSGATE_SCREENSHOT"); extra != "" {
		abs, _ := filepath.Abs(extra)
		args = append(args, abs)
	}
	out := runNode(t, dir, 2*time.Minute, args...)
	if !strings.Contains(out, "PASS browser demo") {
		t.Fatal("browser test failed")
	}
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 1000 {
		t.Fatalf("no screenshot: %v", err)
	}
	t.Logf("screenshot: %s", shot)
}
