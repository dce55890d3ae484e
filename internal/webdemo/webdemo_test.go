package webdemo_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/rsgate/rsgate"
	"github.com/rsgate/rsgate/ingress"
	"github.com/rsgate/rsgate/internal/demo"
	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/internal/webdemo"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/pool"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/extension"
	"github.com/rsgate/rsgate/rsocket/transport"
)

// startGateway runs the example configuration (routes /rsocket and /ws/chat among others) against a demo
// service on a free port, with the demo page as fallback, and returns the gateway's address.
func startGateway(t *testing.T) string {
	t.Helper()
	addr, _, _ := startDemoGateway(t)
	return addr
}

// startDemoGateway is startGateway that also returns the ingress server and a reload (the configuration
// applied again, as SIGHUP does: a new generation of routes, whose resume session tables start empty). The
// fallback is what `gateway -demo` mounts: the page and its POST /demo/cut.
func startDemoGateway(t *testing.T) (string, *ingress.Server, func() error) {
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
	var srv *ingress.Server
	cut := func(ctx *fasthttp.RequestCtx) { srv.CutClientsHandler(ctx) }
	srv, err = ingress.New(cfg, table, pools, ingress.Options{Fallback: webdemo.WithCut(cut)})
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
	testutil.Eventually(t, pools.Ready, "the backend pool to become ready")
	reload := func() error {
		table, err := mapping.Compile(cfg)
		if err != nil {
			return err
		}
		return srv.Update(cfg, table)
	}
	return ln.Addr().String(), srv, reload
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

// TestBrowserResume: the demo page's clock stream survives server-side cuts of its WebSocket in headless
// Chromium (js/test/browser-resume.mjs): one cut with the page's "cut connection" button (POST /demo/cut),
// one with a POST to CutClientsHandler, the handler the admin listener mounts at /debug/cut-clients (its
// guard is tested in cmd/gateway), here on a loopback listener of its own. After each the page shows a
// resume and the ticks go on consecutively; the chat channel opened before the cuts echoes after them. Then
// the control: a reload (the new route generation knows no
// session) and a cut make the gateway refuse the resume; the page must show a new session and the tick
// gap it causes, which is what the checks above would catch if resumption did not work.
func TestBrowserResume(t *testing.T) {
	dir := jsDir(t)
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("no Chromium at %s: run internal/webdemo/test.sh (it installs the Debian package) or set CHROMIUM", chromium)
	}
	addr, srv, reload := startDemoGateway(t)
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	admin := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/reload" {
			if err := reload(); err != nil {
				ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
			}
			return
		}
		srv.CutClientsHandler(ctx)
	}}
	go func() { _ = admin.Serve(adminLn) }()
	t.Cleanup(func() { _ = admin.Shutdown() })
	shot := filepath.Join(t.TempDir(), "resume.png")
	out := runNode(t, dir, 2*time.Minute, "test/browser-resume.mjs", "http://"+addr+"/",
		"http://"+adminLn.Addr().String()+"/debug/cut-clients", "http://"+adminLn.Addr().String()+"/reload", shot)
	if !strings.Contains(out, "PASS browser resume") {
		t.Fatal("browser resume test failed")
	}
	t.Logf("screenshot: %s", shot)
}

// POST /demo/cut (gateway -demo only): cuts the /rsocket clients' sockets and answers {"cut": N}; a
// resuming client dials again. Cross-site POSTs and other methods cut nothing.
func TestDemoCut(t *testing.T) {
	addr, _, _ := startDemoGateway(t)
	var dials atomic.Int32
	dial := func(ctx context.Context) (transport.Conn, error) {
		tc, err := transport.DialWebSocket(ctx, "ws://"+addr+"/rsocket", nil, nil)
		if err == nil {
			dials.Add(1)
		}
		return tc, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tc, err := dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := rsocket.Connect(ctx, tc, rsocket.Options{DataMIME: "application/json",
		MetadataMIME: extension.MimeComposite, Resume: rsocket.ResumeOptions{Enabled: true, Dial: dial}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echo := func() string {
		m, _, err := c.RequestResponse(ctx, rsocket.Payload{Metadata: extension.AppendCompositeEntry(nil, extension.MimeRouting, extension.AppendRouting(nil, "echo")), Data: []byte(`"hi"`)})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Release()
		return string(m.Data)
	}
	if got := echo(); got != `"hi"` {
		t.Fatalf("echo: %q", got)
	}
	post := func(method string, hdr ...string) (int, string) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI("http://" + addr + webdemo.CutPath)
		req.Header.SetMethod(method)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		if err := fasthttp.DoTimeout(req, resp, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode(), string(resp.Body())
	}
	for _, tc := range []struct {
		method string
		hdr    []string
		want   int
	}{
		{"GET", nil, 405},
		{"POST", []string{"Origin", "https://evil.example"}, 403},
		{"POST", []string{"Origin", "null"}, 403},
		{"POST", []string{"Sec-Fetch-Site", "cross-site"}, 403},
	} {
		if code, body := post(tc.method, tc.hdr...); code != tc.want {
			t.Fatalf("%s %s %v: %d %s, want %d", tc.method, webdemo.CutPath, tc.hdr, code, body, tc.want)
		}
	}
	if dials.Load() != 1 {
		t.Fatalf("a refused cut request cut the client (%d dials)", dials.Load())
	}
	if code, body := post("POST", "Origin", "http://"+addr); code != 200 || body != "{\"cut\": 1}\n" {
		t.Fatalf("POST %s: %d %q", webdemo.CutPath, code, body)
	}
	testutil.Eventually(t, func() bool { return dials.Load() >= 2 }, "the client to dial again after the cut")
	if got := echo(); got != `"hi"` {
		t.Fatalf("echo after the resume: %q", got)
	}
}
