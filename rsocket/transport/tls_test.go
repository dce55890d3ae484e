package transport

import (
	"context"
	"crypto/tls"
	"sync"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testcert"
)

var (
	testCertOnce sync.Once
	testCert     *testcert.Cert
)

// testTLS returns server and client configs around a self-signed certificate for 127.0.0.1,
// generated once per test binary.
func testTLS(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	testCertOnce.Do(func() { testCert = testcert.New(t) })
	return testCert.ServerConfig(), testCert.ClientConfig()
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
