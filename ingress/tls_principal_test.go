package ingress

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"net"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/rsgate/rsgate/internal/principal"
	"github.com/rsgate/rsgate/internal/testcert"
)

// mtlsConn returns the server side of a completed TLS handshake on loopback: client presents cert (nil:
// none) and the server verifies it against cert's own CA. The client's side is drained and closed with
// the test.
func mtlsConn(tb testing.TB, cert *testcert.Cert) *tls.Conn {
	tb.Helper()
	server := testcert.New(tb, "gw.example")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	scfg := server.ServerConfig()
	scfg.ClientAuth = tls.VerifyClientCertIfGiven
	if cert != nil {
		scfg.ClientCAs = cert.Roots
	}
	ccfg := &tls.Config{RootCAs: server.Roots, ServerName: "gw.example"}
	if cert != nil {
		ccfg.Certificates = []tls.Certificate{cert.Pair}
	}
	errc := make(chan error, 1)
	go func() {
		c, err := tls.Dial("tcp", ln.Addr().String(), ccfg)
		if err == nil {
			tb.Cleanup(func() { _ = c.Close() })
			go func() { _, _ = io.Copy(io.Discard, c) }() // session tickets, whatever the server writes
		}
		errc <- err
	}()
	raw, err := ln.Accept()
	if err != nil {
		tb.Fatal(err)
	}
	sc := tls.Server(raw, scfg)
	tb.Cleanup(func() { _ = sc.Close() })
	if err := sc.Handshake(); err != nil {
		tb.Fatal(err)
	}
	if err := <-errc; err != nil {
		tb.Fatal(err)
	}
	return sc
}

// mtlsServer is a Server that verifies client certificates (as with tls.client_ca) and a request context
// on conn.
func mtlsServer(conn net.Conn) (*Server, *fasthttp.RequestCtx) {
	s := &Server{certs: &tlsCerts{}}
	s.certs.mTLS.Store(true)
	ctx := new(fasthttp.RequestCtx)
	ctx.Init2(conn, nil, false)
	return s, ctx
}

// The identity is computed once per connection, found under the edge listener's wrapper too, equal to what
// ClientCertPrincipalEntry encodes, and absent without a verified certificate or without client_ca.
func TestClientCertIdentityCached(t *testing.T) {
	alice := testcert.New(t, "alice")
	sc := mtlsConn(t, alice)
	cc := &certConn{Conn: sc}
	want, err := ClientCertPrincipalEntry("CN=alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, conn := range []net.Conn{cc, &limitedTLSConn{limitedConn: &limitedConn{Conn: cc}, tls: cc}} {
		s, ctx := mtlsServer(conn)
		id := s.clientCert(ctx)
		if id == nil || string(id.subject) != "CN=alice" || !bytes.Equal(id.entry, want) {
			t.Fatalf("%T: identity %+v", conn, id)
		}
		if again := s.clientCert(ctx); again != id {
			t.Fatalf("%T: identity computed again", conn)
		}
		if string(s.clientSubject(ctx)) != "CN=alice" || !bytes.Equal(s.clientCertEntry(ctx), want) {
			t.Fatal("clientSubject / clientCertEntry")
		}
		rq := &request{}
		if !s.attachClientCert(ctx, rq) || !bytes.Equal(rq.principal, want) {
			t.Fatalf("attachClientCert: %q", rq.principal)
		}
		token := []byte("token principal")
		rq.principal = token
		if !s.attachClientCert(ctx, rq) || !bytes.Equal(rq.principal, token) {
			t.Fatal("the route auth's principal was replaced")
		}
		s.certs.mTLS.Store(false) // client_ca removed by a reload
		if s.clientCert(ctx) != nil {
			t.Fatal("identity without client_ca")
		}
	}
	v, err := principal.Parse(want[1+len(principal.MIME)+3:])
	if err != nil || string(v.Provider) != principal.ProviderMTLS || string(v.Subject) != "CN=alice" || v.Scopes.Len() != 0 || v.Claims.Len() != 0 {
		t.Fatalf("entry %q: %v", want, err)
	}

	// A TLS connection that is not ours (no certConn): computed per request, same result.
	s, ctx := mtlsServer(sc)
	if id := s.clientCert(ctx); id == nil || !bytes.Equal(id.entry, want) {
		t.Fatalf("plain *tls.Conn: %+v", id)
	}
	// No certificate presented: nothing, and the absence is cached too.
	anon := &certConn{Conn: mtlsConn(t, nil)}
	s, ctx = mtlsServer(anon)
	if id := s.clientCert(ctx); id != nil || anon.id.Load() != noCertIdentity {
		t.Fatalf("anonymous connection: %+v", id)
	}
	if rq := (&request{}); !s.attachClientCert(ctx, rq) || rq.principal != nil {
		t.Fatal("anonymous connection got a principal")
	}
	// Plain TCP: nothing.
	s, ctx = mtlsServer(&net.TCPConn{})
	if s.clientCert(ctx) != nil {
		t.Fatal("identity on a plain connection")
	}
}

// A subject the principal entry cannot hold is refused with 400, never forwarded as anonymous.
func TestClientCertSubjectTooLong(t *testing.T) {
	long := &x509.Certificate{Subject: pkix.Name{CommonName: string(bytes.Repeat([]byte("a"), principal.MaxSubjectLen))}}
	id := newCertIdentity(&tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{long}}})
	if id == noCertIdentity || id.entry != nil || len(id.subject) <= principal.MaxSubjectLen {
		t.Fatalf("identity of a long subject: entry %d bytes, subject %d bytes", len(id.entry), len(id.subject))
	}
	cc := &certConn{}
	cc.id.Store(id)
	s, ctx := mtlsServer(cc)
	rq := &request{}
	if s.attachClientCert(ctx, rq) || ctx.Response.StatusCode() != fasthttp.StatusBadRequest || rq.principal != nil {
		t.Fatalf("long subject: %d", ctx.Response.StatusCode())
	}
	if newCertIdentity(&tls.ConnectionState{}) != noCertIdentity {
		t.Fatal("no verified chain")
	}
}
