package interop

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/faultproxy"
)

// TestRSocketJSResume: rsocket-js 1.0.0-alpha.3 with its resume option, through the gateway's rsocket
// route with rsocket.resume, to jspeer (our server), while a TCP proxy between rsocket-js and the gateway
// resets the WebSocket every 100 ms. The script checks every stream item arrives once and in order.
func TestRSocketJSResume(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found in PATH")
	}
	if _, err := os.Stat(filepath.Join("js", "v1", "node_modules", "rsocket-core")); err != nil {
		t.Fatal("js/v1/node_modules is missing: run `npm ci` in bench/interop/js/v1 (run.sh does it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	bin := filepath.Join(t.TempDir(), "jspeer")
	if out, err := exec.CommandContext(ctx, goTool, "build", "-o", bin, "./cmd/jspeer").CombinedOutput(); err != nil {
		t.Fatalf("build cmd/jspeer: %v\n%s", err, out)
	}
	tcpAddr, _, _ := startJSPeer(t, ctx, bin)
	gwBin := filepath.Join(t.TempDir(), "gateway")
	build := exec.CommandContext(ctx, goTool, "build", "-o", gwBin, "./cmd/gateway")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build cmd/gateway: %v\n%s", err, out)
	}
	cfg := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: "127.0.0.1:0"
admin: "off"
backends:
  jspeer:
    transport: tcp
    addresses: [%q]
    connections: 1
    data_mime: application/octet-stream
routes:
  - name: browser
    path: /rsocket
    backend: jspeer
    interaction: rsocket
    websocket: {origins: ["*"]}
    rsocket:
      allow: ["*"]
      resume: {session_duration: 30s}
`, tcpAddr)), 0o644); err != nil {
		t.Fatal(err)
	}
	gw := startGateway(t, ctx, gwBin, cfg)
	proxy, err := faultproxy.Start(gw, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()

	cmd := exec.CommandContext(ctx, node, "resume.js", "ws://"+proxy.Addr()+"/rsocket", "20000")
	cmd.Dir = filepath.Join("js", "v1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if sc.Text() == "CONNECTED" {
			proxy.CutEvery(100 * time.Millisecond)
		}
	}
	err = cmd.Wait()
	log := strings.Join(lines, "\n")
	if err != nil || !strings.Contains(log, "js: 1 passed, 0 failed") {
		t.Fatalf("rsocket-js resume through the gateway (%d cuts): %v\n%s", proxy.Cuts(), err, log)
	}
	if proxy.Cuts() < 2 {
		t.Fatalf("only %d cuts during the run:\n%s", proxy.Cuts(), log)
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "PASS ") {
			t.Logf("%s (%d cuts)", l, proxy.Cuts())
		}
	}
}
