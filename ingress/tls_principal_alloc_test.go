//go:build !race

package ingress

import (
	"testing"

	"github.com/rsgate/rsgate/internal/testcert"
)

// TestClientCertPrincipalAllocs: on a connection with a verified client certificate, finding the identity,
// attaching its principal entry and writing the request metadata (gateway entry with
// x-client-cert-subject, principal entry) allocates nothing: the identity is cached on the connection.
func TestClientCertPrincipalAllocs(t *testing.T) {
	conn := &certConn{Conn: mtlsConn(t, testcert.New(t, "alice"))}
	s, ctx := mtlsServer(conn)
	rt, ps, mr := metadataFixture(t)
	buf := make([]byte, 0, 512)
	rq := &request{}
	s.clientCert(ctx) // the connection's first request computes it
	n := testing.AllocsPerRun(500, func() {
		rq.principal = nil
		if !s.attachClientCert(ctx, rq) || rq.principal == nil {
			t.Fatal("no principal")
		}
		m := *mr
		m.clientSubject, m.principal = s.clientSubject(ctx), rq.principal
		var err error
		if buf, err = appendRequestMetadata(buf, rt, ps, &m); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Fatalf("%v allocs per mTLS request, want 0", n)
	}
}

// BenchmarkClientCertPrincipal: the per-request cost of the mTLS identity, cached on the connection (the
// gateway's path) against computing it per request from the TLS state (what verifiedSubject did, plus
// the principal entry's encoding).
func BenchmarkClientCertPrincipal(b *testing.B) {
	conn := &certConn{Conn: mtlsConn(b, testcert.New(b, "alice"))}
	s, ctx := mtlsServer(conn)
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if s.clientCertEntry(ctx) == nil {
				b.Fatal("none")
			}
		}
	})
	b.Run("per-request", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if newCertIdentity(ctx.TLSConnectionState()).entry == nil {
				b.Fatal("none")
			}
		}
	})
}
