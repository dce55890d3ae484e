package ingress

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testcert"
	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/mapping"
)

// peerCN dials a new TLS connection and returns the server certificate's common name.
func peerCN(t *testing.T, addr string) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// getOn sends GET path on an open connection and returns the status.
func getOn(t *testing.T, c *tls.Conn, br *bufio.Reader, path string) int {
	t.Helper()
	return exchange(t, c, br, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
}

// exchange writes the raw request on an open connection (br reads it), reads the whole response and
// returns its status.
func exchange(t *testing.T, c net.Conn, br *bufio.Reader, request string) int {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func writePair(t *testing.T, c *testcert.Cert, certFile, keyFile string) {
	t.Helper()
	// The key first, then the certificate: a check between the two sees a mismatch and keeps the old pair.
	if err := os.WriteFile(keyFile, c.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, c.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A renewed certificate is picked up by new connections (file change, and Update as SIGHUP does),
// while an open connection keeps working; files that do not load leave the running certificate.
func TestTLSCertificateReload(t *testing.T) {
	d := startDemo(t)
	a, b, c := testcert.New(t, "a.example"), testcert.New(t, "b.example"), testcert.New(t, "c.example")
	certFile, keyFile := a.WriteFiles(t)

	t.Run("file-change", func(t *testing.T) {
		writePair(t, a, certFile, keyFile)
		cfg := newConfig(map[string]string{"demo": d.Addr().String()}, demoRoutes())
		poll := mapping.Duration(20 * time.Millisecond)
		cfg.TLS = &mapping.IngressTLS{Cert: certFile, Key: keyFile, ReloadInterval: &poll}
		g := startGateway(t, cfg, Options{})
		if cn := peerCN(t, g.addr); cn != "a.example" {
			t.Fatalf("certificate %q, want a.example", cn)
		}
		old, err := tls.Dial("tcp", g.addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer old.Close()
		br := bufio.NewReader(old)
		if s := getOn(t, old, br, "/api/users/1"); s != 200 {
			t.Fatalf("status %d", s)
		}
		// A broken file: the running certificate stays.
		if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		for i := 0; i < 3; i++ {
			if cn := peerCN(t, g.addr); cn != "a.example" {
				t.Fatalf("after a broken file: certificate %q, want a.example", cn)
			}
		}
		writePair(t, b, certFile, keyFile)
		testutil.Eventually(t, func() bool { return peerCN(t, g.addr) == "b.example" }, "the renewed certificate")
		// The connection made before the renewal is still served.
		if s := getOn(t, old, br, "/api/users/2"); s != 200 {
			t.Fatalf("old connection after the reload: status %d", s)
		}
		if cn := old.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "a.example" {
			t.Fatalf("old connection's certificate %q", cn)
		}
	})

	t.Run("update", func(t *testing.T) {
		writePair(t, a, certFile, keyFile)
		cfg := newConfig(map[string]string{"demo": d.Addr().String()}, demoRoutes())
		off := mapping.Duration(0)
		cfg.TLS = &mapping.IngressTLS{Cert: certFile, Key: keyFile, ReloadInterval: &off}
		g := startGateway(t, cfg, Options{})
		writePair(t, c, certFile, keyFile)
		time.Sleep(20 * time.Millisecond)
		if cn := peerCN(t, g.addr); cn != "a.example" {
			t.Fatalf("reload_interval 0 reloaded by itself: %q", cn)
		}
		table, err := mapping.Compile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.srv.Update(cfg, table); err != nil {
			t.Fatal(err)
		}
		if cn := peerCN(t, g.addr); cn != "c.example" {
			t.Fatalf("after Update: certificate %q, want c.example", cn)
		}
	})
}

// tls.client_ca with client_auth require and request; the verified subject reaches the backend as the
// gateway-set x-client-cert-subject header, which a client cannot set itself.
func TestTLSClientCertificates(t *testing.T) {
	sp := newSpecial()
	b := startBackend(t, sp.handler)
	server := testcert.New(t, "gw.example")
	alice := testcert.New(t, "alice")
	mallory := testcert.New(t, "mallory") // not signed by the client CA
	certFile, keyFile := server.WriteFiles(t)
	caFile, _ := alice.WriteFiles(t)

	for _, mode := range []string{mapping.ClientAuthRequire, mapping.ClientAuthRequest} {
		t.Run(mode, func(t *testing.T) {
			cfg := newConfig(map[string]string{"sp": b.addr}, []routeSpec{
				{name: "meta", method: "POST", path: "/meta", backend: "sp", interaction: mapping.InteractionRequestResponse, tag: "meta"},
				{name: "meta-fwd", method: "POST", path: "/meta-fwd", backend: "sp", interaction: mapping.InteractionRequestResponse, tag: "meta",
					mutate: func(r *mapping.Route) { r.ForwardHeaders = []string{"X-Client-Cert-Subject", "X-Trace"} }},
			})
			cfg.TLS = &mapping.IngressTLS{Cert: certFile, Key: keyFile, ClientCA: caFile, ClientAuth: mode}
			g := startGateway(t, cfg, Options{})
			call := func(cert *testcert.Cert, path string) (int, map[string]any, error) {
				tc := &tls.Config{RootCAs: server.Roots}
				if cert != nil {
					// sent whatever CAs the server lists (a client would not send mallory's by itself)
					tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert.Pair, nil }
				}
				hc := &http.Client{Timeout: testTimeout, Transport: &http.Transport{TLSClientConfig: tc}}
				req, _ := http.NewRequest("POST", "https://"+g.addr+path, strings.NewReader("{}"))
				req.Header.Set("X-Client-Cert-Subject", "CN=admin")
				req.Header.Set("X-Trace", "t1")
				resp, err := hc.Do(req)
				if err != nil {
					return 0, nil, err
				}
				defer resp.Body.Close()
				var got map[string]any
				body, _ := io.ReadAll(resp.Body)
				_ = json.Unmarshal(body, &got)
				return resp.StatusCode, got, nil
			}
			headers := func(m map[string]any) string {
				hs, _ := m["headers"].([]any)
				var out []string
				for _, h := range hs {
					out = append(out, h.(string))
				}
				return strings.Join(out, "|")
			}
			for _, path := range []string{"/meta", "/meta-fwd"} {
				status, got, err := call(alice, path)
				if err != nil || status != 201 {
					t.Fatalf("%s with a client certificate: %d %v", path, status, err)
				}
				h := headers(got)
				if !strings.Contains(h, "x-client-cert-subject: CN=alice") || strings.Contains(h, "CN=admin") {
					t.Fatalf("%s: backend saw headers %q; want the verified subject only", path, h)
				}
				if path == "/meta-fwd" && !strings.Contains(strings.ToLower(h), "x-trace: t1") {
					t.Fatalf("%s: other forwarded headers lost: %q", path, h)
				}
			}
			if _, _, err := call(mallory, "/meta"); err == nil {
				t.Fatal("a certificate from another CA was accepted")
			}
			status, got, err := call(nil, "/meta-fwd")
			switch mode {
			case mapping.ClientAuthRequire:
				if err == nil {
					t.Fatalf("require: a client without a certificate got %d", status)
				}
			case mapping.ClientAuthRequest:
				if err != nil || status != 201 {
					t.Fatalf("request: a client without a certificate: %d %v", status, err)
				}
				if h := headers(got); strings.Contains(h, "x-client-cert-subject") || strings.Contains(h, "CN=admin") {
					t.Fatalf("request: no certificate, but the backend saw %q", h)
				}
			}
		})
	}
}
