package main

import (
	"crypto/tls"
	"fmt"
	"os"
	"testing"

	"github.com/rsgate/rsgate/internal/demo"
	"github.com/rsgate/rsgate/internal/testcert"
)

// SIGHUP (reload) reads the ingress certificate again: new connections get the renewed one, a connection
// made before keeps working.
func TestReloadRenewsIngressCertificate(t *testing.T) {
	d, err := demo.Serve("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	oldCert, newCert := testcert.New(t, "old.example"), testcert.New(t, "new.example")
	certFile, keyFile := oldCert.WriteFiles(t)
	g, _ := startFromYAML(t, fmt.Sprintf(testConfig, d.Addr(), extraRoute)+fmt.Sprintf("tls: {cert: %q, key: %q, reload_interval: 0s}\n", certFile, keyFile))
	defer g.shutdown()
	cn := func(c *tls.Conn) string { return c.ConnectionState().PeerCertificates[0].Subject.CommonName }
	dial := func() *tls.Conn {
		c, err := tls.Dial("tcp", g.listenAddr(), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	before := dial()
	defer before.Close()
	if cn(before) != "old.example" {
		t.Fatalf("certificate %q", cn(before))
	}
	if err := os.WriteFile(keyFile, newCert.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, newCert.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := g.reload(); err != nil {
		t.Fatal(err)
	}
	after := dial()
	defer after.Close()
	if cn(after) != "new.example" {
		t.Fatalf("after reload: certificate %q, want new.example", cn(after))
	}
	if _, err := fmt.Fprintf(before, "GET /api/users/1 HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 12)
	if _, err := before.Read(buf); err != nil || string(buf) != "HTTP/1.1 200" {
		t.Fatalf("connection from before the reload: %q %v", buf, err)
	}
}
