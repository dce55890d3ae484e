package ingress

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/mapping"
)

// Lingering closes are bounded: a lingering connection keeps its slot of limits.max_connections until its
// drain ends, and at most max_connections/16 linger at once; the others are reset at once (counted in
// rsgate_linger_refused_total), so over-limit uploads left open cannot pile up socket duplicates.
func TestLingeringIsCappedAndCounted(t *testing.T) {
	d := startDemo(t)
	cfg := newConfig(map[string]string{"demo": d.Addr().String()}, demoRoutes()) // max_body 64 KiB
	cfg.Limits.MaxConnections = 32                                               // lingering cap: 2
	g := startGateway(t, cfg, Options{})

	const uploads = 6
	var conns []net.Conn
	for i := 0; i < uploads; i++ {
		c, err := net.Dial("tcp", g.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
		_ = c.SetDeadline(time.Now().Add(testTimeout))
		// Announce a large body, send a part of it, read the 413, and keep the connection open: without a
		// cap, every such connection lingers for lingerTime on a duplicated descriptor.
		fmt.Fprintf(c, "POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", 1<<20, strings.Repeat("x", 1000))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 413") {
			t.Fatalf("upload %d: %q, %v; want a 413", i, line, err)
		}
	}
	open := g.set.GetOrCreateGauge(`rsgate_client_connections`, nil) // the listener's (serving has started)
	testutil.Eventually(t, func() bool { return g.srv.lingers.active.Load() == 2 && open.Get() == 2 },
		"two lingering connections, counted as open")
	if got := g.set.GetOrCreateCounter(`rsgate_linger_refused_total`).Get(); got != uploads-2 {
		t.Fatalf("rsgate_linger_refused_total = %d, want %d", got, uploads-2)
	}
	// The clients go away: the drains end and give their slots back.
	for _, c := range conns {
		_ = c.Close()
	}
	testutil.Eventually(t, func() bool { return g.srv.lingers.active.Load() == 0 && open.Get() == 0 },
		"the lingering connections to end and free their slots")
}

// Over TLS behind the edge listener's counted connection, the lingering close still reaches the TCP socket
// (limitedConn.File unwraps the TLS connection) and holds the connection's slot while it drains.
func TestLingeringOverTLSWithConnectionLimit(t *testing.T) {
	d := startDemo(t)
	cfg := newConfig(map[string]string{"demo": d.Addr().String()}, demoRoutes())
	cert, key := writeSelfSigned(t)
	cfg.TLS = &mapping.IngressTLS{Cert: cert, Key: key}
	cfg.Limits.MaxConnections = 1000
	g := startGateway(t, cfg, Options{})
	c, err := tls.Dial("tcp", g.addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	fmt.Fprintf(c, "POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", 1<<20, strings.Repeat("x", 1000))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 413") {
		t.Fatalf("%q, %v; want a 413", line, err)
	}
	open := g.set.GetOrCreateGauge(`rsgate_client_connections`, nil)
	testutil.Eventually(t, func() bool { return g.srv.lingers.active.Load() == 1 && open.Get() == 1 }, "the TLS connection to linger")
	_ = c.Close()
	testutil.Eventually(t, func() bool { return g.srv.lingers.active.Load() == 0 && open.Get() == 0 }, "the drain to end")
}
