package interop

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rsgate/rsgate/bench/interop/peers"
)

// TestRSocketJS runs the rsocket-js clients (js/v1: 1.0.0-alpha.3, js/v0: 0.0.27 with BufferEncoders)
// against cmd/jspeer (our rsocket.Server) over TCP and WebSocket. Each script checks request-response
// (small, 1 MiB, APPLICATION_ERROR), request-stream with request(1) and request-channel, all routed by a
// composite-metadata routing tag, and exits non-zero on any failure.
func TestRSocketJS(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found in PATH: rsocket-js interop not run (bench/interop/run.sh and .ci/run install it)")
	}
	for _, v := range []string{"v0", "v1"} {
		if _, err := os.Stat(filepath.Join("js", v, "node_modules", "rsocket-core")); err != nil {
			t.Fatalf("js/%s/node_modules is missing: run `npm ci` in bench/interop/js/%s (run.sh does it)", v, v)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "jspeer")
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if out, err := exec.CommandContext(ctx, goTool, "build", "-o", bin, "./cmd/jspeer").CombinedOutput(); err != nil {
		t.Fatalf("build cmd/jspeer: %v\n%s", err, out)
	}
	tcpAddr, wsURL, stderr := startJSPeer(t, ctx, bin)

	for _, v := range []string{"v1", "v0"} {
		for _, tr := range []struct{ kind, target string }{{"tcp", tcpAddr}, {"ws", wsURL}} {
			t.Run(v+"/"+tr.kind, func(t *testing.T) {
				cctx, ccancel := context.WithTimeout(ctx, 60*time.Second)
				defer ccancel()
				cmd := exec.CommandContext(cctx, node, "client.js", tr.kind, tr.target)
				cmd.Dir = filepath.Join("js", v)
				out, err := cmd.CombinedOutput()
				summary := regexp.MustCompile(`(?m)^js: (\d+) passed, (\d+) failed$`).FindSubmatch(out)
				if err != nil || summary == nil || string(summary[2]) != "0" || string(summary[1]) != "5" {
					t.Fatalf("rsocket-js %s over %s: %v\n%s", v, tr.kind, err, out)
				}
				t.Logf("rsocket-js %s over %s: %s", v, tr.kind, summary[0])
			})
		}
	}
	// The same scripts through the gateway's rsocket route (RSocket over WebSocket, relayed stream by
	// stream to jspeer over TCP): what a browser running rsocket-js does.
	gwBin := filepath.Join(t.TempDir(), "gateway")
	build := exec.CommandContext(ctx, goTool, "build", "-o", gwBin, "./cmd/gateway")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build cmd/gateway: %v\n%s", err, out)
	}
	// Two backends behind the same rsocket route: jspeer (ours, the default) and an rsocket-go v0.8.12
	// server with the same routes, chosen by routing tag through the route's rsocket.routes map — so the
	// same scripts also run browser -> gateway -> rsocket-go.
	goSrv, err := peers.StartGoServer("tcp", 64<<10, peers.GoAcceptor(peers.NewObservations()))
	if err != nil {
		t.Fatalf("start rsocket-go server: %v", err)
	}
	t.Cleanup(func() { _ = goSrv.Close() })
	cfgTmpl := `listen: "127.0.0.1:0"
admin: "off"
backends:
  jspeer:
    transport: tcp
    addresses: [%q]
    connections: 1
    data_mime: application/octet-stream
    metadata_mime: message/x.rsocket.composite-metadata.v0
  rsgo:
    transport: tcp
    addresses: [%q]
    connections: 1
    data_mime: application/octet-stream
    metadata_mime: message/x.rsocket.composite-metadata.v0
routes:
  - name: browser
    path: /rsocket
    backend: jspeer
    interaction: rsocket
    rsocket: {allow: ["*"]}
    websocket: {origins: ["*"], max_message: 2MiB} # rsocket-js 0.0.27 sends the 1 MiB echo unfragmented
  - name: browser-rsgo
    path: /rsocket-go
    backend: rsgo
    interaction: rsocket
    rsocket: {allow: ["*"]}
    websocket: {origins: ["*"], max_message: 2MiB}
`
	cfg := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(cfgTmpl, tcpAddr, goSrv.Addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	gw := startGateway(t, ctx, gwBin, cfg)
	for _, v := range []string{"v1", "v0"} {
		for _, be := range []struct{ name, path string }{{"ours", "/rsocket"}, {"rsgo", "/rsocket-go"}} {
			t.Run("via_gateway/"+v+"/ws/backend="+be.name, func(t *testing.T) {
				cctx, ccancel := context.WithTimeout(ctx, 60*time.Second)
				defer ccancel()
				cmd := exec.CommandContext(cctx, node, "client.js", "ws", "ws://"+gw+be.path)
				cmd.Dir = filepath.Join("js", v)
				out, err := cmd.CombinedOutput()
				summary := regexp.MustCompile(`(?m)^js: (\d+) passed, (\d+) failed$`).FindSubmatch(out)
				if err != nil || summary == nil || string(summary[2]) != "0" || string(summary[1]) != "5" {
					t.Fatalf("rsocket-js %s through the gateway to %s: %v\n%s", v, be.name, err, out)
				}
				t.Logf("rsocket-js %s through the gateway's rsocket route to the %s backend: %s", v, be.name, summary[0])
			})
		}
	}

	if s := stderr.String(); strings.Contains(s, "responder:") {
		t.Errorf("jspeer reported responder-side problems:\n%s", s)
	}
}

// startJSPeer starts the jspeer binary and returns its TCP address and WebSocket URL. The peer stops
// when its stdin closes (test cleanup), or is killed if it does not within 5s.
func startJSPeer(t *testing.T, ctx context.Context, bin string) (tcpAddr, wsURL string, stderr *syncBuffer) {
	t.Helper()
	cmd := exec.Command(bin, "-tcp", "127.0.0.1:0", "-ws", "127.0.0.1:0", "-max-lifetime", "4m")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr = &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start jspeer: %v", err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		stdin.Close()
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("jspeer exited with %v; stderr:\n%s", err, stderr.String())
			}
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			t.Errorf("jspeer did not stop within 5s of stdin closing")
		}
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "READY ") {
				ready <- sc.Text()
			}
		}
		exited <- cmd.Wait()
	}()
	select {
	case line := <-ready:
		if _, err := fmt.Sscanf(line, "READY tcp=%s ws=%s", &tcpAddr, &wsURL); err != nil {
			t.Fatalf("jspeer READY line %q: %v", line, err)
		}
		return tcpAddr, wsURL, stderr
	case <-time.After(15 * time.Second):
		t.Fatalf("jspeer not ready within 15s; stderr:\n%s", stderr.String())
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	return "", "", nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
