package ingress

import (
	"crypto/tls"
	"net"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

// The mTLS principal (tls.client_ca): a request whose connection presented a verified client certificate
// reaches RSocket backends with the principal entry message/x.rsgate.principal.v0 (package
// internal/principal, docs/METADATA.md), provider "mtls" and the leaf certificate's subject in RFC 2253
// form (crypto/x509's Name.String, e.g. "CN=alice,O=Example"), no scopes, no claims:
//
//   - HTTP-facing RSocket routes (request-response, fire-and-forget, request-stream, request-channel over
//     WebSocket, shadows and retries too): the entry goes where the entry of a verified token goes
//     (request.principal, appended by appendRequestMetadata), when the route's own auth did not produce a
//     principal. A route with auth and a verified token sends the token's principal only; the certificate
//     subject still arrives as the x-client-cert-subject header of the message/x.rsgate.http.v0 entry.
//   - interaction rsocket: every request the client sends on the session (REQUEST_*, not channel items
//     or METADATA_PUSH) gets the entry appended, as an authenticated session's principal is, when neither
//     the upgrade nor the SETUP gave an identity (ws_rsocket_trust.go). Client-written message/x.rsgate.*
//     entries are stripped (or refused) first, so the backend sees exactly one principal entry.
//
// The subject and the encoded entry are computed once per TLS connection, on its first request after the
// handshake, and kept on the connection (certConn): a request on an mTLS connection reads a pointer and
// allocates nothing for its identity. The certificate of a connection cannot change after the handshake
// (Go's server never renegotiates).

// certIdentity is the verified client certificate of one connection: its subject and its principal entry.
// Immutable once made; shared by every request of the connection.
type certIdentity struct {
	subject []byte // RFC 2253 string of the leaf's subject
	// entry is the whole composite entry message/x.rsgate.principal.v0, built by the same encoder as a
	// verified token's (ClientCertPrincipalEntry); nil when the subject is longer than the entry holds
	// (principal.MaxSubjectLen): such a request is refused (attachClientCert).
	entry []byte
}

// noCertIdentity marks a connection without a verified client certificate.
var noCertIdentity = &certIdentity{}

// newCertIdentity is the identity of a completed handshake's state: noCertIdentity without a verified chain.
func newCertIdentity(st *tls.ConnectionState) *certIdentity {
	if len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
		return noCertIdentity
	}
	subject := st.VerifiedChains[0][0].Subject.String()
	id := &certIdentity{subject: []byte(subject)}
	if entry, err := ClientCertPrincipalEntry(subject); err == nil {
		id.entry = entry
	}
	return id
}

// certListener hands out the TLS connections of the ingress listener as certConns (Server.Serve).
type certListener struct{ net.Listener }

func (l certListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*tls.Conn); ok {
		return &certConn{Conn: tc}, nil
	}
	return c, nil
}

// certConn is a client TLS connection that keeps its client certificate identity. It has every method of
// *tls.Conn (fasthttp's IsTLS and TLSConnectionState, the edge listener and socketOf see through it).
type certConn struct {
	*tls.Conn
	id atomic.Pointer[certIdentity] // nil: not computed yet
}

// identity is the connection's client certificate identity (noCertIdentity: none). It is computed once,
// after the handshake; two first requests racing compute equal values.
func (c *certConn) identity() *certIdentity {
	if id := c.id.Load(); id != nil {
		return id
	}
	st := c.Conn.ConnectionState()
	if !st.HandshakeComplete {
		return noCertIdentity // not cached: the handshake has yet to verify anything
	}
	id := newCertIdentity(&st)
	c.id.Store(id)
	return id
}

// certConnOf finds the certConn under a connection fasthttp hands out (the certConn itself, or the edge
// listener's limitedTLSConn around it), or nil.
func certConnOf(c net.Conn) *certConn {
	switch v := c.(type) {
	case *certConn:
		return v
	case *limitedTLSConn:
		cc, _ := v.tls.(*certConn)
		return cc
	}
	return nil
}

// connCertIdentity is the verified client certificate identity of the request's connection, or nil (no
// TLS, no verified certificate). Connections of Server.Serve's listener have it cached; any other TLS
// connection (a listener that is not ours) gets it computed per request.
func connCertIdentity(ctx *fasthttp.RequestCtx) *certIdentity {
	var id *certIdentity
	if cc := certConnOf(ctx.Conn()); cc != nil {
		id = cc.identity()
	} else if st := ctx.TLSConnectionState(); st != nil {
		id = newCertIdentity(st)
	}
	if id == noCertIdentity {
		return nil
	}
	return id
}

// clientCert is the request's verified client certificate identity when the edge verifies client
// certificates (tls.client_ca), else nil. It does not allocate on connections of Server.Serve.
func (s *Server) clientCert(ctx *fasthttp.RequestCtx) *certIdentity {
	if s.certs == nil || !s.certs.mTLS.Load() {
		return nil
	}
	return connCertIdentity(ctx)
}

// clientCertEntry is the mTLS principal entry of the request's connection, or nil.
func (s *Server) clientCertEntry(ctx *fasthttp.RequestCtx) []byte {
	if id := s.clientCert(ctx); id != nil {
		return id.entry
	}
	return nil
}

// attachClientCert gives the request the mTLS principal entry of its connection unless the route's auth
// already gave it a principal (applyPolicies, after auth). It returns false after answering 400 for a
// certificate subject the entry cannot hold (over 65,535 bytes, BAD_REQUEST): the request must not reach a
// backend looking anonymous.
func (s *Server) attachClientCert(ctx *fasthttp.RequestCtx, rq *request) bool {
	id := s.clientCert(ctx)
	if id == nil {
		return true
	}
	if id.entry == nil {
		writeJSONError(ctx, fasthttp.StatusBadRequest, "client certificate subject longer than the principal entry holds", CodeBadRequest, nil)
		return false
	}
	if rq.principal == nil {
		rq.principal = id.entry
	}
	rq.certSubject = id.subject
	return true
}

// principalEntry is the principal entry the relay appends to the session's requests: the identity the
// upgrade or the SETUP verified, else the connection's mTLS principal, else nil.
func (ss *rsSession) principalEntry() []byte {
	if ss.id != nil {
		return ss.id.Entry
	}
	return ss.cert
}
