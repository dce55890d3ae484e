package main

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/demo"
)

// /readyz waits only for the backends of required routes; ?verbose lists every backend.
func TestReadyzRequiredRoutes(t *testing.T) {
	d, err := demo.Serve("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// An address nothing listens on: that backend never gets a connection.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()
	yaml := func(required string) string {
		return fmt.Sprintf(`listen: "127.0.0.1:0"
admin: "127.0.0.1:0"
backends:
  demo: {addresses: [%q], connections: 1}
  reports: {addresses: [%q], connections: 1, reconnect: {min_backoff: 1s, max_backoff: 2s}}
routes:
  - {name: echo, method: POST, path: /api/echo, backend: demo, interaction: request-response, route: echo}
  - {name: report, method: GET, path: /api/report, backend: reports, interaction: request-response, route: r%s}
`, d.Addr(), down, required)
	}
	g, path := startFromYAML(t, yaml(", required: false"))
	defer g.shutdown()
	admin := "http://" + g.admin.ln.Addr().String()
	waitReady(t, admin) // ready although "reports" is down
	code, body := get(t, "GET", admin+"/readyz?verbose", "")
	if code != 200 || !strings.Contains(body, "[+] backend demo: ready (required by echo)") ||
		!strings.Contains(body, "[-] backend reports: not ready (not required)") || !strings.HasSuffix(body, "ready\n") {
		t.Fatalf("verbose readyz: %d\n%s", code, body)
	}
	// Now the route is required (the default): not ready.
	if err := os.WriteFile(path, []byte(yaml("")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := g.reload(); err != nil {
		t.Fatal(err)
	}
	code, body = get(t, "GET", admin+"/readyz", "")
	if code != 503 || !strings.Contains(body, "reports") {
		t.Fatalf("readyz with a required route down: %d %q", code, body)
	}
	code, body = get(t, "GET", admin+"/readyz?verbose", "")
	if code != 503 || !strings.Contains(body, "[-] backend reports: not ready (required by report)") {
		t.Fatalf("verbose readyz: %d\n%s", code, body)
	}
	_ = time.Second
}
