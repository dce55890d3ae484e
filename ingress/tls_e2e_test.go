package ingress

import (
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/rsgate/rsgate/internal/testcert"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/pool"
)

// writeSelfSigned writes a certificate for 127.0.0.1 and its key as PEM files.
func writeSelfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	return testcert.New(t).WriteFiles(t)
}

func TestTLS(t *testing.T) {
	d := startDemo(t)
	cfg := newConfig(map[string]string{"demo": d.Addr().String()}, demoRoutes())
	cert, key := writeSelfSigned(t)
	cfg.TLS = &mapping.IngressTLS{Cert: cert, Key: key}
	g := startGateway(t, cfg, Options{})
	client := &http.Client{Timeout: testTimeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for _, path := range []string{"/api/users/5", "/api/ticks/2"} {
		resp, err := client.Get("https://" + g.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.TLS == nil || !strings.Contains(string(b), "{") {
			t.Fatalf("%s over TLS: %d %q", path, resp.StatusCode, b)
		}
	}
	// WebSocket over TLS: the request-channel route echoes through wss://.
	dialer := &websocket.Dialer{HandshakeTimeout: testTimeout, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	ws, _, err := dialer.Dial("wss://"+g.addr+"/ws/chat", nil)
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	defer ws.Close()
	for _, msg := range []string{`{"n":1}`, `{"n":2}`} {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = ws.SetReadDeadline(time.Now().Add(testTimeout))
		_, got, err := ws.ReadMessage()
		if err != nil || string(got) != msg {
			t.Fatalf("wss echo: %q %v, want %q", got, err, msg)
		}
	}
	// Plain HTTP on the TLS port is not served.
	if r, err := httpClient.Get(g.base + "/api/users/5"); err == nil {
		r.Body.Close()
		if r.StatusCode == 200 {
			t.Fatal("plain HTTP answered on the TLS listener")
		}
	}
}

func TestTLSBadCertificate(t *testing.T) {
	cfg := newConfig(map[string]string{"demo": "127.0.0.1:9"}, demoRoutes())
	cfg.TLS = &mapping.IngressTLS{Cert: "/nonexistent/cert.pem", Key: "/nonexistent/key.pem"}
	table, err := mapping.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg, table, PoolsFunc(func(string) *pool.Pool { return nil }), Options{}); !errors.Is(err, errConfig) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("New with a missing certificate: %v", err)
	}
}
