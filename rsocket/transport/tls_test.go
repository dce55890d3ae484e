package transport

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

var (
	testCertOnce sync.Once
	testServerTLS,
	testClientTLS *tls.Config
)

// testTLS returns server and client configs around a self-signed certificate for 127.0.0.1,
// generated once per test binary.
func testTLS(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	testCertOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: "rsgate transport test"},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(time.Hour),
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
			ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
			BasicConstraintsValid: true,
			IsCA:                  true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AddCert(cert)
		testServerTLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
		testClientTLS = &tls.Config{RootCAs: pool}
	})
	if testServerTLS == nil {
		t.Fatal("test certificate generation failed")
	}
	return testServerTLS.Clone(), testClientTLS.Clone()
}

func TestTLSLoopback(t *testing.T) {
	srvCfg, cliCfg := testTLS(t)
	ln, err := ListenTCP("127.0.0.1:0", srvCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
		} else if err := c.(*streamConn).nc.(*tls.Conn).Handshake(); err != nil {
			// The server handshake is lazy (first read or write); drive it so Dial can return.
			t.Error(err)
		}
		accepted <- c
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, err := DialTCP(ctx, ln.Addr().String(), cliCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server := <-accepted
	if server == nil {
		t.FailNow()
	}
	defer server.Close()
	testExchange(t, client, server)
	testCloseSemantics(t, server, client)
}

func TestTLSUntrustedCertificate(t *testing.T) {
	srvCfg, _ := testTLS(t)
	ln, err := ListenTCP("127.0.0.1:0", srvCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.ReadFrame() // drives the server side of the handshake
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := DialTCP(ctx, ln.Addr().String(), &tls.Config{})
	if err == nil {
		c.Close()
		t.Fatal("dial with an empty root pool succeeded against a self-signed certificate")
	}
}
