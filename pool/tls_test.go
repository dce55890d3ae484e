package pool

import (
	"crypto/tls"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testcert"
	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/mapping"
)

// testCert writes a self-signed certificate for "backend.test" and 127.0.0.1 and returns the server
// config and the PEM file paths.
func testCert(t *testing.T) (srv *tls.Config, certFile, keyFile string) {
	t.Helper()
	c := testcert.New(t, "backend.test")
	certFile, keyFile = c.WriteFiles(t)
	return c.ServerConfig(), certFile, keyFile
}

func TestTLSConfig(t *testing.T) {
	_, certFile, keyFile := testCert(t)
	if cfg, err := TLSConfig(nil); cfg != nil || err != nil {
		t.Fatalf("TLSConfig(nil) = %v, %v", cfg, err)
	}
	cfg, err := TLSConfig(&mapping.TLS{CA: certFile, Cert: certFile, Key: keyFile, ServerName: "backend.test", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RootCAs == nil || len(cfg.Certificates) != 1 || cfg.ServerName != "backend.test" || !cfg.InsecureSkipVerify {
		t.Fatalf("TLSConfig: %+v", cfg)
	}
	for _, tc := range []struct {
		in    mapping.TLS
		field string
	}{
		{mapping.TLS{CA: filepath.Join(t.TempDir(), "missing.pem")}, "tls.ca"},
		{mapping.TLS{CA: keyFile}, "tls.ca"}, // no certificate in it
		{mapping.TLS{Cert: certFile}, "tls.key"},
		{mapping.TLS{Key: keyFile}, "tls.cert"},
		{mapping.TLS{Cert: keyFile, Key: certFile}, "tls.cert"},
	} {
		_, err := TLSConfig(&tc.in)
		var te *TLSError
		if !errors.As(err, &te) || te.Field != tc.field {
			t.Errorf("TLSConfig(%+v) = %v, want a *TLSError for %s", tc.in, err, tc.field)
		}
	}
}

func TestTLSDial(t *testing.T) {
	srvTLS, certFile, _ := testCert(t)
	s := &testServer{t: t, addr: "127.0.0.1:0", tls: srvTLS}
	s.start()
	t.Cleanup(s.stop)

	bk := testBackend("tls", s.addr)
	bk.TLS = &mapping.TLS{CA: certFile, ServerName: "backend.test"}
	p := newPool(t, bk, Options{})
	p.Start()
	testutil.EventuallyWithin(t, 5*time.Second, p.Ready, "TLS connection")
	if _, err := request(t, p); err != nil {
		t.Fatal(err)
	}

	// Without the CA the handshake fails: the slot stays down and records why.
	bad := testBackend("tls-untrusted", s.addr)
	bad.TLS = &mapping.TLS{}
	q := newPool(t, bad, Options{})
	q.Start()
	testutil.EventuallyWithin(t, 5*time.Second, func() bool { return connStats(q, s.addr).DialFailures > 0 }, "a failed TLS dial")
	if q.Ready() {
		t.Fatal("pool with an untrusted certificate is ready")
	}
	if st := connStats(q, s.addr); st.LastError == "" {
		t.Error("no last error recorded for the failed TLS dial")
	}
}

// mTLS: a backend that requires a client certificate accepts the pool that presents the configured
// cert/key, and refuses one without it.
func TestMutualTLSDial(t *testing.T) {
	server := testcert.New(t, "backend.test")
	client := testcert.New(t, "gateway.test")
	srvTLS := server.ServerConfig()
	srvTLS.ClientAuth = tls.RequireAndVerifyClientCert
	srvTLS.ClientCAs = client.Roots
	s := &testServer{t: t, addr: "127.0.0.1:0", tls: srvTLS}
	s.start()
	t.Cleanup(s.stop)
	caFile, _ := server.WriteFiles(t)
	certFile, keyFile := client.WriteFiles(t)

	bk := testBackend("mtls", s.addr)
	bk.TLS = &mapping.TLS{CA: caFile, Cert: certFile, Key: keyFile, ServerName: "backend.test"}
	p := newPool(t, bk, Options{})
	p.Start()
	testutil.EventuallyWithin(t, 5*time.Second, p.Ready, "mTLS connection")
	if _, err := request(t, p); err != nil {
		t.Fatal(err)
	}

	// The same backend without a client certificate: the server refuses the handshake, so no request
	// ever succeeds on such a connection.
	anon := testBackend("mtls-anonymous", s.addr)
	anon.TLS = &mapping.TLS{CA: caFile, ServerName: "backend.test"}
	q := newPool(t, anon, Options{})
	q.Start()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if q.Ready() {
			if _, err := request(t, q); err == nil {
				t.Fatal("a request succeeded without a client certificate")
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}
