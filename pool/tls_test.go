package pool

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rsgate/rsgate/mapping"
)

// testCert writes a self-signed certificate for "backend.test" and 127.0.0.1 and returns the server
// config and the PEM file paths.
func testCert(t *testing.T) (srv *tls.Config, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "backend.test"},
		DNSNames:              []string{"backend.test"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, certFile, keyFile
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
	waitFor(t, "TLS connection", 5*time.Second, p.Ready)
	if _, err := request(t, p); err != nil {
		t.Fatal(err)
	}

	// Without the CA the handshake fails: the slot stays down and records why.
	bad := testBackend("tls-untrusted", s.addr)
	bad.TLS = &mapping.TLS{}
	q := newPool(t, bad, Options{})
	q.Start()
	waitFor(t, "a failed TLS dial", 5*time.Second, func() bool { return connStats(q, s.addr).DialFailures > 0 })
	if q.Ready() {
		t.Fatal("pool with an untrusted certificate is ready")
	}
	if st := connStats(q, s.addr); st.LastError == "" {
		t.Error("no last error recorded for the failed TLS dial")
	}
}
