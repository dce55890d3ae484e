package ingress

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/rsgate/rsgate/internal/auth/authtest"
	"github.com/rsgate/rsgate/internal/httpmeta"
	"github.com/rsgate/rsgate/internal/principal"
	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/internal/testutil/rstest"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/extension"
	"github.com/rsgate/rsgate/rsocket/frame"
	"github.com/rsgate/rsgate/rsocket/transport"
)

// Hostile-client end-to-end tests of authentication (auth.go) and trusted metadata on the rsocket relay
// (ws_rsocket_trust.go).

const (
	testIss = "https://login.example.com"
	testAud = "api"
)

// seen is what the principal backend received on one request.
type seen struct {
	Tag        string   `json:"tag"`
	Entries    []string `json:"entries"` // MIME type of every composite entry, in order
	Principals []struct {
		Subject  string            `json:"subject"`
		Provider string            `json:"provider"`
		Scopes   []string          `json:"scopes"`
		Claims   map[string]string `json:"claims"`
	} `json:"principals"`
	Bearer string `json:"bearer,omitempty"`
}

func inspect(md []byte) seen {
	var s seen
	it := extension.NewCompositeIter(md)
	for it.Next() {
		e := it.Entry()
		s.Entries = append(s.Entries, e.MimeString())
		switch {
		case e.Is(extension.MimeRouting):
			tag, _ := extension.FirstRoutingTag(e.Value)
			s.Tag = string(tag)
		case e.Is(extension.MimeAuth):
			if a, err := extension.ParseAuth(e.Value); err == nil {
				tok, _ := a.Bearer()
				s.Bearer = string(tok)
			}
		case e.Is(principal.MIME):
			v, err := principal.Parse(e.Value)
			if err != nil {
				continue
			}
			p := struct {
				Subject  string            `json:"subject"`
				Provider string            `json:"provider"`
				Scopes   []string          `json:"scopes"`
				Claims   map[string]string `json:"claims"`
			}{Subject: string(v.Subject), Provider: string(v.Provider), Claims: map[string]string{}}
			for v.Scopes.Next() {
				p.Scopes = append(p.Scopes, string(v.Scopes.Value()))
			}
			for v.Claims.Next() {
				p.Claims[string(v.Claims.Name())] = string(v.Claims.Value())
			}
			s.Principals = append(s.Principals, p)
		}
	}
	return s
}

// principalBackend answers every request-response with what it saw (JSON seen) and records metadata
// pushes and fire-and-forgets.
type principalBackend struct {
	mu     sync.Mutex
	pushes []seen
	fnfs   []seen
	items  []seen // channel items, the first (REQUEST_CHANNEL) included
	got    chan struct{}
}

// itemRecorder records the items of a channel.
type itemRecorder struct{ b *principalBackend }

func (r itemRecorder) OnNext(p rsocket.Payload, complete bool) {
	r.b.mu.Lock()
	r.b.items = append(r.b.items, inspect(p.Metadata))
	r.b.mu.Unlock()
	r.b.got <- struct{}{}
}
func (r itemRecorder) OnComplete()   {}
func (r itemRecorder) OnError(error) {}

func (b *principalBackend) handler() rsocket.Handler {
	return &rsocket.HandlerFuncs{
		RequestResponseFunc: func(req rsocket.Payload, s *rsocket.Stream) {
			out, _ := json.Marshal(inspect(req.Metadata))
			_ = s.Respond(rsocket.Payload{Data: out})
		},
		FireAndForgetFunc: func(req rsocket.Payload) {
			b.mu.Lock()
			b.fnfs = append(b.fnfs, inspect(req.Metadata))
			b.mu.Unlock()
			b.got <- struct{}{}
		},
		RequestChannelFunc: func(req rsocket.Payload, _ uint32, _ bool, s *rsocket.Stream) rsocket.Subscriber {
			itemRecorder{b}.OnNext(req, false)
			s.Request(16)
			return itemRecorder{b}
		},
		MetadataPushFunc: func(md []byte) {
			b.mu.Lock()
			b.pushes = append(b.pushes, inspect(md))
			b.mu.Unlock()
			b.got <- struct{}{}
		},
	}
}

func startPrincipalBackend(t *testing.T) (*principalBackend, string) {
	pb := &principalBackend{got: make(chan struct{}, 16)}
	be := startBackend(t, pb.handler)
	return pb, be.addr
}

func decodeSeen(t *testing.T, data []byte) seen {
	t.Helper()
	var s seen
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("backend answer %q: %v", data, err)
	}
	return s
}

// authKeys are the test signing keys: the JWK Set holds rs, ec, ed and hs.
type authKeys struct {
	rs, ec, ed, hs *authtest.Key
}

func newAuthKeys() authKeys {
	return authKeys{rs: authtest.RSA("rs", "RS256", 0), ec: authtest.EC("ec"), ed: authtest.Ed("ed"), hs: authtest.HMAC("hs", "HS256")}
}

func (k authKeys) jwks() []byte { return authtest.JWKS(k.rs, k.ec, k.ed, k.hs) }

func writeJWKS(t testing.TB, doc []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func jwtProvider(name, file string) *mapping.AuthProvider {
	p := mapping.NewAuthProvider(name)
	p.Type, p.JWKSFile, p.Issuer, p.Audiences = mapping.AuthJWT, file, testIss, []string{testAud}
	p.MinRefreshInterval = 0
	p.ForwardClaims = []string{"email", "tenant"}
	return p
}

func apiKeyProvider(name string, keys map[string]string) *mapping.AuthProvider {
	p := mapping.NewAuthProvider(name)
	p.Type, p.Header = mapping.AuthAPIKey, "X-API-Key"
	for n, k := range keys {
		sum := sha256.Sum256([]byte(k))
		p.Keys = append(p.Keys, mapping.APIKey{Name: n, SHA256: hex.EncodeToString(sum[:])})
	}
	return p
}

func claims(sub string, ttl time.Duration, extra map[string]any) jwt.MapClaims {
	return authtest.Claims(sub, testIss, testAud, ttl, extra)
}

func authHeader(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// TestAuthJWTMatrixE2E: the JWT matrix over HTTP, each answer as the error table says.
func TestAuthJWTMatrixE2E(t *testing.T) {
	_, addr := startPrincipalBackend(t)
	k := newAuthKeys()
	jwksPath := writeJWKS(t, k.jwks())
	cfg := newConfig(map[string]string{"b": addr}, []routeSpec{
		{name: "me", method: "GET", path: "/me", backend: "b", interaction: mapping.InteractionRequestResponse, tag: "me",
			mutate: func(r *mapping.Route) { r.Auth = &mapping.RouteAuth{Provider: "users", Scopes: []string{"profile"}} }},
		{name: "open", method: "GET", path: "/open", backend: "b", interaction: mapping.InteractionRequestResponse, tag: "open"},
	})
	cfg.Auth = map[string]*mapping.AuthProvider{"users": jwtProvider("users", jwksPath)}
	g := startGateway(t, cfg, Options{})
	g.waitReady()

	good := func(key *authtest.Key) string {
		return key.Sign(claims("alice", time.Minute, map[string]any{"scope": "profile read", "email": "alice@example.com"}))
	}
	for _, key := range []*authtest.Key{k.rs, k.ec, k.ed, k.hs} {
		r := g.do("GET", "/me", "", authHeader(good(key))...)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", key.Alg, r.status, r.body)
		}
		s := decodeSeen(t, []byte(r.body))
		if len(s.Principals) != 1 || s.Principals[0].Subject != "alice" || s.Principals[0].Provider != "users" ||
			strings.Join(s.Principals[0].Scopes, " ") != "profile read" || s.Principals[0].Claims["email"] != "alice@example.com" {
			t.Fatalf("%s: backend saw %+v", key.Alg, s)
		}
	}
	// scp as an array grants scopes too.
	if r := g.do("GET", "/me", "", authHeader(k.ec.Sign(claims("bob", time.Minute, map[string]any{"scp": []string{"profile"}})))...); r.status != 200 {
		t.Fatalf("scp: %d %s", r.status, r.body)
	}
	// A route without auth gets no principal entry.
	if s := decodeSeen(t, []byte(g.do("GET", "/open", "", authHeader(good(k.rs))...).body)); len(s.Principals) != 0 {
		t.Fatalf("open route: %+v", s)
	}

	// Missing token: 401, WWW-Authenticate without an error parameter (RFC 6750 3.1).
	r := g.do("GET", "/me", "")
	jsonError(t, r, 401, CodeUnauthorized)
	if h := r.header.Get("WWW-Authenticate"); h != `Bearer realm="rsgate"` {
		t.Fatalf("missing: WWW-Authenticate %q", h)
	}
	rsPriv := k.rs.Private.(*rsa.PrivateKey)
	der, _ := x509.MarshalPKIXPublicKey(&rsPriv.PublicKey)
	forged := authtest.EC("ec") // the right kid, another key
	cases := []struct{ name, token, reason string }{
		{"expired", k.rs.Sign(claims("alice", -time.Hour, map[string]any{"scope": "profile"})), "token expired"},
		{"not yet valid", k.rs.Sign(claims("alice", time.Hour, map[string]any{"scope": "profile", "nbf": time.Now().Add(time.Hour).Unix()})), "token not yet valid"},
		{"wrong issuer", k.rs.Sign(authtest.Claims("alice", "https://evil.example.com", testAud, time.Minute, map[string]any{"scope": "profile"})), "invalid issuer"},
		{"wrong audience", k.rs.Sign(authtest.Claims("alice", testIss, "other", time.Minute, map[string]any{"scope": "profile"})), "invalid audience"},
		{"bad signature", forged.Sign(claims("alice", time.Minute, map[string]any{"scope": "profile"})), "invalid signature"},
		{"tampered payload", tamper(good(k.rs)), "invalid signature"},
		{"alg none", authtest.None(claims("alice", time.Minute, map[string]any{"scope": "profile"})), "algorithm not allowed"},
		{"HS256 with the RSA public key (DER)", authtest.Confused(k.rs, claims("alice", time.Minute, map[string]any{"scope": "profile"}), der), "algorithm not allowed"},
		{"HS256 with the RSA modulus", authtest.Confused(k.rs, claims("alice", time.Minute, map[string]any{"scope": "profile"}), rsPriv.N.Bytes()), "algorithm not allowed"},
		{"unknown kid", authtest.EC("other").Sign(claims("alice", time.Minute, nil)), "unknown signing key"},
		{"garbage", "abc.def.ghi", "malformed token"},
	}
	for _, tc := range cases {
		r := g.do("GET", "/me", "", authHeader(tc.token)...)
		jsonError(t, r, 401, CodeUnauthorized)
		want := `Bearer error="invalid_token", error_description="` + tc.reason + `"`
		if h := r.header.Get("WWW-Authenticate"); h != want {
			t.Errorf("%s: WWW-Authenticate %q, want %q", tc.name, h, want)
		}
	}
	// Missing scope: 403 insufficient_scope.
	r = g.do("GET", "/me", "", authHeader(k.rs.Sign(claims("carol", time.Minute, map[string]any{"scope": "read"})))...)
	jsonError(t, r, 403, CodeInsufficientScope)
	if h := r.header.Get("WWW-Authenticate"); h != `Bearer error="insufficient_scope", scope="profile"` {
		t.Fatalf("403: WWW-Authenticate %q", h)
	}

	// Rotation: a key added by rewriting the file is picked up on its first token (unknown kid -> reload);
	// the removed keys' tokens are rejected from then on, even ones verified (cached) before.
	before := good(k.rs)
	if r := g.do("GET", "/me", "", authHeader(before)...); r.status != 200 {
		t.Fatal(r.status)
	}
	k2 := authtest.Ed("k2")
	time.Sleep(20 * time.Millisecond)
	if err := os.WriteFile(jwksPath, authtest.JWKS(k2), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := g.do("GET", "/me", "", authHeader(good(k2))...); r.status != 200 {
		t.Fatalf("rotated key: %d %s", r.status, r.body)
	}
	if r := g.do("GET", "/me", "", authHeader(before)...); r.status != 401 {
		t.Fatalf("removed key still accepted: %d", r.status)
	}
}

// tamper changes the payload of a signed token (sub alice -> mallory) and keeps the signature.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	p, _ := jwtSegment(parts[1])
	p = strings.Replace(p, `"alice"`, `"mallory"`, 1)
	parts[1] = jwtEncode(p)
	return strings.Join(parts, ".")
}

func jwtSegment(s string) (string, error) {
	b, err := jwtB64.DecodeString(s)
	return string(b), err
}

func jwtEncode(s string) string { return jwtB64.EncodeToString([]byte(s)) }

var jwtB64 = base64.RawURLEncoding

// TestAuthJWKSURLRotationE2E: a jwks_url key set, rotated on the server, is refetched on an unknown kid.
func TestAuthJWKSURLRotationE2E(t *testing.T) {
	_, addr := startPrincipalBackend(t)
	k1, k2 := authtest.EC("k1"), authtest.RSA("k2", "PS256", 1)
	var doc atomic.Pointer[[]byte]
	d := authtest.JWKS(k1)
	doc.Store(&d)
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		_, _ = w.Write(*doc.Load())
	}))
	defer srv.Close()
	p := jwtProvider("users", "")
	p.JWKSFile, p.JWKSURL = "", srv.URL+"/.well-known/jwks.json"
	cfg := newConfig(map[string]string{"b": addr}, []routeSpec{
		{name: "me", method: "GET", path: "/me", backend: "b", interaction: mapping.InteractionRequestResponse, tag: "me",
			mutate: func(r *mapping.Route) { r.Auth = &mapping.RouteAuth{Provider: "users"} }},
	})
	cfg.Auth = map[string]*mapping.AuthProvider{"users": p}
	g := startGateway(t, cfg, Options{})
	g.waitReady()
	if r := g.do("GET", "/me", "", authHeader(k1.Sign(claims("a", time.Minute, nil)))...); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	d2 := authtest.JWKS(k1, k2)
	doc.Store(&d2)
	if r := g.do("GET", "/me", "", authHeader(k2.Sign(claims("b", time.Minute, nil)))...); r.status != 200 {
		t.Fatalf("after rotation: %d %s", r.status, r.body)
	}
	if n := fetches.Load(); n != 2 {
		t.Fatalf("%d JWKS fetches, want 2", n)
	}
}

// TestAuthAPIKeyE2E: API keys in the configured header; wrong and missing keys get 401.
func TestAuthAPIKeyE2E(t *testing.T) {
	_, addr := startPrincipalBackend(t)
	cfg := newConfig(map[string]string{"b": addr}, []routeSpec{
		{name: "p", method: "POST", path: "/partners", backend: "b", interaction: mapping.InteractionRequestResponse, tag: "p",
			mutate: func(r *mapping.Route) { r.Auth = &mapping.RouteAuth{Provider: "partners"} }},
	})
	cfg.Auth = map[string]*mapping.AuthProvider{"partners": apiKeyProvider("partners", map[string]string{"acme": "acme-key-1", "globex": "globex-key-2"})}
	g := startGateway(t, cfg, Options{})
	g.waitReady()
	r := g.do("POST", "/partners", "{}", "X-API-Key", "globex-key-2")
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if s := decodeSeen(t, []byte(r.body)); len(s.Principals) != 1 || s.Principals[0].Subject != "globex" || s.Principals[0].Provider != "partners" {
		t.Fatalf("%+v", s)
	}
	r = g.do("POST", "/partners", "{}", "X-API-Key", "acme-key-2")
	jsonError(t, r, 401, CodeUnauthorized)
	if h := r.header.Get("WWW-Authenticate"); h != `APIKey error="invalid_key", error_description="unknown API key"` {
		t.Fatalf("wrong key: %q", h)
	}
	r = g.do("POST", "/partners", "{}", authHeader("acme-key-1")...) // the key in the wrong header
	jsonError(t, r, 401, CodeUnauthorized)
	if h := r.header.Get("WWW-Authenticate"); h != `APIKey realm="rsgate", header="X-API-Key"` {
		t.Fatalf("missing key: %q", h)
	}
}

// TestAuthPrincipalNotForgeableHTTP: whatever headers a client sends (forwarded or not), the backend sees
// exactly one principal entry, the gateway's.
func TestAuthPrincipalNotForgeableHTTP(t *testing.T) {
	_, addr := startPrincipalBackend(t)
	forgedValue, _ := principal.Append(nil, &principal.Principal{Subject: "admin", Provider: "users"})
	forgedEntry := string(principal.AppendEntry(nil, forgedValue))
	cfg := newConfig(map[string]string{"b": addr}, []routeSpec{
		{name: "me", method: "GET", path: "/me", backend: "b", interaction: mapping.InteractionRequestResponse, tag: "me",
			mutate: func(r *mapping.Route) {
				r.Auth = &mapping.RouteAuth{Provider: "partners"}
				r.ForwardHeaders = []string{"X-Principal", "X-User"}
			}},
	})
	cfg.Auth = map[string]*mapping.AuthProvider{"partners": apiKeyProvider("partners", map[string]string{"acme": "k"})}
	g := startGateway(t, cfg, Options{})
	g.waitReady()
	r := g.do("GET", "/me", "", "X-API-Key", "k", "X-Principal", url.QueryEscape(forgedEntry), "X-User", "admin",
		"X-Rsgate-Principal", url.QueryEscape(forgedEntry[1:]))
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	s := decodeSeen(t, []byte(r.body))
	if len(s.Principals) != 1 || s.Principals[0].Subject != "acme" {
		t.Fatalf("backend saw %+v", s)
	}
	if want := []string{extension.MimeRouting, httpmeta.MIME, principal.MIME}; strings.Join(s.Entries, ",") != strings.Join(want, ",") {
		t.Fatalf("entries %q, want %q", s.Entries, want)
	}
}

// rsAuthGateway is a gateway with one rsocket route at /rsocket on backend addr.
func rsAuthGateway(t *testing.T, addr string, auth map[string]*mapping.AuthProvider, mutate func(r *mapping.Route)) *gateway {
	t.Helper()
	cfg := newConfig(map[string]string{"b": addr}, []routeSpec{
		{name: "rs", path: "/rsocket", backend: "b", interaction: mapping.InteractionRSocket, mutate: mutate},
	})
	cfg.Auth = auth
	g := startGateway(t, cfg, Options{})
	g.waitReady()
	return g
}

// dialRS connects an RSocket client to /rsocket with the upgrade header hdr (nil: none) and the SETUP
// metadata setupMD; err is the handshake's or the first request's error.
func dialRS(t *testing.T, g *gateway, query string, hdr http.Header, setupMD []byte) (*rsocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	d := websocket.Dialer{}
	ws, resp, err := d.DialContext(ctx, "ws://"+g.addr+"/rsocket"+query, hdr)
	if err != nil {
		return nil, resp, err
	}
	c, err := rsocket.Connect(ctx, transport.NewWebSocketConn(ws), rsocket.Options{DataMIME: "application/json",
		SetupPayload: rsocket.Payload{Metadata: setupMD}})
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, resp, nil
}

// closeErr waits for c to be closed by the gateway and returns why.
func closeErr(t *testing.T, c *rsocket.Conn) error {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(testTimeout):
		t.Fatal("connection stayed open")
	}
	return c.Err()
}

// wantSetupRejected dials with the SETUP metadata setupMD and expects ERROR[REJECTED_SETUP] with contains.
func wantSetupRejected(t *testing.T, g *gateway, query string, hdr http.Header, setupMD []byte, contains string) {
	t.Helper()
	c, _, err := dialRS(t, g, query, hdr, setupMD)
	if err == nil {
		err = closeErr(t, c)
	}
	wantRSError(t, err, frame.CodeRejectedSetup, contains)
}

func rr(c *rsocket.Conn, md []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	msg, _, err := c.RequestResponse(ctx, rsocket.Payload{Metadata: md, Data: []byte("{}")})
	if err != nil {
		return nil, err
	}
	defer msg.Release()
	return append([]byte(nil), msg.Data...), nil
}

// forgedMD is composite metadata with the routing tag and every entry a client must not be able to pass:
// a gateway http entry (x-user: admin), a principal entry (admin), a principal entry spelled in upper case,
// and a bearer entry.
func forgedMD(tag string) []byte {
	md := routeMD(tag)
	hv, _ := httpmeta.AppendRequest(nil, []byte("GET"), []byte("/"), httpmeta.Header{Name: []byte("x-user"), Value: []byte("admin")})
	md = extension.AppendCompositeEntry(md, httpmeta.MIME, hv)
	pv, _ := principal.Append(nil, &principal.Principal{Subject: "admin", Provider: "users", Scopes: []string{"admin"}})
	md = extension.AppendCompositeEntry(md, principal.MIME, pv)
	md = extension.AppendCompositeEntry(md, strings.ToUpper(principal.MIME), pv)
	md, _ = extension.AppendCompositeBearer(md, []byte("client-token"))
	return md
}

func wantRSError(t *testing.T, err error, code frame.ErrorCode, contains string) {
	t.Helper()
	var re *rsocket.Error
	if !errors.As(err, &re) || re.Code != code || !strings.Contains(re.Message, contains) {
		t.Fatalf("got %v, want %s containing %q", err, code, contains)
	}
}

// TestRSocketTrustedMetadataE2E: on /rsocket the backend never sees client-written gateway entries or a
// client bearer entry, unlisted tags are refused naming the tag, and reject mode refuses forged metadata.
func TestRSocketTrustedMetadataE2E(t *testing.T) {
	pb, addr := startPrincipalBackend(t)
	g := rsAuthGateway(t, addr, nil, func(r *mapping.Route) {
		r.RSocket = &mapping.RSocketConfig{Allow: []string{"echo", "users.*"}}
	})
	c, _, err := dialRS(t, g, "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := rr(c, forgedMD("users.42"))
	if err != nil {
		t.Fatal(err)
	}
	if s := decodeSeen(t, out); strings.Join(s.Entries, ",") != extension.MimeRouting || s.Tag != "users.42" {
		t.Fatalf("backend saw %+v", s)
	}
	// Unlisted tags, a prefix without its dot, and no tag at all.
	for _, tag := range []string{"fail", "slow.60000", "users", "usersX.1", "echo.x"} {
		_, err := rr(c, routeMD(tag))
		wantRSError(t, err, frame.CodeRejected, `routing tag "`+tag+`" is not allowed`)
	}
	_, err = rr(c, nil)
	wantRSError(t, err, frame.CodeRejected, "routing tag is required")
	// A second routing tag in the same entry is checked too.
	_, err = rr(c, extension.AppendCompositeEntry(nil, extension.MimeRouting, extension.AppendRouting(extension.AppendRouting(nil, "echo"), "fail")))
	wantRSError(t, err, frame.CodeRejected, `"fail"`)
	// Malformed composite metadata cannot be filtered: refused.
	_, err = rr(c, append(routeMD("echo"), 0x05, 'x'))
	wantRSError(t, err, frame.CodeInvalid, "malformed")
	// Fire-and-forget and metadata push are filtered the same way.
	ctx := context.Background()
	if _, err := c.FireAndForget(ctx, rsocket.Payload{Metadata: forgedMD("echo"), Data: []byte("{}")}, rsocket.FireAndForgetOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.MetadataPush(forgedMD("echo")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case <-pb.got:
		case <-time.After(testTimeout):
			t.Fatal("fnf/push not relayed")
		}
	}
	pb.mu.Lock()
	fnf, push := pb.fnfs[0], pb.pushes[0]
	pb.mu.Unlock()
	if strings.Join(fnf.Entries, ",") != extension.MimeRouting || strings.Join(push.Entries, ",") != extension.MimeRouting {
		t.Fatalf("fnf %+v push %+v", fnf, push)
	}

	// Channel items are filtered too: the REQUEST_CHANNEL frame and the items after it.
	ch, err := c.RequestChannel(rsocket.Payload{Metadata: forgedMD("echo"), Data: []byte("{}")}, 1, false, rstest.NewCollector())
	if err != nil {
		t.Fatal(err)
	}
	<-pb.got
	if err := ch.Send(ctx, rsocket.Payload{Metadata: forgedMD("ignored.tag"), Data: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-pb.got:
	case <-time.After(testTimeout):
		t.Fatal("channel item not relayed")
	}
	pb.mu.Lock()
	items := append([]seen(nil), pb.items...)
	pb.mu.Unlock()
	if len(items) != 2 || strings.Join(items[0].Entries, ",") != extension.MimeRouting || strings.Join(items[1].Entries, ",") != extension.MimeRouting {
		t.Fatalf("channel items: %+v", items)
	}
	ch.Cancel()

	// reject mode: the forged request is refused; a clean one passes.
	g2 := rsAuthGateway(t, addr, nil, func(r *mapping.Route) {
		r.RSocket = &mapping.RSocketConfig{Allow: []string{"*"}, ClientMetadata: mapping.ClientMetadataReject}
	})
	c2, _, err := dialRS(t, g2, "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = rr(c2, forgedMD("anything"))
	wantRSError(t, err, frame.CodeRejected, "only the gateway may write")
	if _, err := rr(c2, routeMD("anything")); err != nil {
		t.Fatal(err)
	}
	if _, err := rr(c2, nil); err != nil { // "*" allows requests without a tag
		t.Fatal(err)
	}
	// A SETUP carrying a gateway entry is refused in reject mode.
	wantSetupRejected(t, g2, "", nil, forgedMD("x"), "only the gateway may write")

	// forward_auth: true lets the client's bearer entry through (and still strips gateway entries).
	g3 := rsAuthGateway(t, addr, nil, func(r *mapping.Route) {
		r.ForwardAuth = true
		r.RSocket = &mapping.RSocketConfig{Allow: []string{"*"}}
	})
	c3, _, err := dialRS(t, g3, "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err = rr(c3, forgedMD("x"))
	if err != nil {
		t.Fatal(err)
	}
	if s := decodeSeen(t, out); s.Bearer != "client-token" || len(s.Principals) != 0 || len(s.Entries) != 2 {
		t.Fatalf("forward_auth: %+v", s)
	}
}

// TestRSocketMaxStreamsKey: rsocket.max_streams bounds concurrent streams per connection.
func TestRSocketMaxStreamsKey(t *testing.T) {
	sp := newSpecial()
	be := startBackend(t, sp.handler)
	g := rsAuthGateway(t, be.addr, nil, func(r *mapping.Route) {
		r.RSocket = &mapping.RSocketConfig{Allow: []string{"*"}, MaxStreams: 1}
	})
	c, _, err := dialRS(t, g, "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hangEnded := make(chan struct{}, 1)
	hang := func() {
		go func() {
			_, _, _ = c.RequestResponse(ctx, rsocket.Payload{Metadata: routeMD("hang")})
			hangEnded <- struct{}{}
		}()
	}
	hang()
	testutil.Eventually(t, func() bool {
		select {
		case <-hangEnded:
			hang()
		default:
		}
		_, err := rr(c, routeMD("probe"))
		var re *rsocket.Error
		return errors.As(err, &re) && re.Code == frame.CodeRejected && strings.Contains(re.Message, "too many concurrent streams")
	}, "a stream over max_streams refused")

}

// TestRSocketAuthSourcesE2E: an rsocket route with auth accepts the token from the Authorization header,
// the Sec-WebSocket-Protocol "bearer, <token>" pair (answering "bearer"), the query parameter, or the SETUP's
// bearer entry; the backend sees the principal on every request.
func TestRSocketAuthSourcesE2E(t *testing.T) {
	_, addr := startPrincipalBackend(t)
	k := newAuthKeys()
	prov := jwtProvider("users", writeJWKS(t, k.jwks()))
	g := rsAuthGateway(t, addr, map[string]*mapping.AuthProvider{"users": prov}, func(r *mapping.Route) {
		r.Auth = &mapping.RouteAuth{Provider: "users", Scopes: []string{"chat"}, QueryParam: "access_token"}
		r.RSocket = &mapping.RSocketConfig{Allow: []string{"*"}}
	})
	tok := func(sub string) string { return k.ec.Sign(claims(sub, time.Minute, map[string]any{"scope": "chat"})) }
	check := func(name string, c *rsocket.Conn, sub string) {
		t.Helper()
		out, err := rr(c, forgedMD("echo"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		s := decodeSeen(t, out)
		if len(s.Principals) != 1 || s.Principals[0].Subject != sub || s.Bearer != "" {
			t.Fatalf("%s: backend saw %+v", name, s)
		}
	}
	c, _, err := dialRS(t, g, "", http.Header{"Authorization": {"Bearer " + tok("header")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	check("header", c, "header")

	c, resp, err := dialRS(t, g, "", http.Header{"Sec-WebSocket-Protocol": {"bearer, " + tok("subprotocol")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != "bearer" {
		t.Fatalf("chosen subprotocol %q, want bearer", p)
	}
	check("subprotocol", c, "subprotocol")

	c, _, err = dialRS(t, g, "?access_token="+tok("query"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	check("query", c, "query")

	setup, _ := extension.AppendCompositeBearer(nil, []byte(tok("setup")))
	c, _, err = dialRS(t, g, "", nil, setup)
	if err != nil {
		t.Fatal(err)
	}
	check("setup", c, "setup")

	// No credential anywhere: the SETUP is refused.
	wantSetupRejected(t, g, "", nil, nil, "authentication required")
	// A bad one in SETUP: refused with the reason.
	bad, _ := extension.AppendCompositeBearer(nil, []byte(k.ec.Sign(claims("x", -time.Hour, map[string]any{"scope": "chat"}))))
	wantSetupRejected(t, g, "", nil, bad, "token expired")
	// Missing scope in SETUP.
	noScope, _ := extension.AppendCompositeBearer(nil, []byte(k.ec.Sign(claims("x", time.Minute, nil))))
	wantSetupRejected(t, g, "", nil, noScope, "insufficient scope")
	// A bad one on the upgrade: 401 before the upgrade.
	_, resp, err = dialRS(t, g, "", http.Header{"Authorization": {"Bearer " + authtest.None(claims("x", time.Minute, nil))}}, nil)
	if err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("bad upgrade token: %v %v", err, resp)
	}
	// A metadata MIME type the gateway cannot inspect is refused.
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, "ws://"+g.addr+"/rsocket?access_token="+tok("m"), nil)
	if err != nil {
		t.Fatal(err)
	}
	mc, err := rsocket.Connect(ctx, transport.NewWebSocketConn(ws), rsocket.Options{MetadataMIME: "application/json", DataMIME: "application/json"})
	if err == nil {
		err = closeErr(t, mc)
	}
	wantRSError(t, err, frame.CodeUnsupportedSetup, "metadata MIME type")
}

// TestChannelAuthE2E: a request-channel WebSocket route with auth refuses the upgrade without a token and
// accepts the subprotocol form.
func TestChannelAuthE2E(t *testing.T) {
	d := startDemo(t)
	k := newAuthKeys()
	cfg := newConfig(map[string]string{"b": d.Addr().String()}, []routeSpec{
		{name: "chat", path: "/ws/chat", backend: "b", interaction: mapping.InteractionRequestChannel, tag: "chat",
			mutate: func(r *mapping.Route) { r.Auth = &mapping.RouteAuth{Provider: "users"} }},
	})
	cfg.Auth = map[string]*mapping.AuthProvider{"users": jwtProvider("users", writeJWKS(t, k.jwks()))}
	g := startGateway(t, cfg, Options{})
	g.waitReady()
	_, resp, err := websocket.DefaultDialer.Dial("ws://"+g.addr+"/ws/chat", nil)
	if err == nil || resp == nil || resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer realm="rsgate"` {
		t.Fatalf("no token: %v %+v", err, resp)
	}
	ws, resp, err := websocket.DefaultDialer.Dial("ws://"+g.addr+"/ws/chat",
		http.Header{"Sec-WebSocket-Protocol": {"bearer, " + k.hs.Sign(claims("u", time.Minute, nil))}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if resp.Header.Get("Sec-WebSocket-Protocol") != "bearer" {
		t.Fatalf("subprotocol %q", resp.Header.Get("Sec-WebSocket-Protocol"))
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"text":"hi"}`)); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(testTimeout))
	if _, msg, err := ws.ReadMessage(); err != nil || !strings.Contains(string(msg), "hi") {
		t.Fatalf("echo: %q %v", msg, err)
	}
}

// TestAuthReload: a reload keeps an unchanged provider (its key set and token cache), replaces a changed
// one and stops the old one's refresh; a reload that breaks a provider fails and keeps the running state.
func TestAuthReload(t *testing.T) {
	_, addr := startPrincipalBackend(t)
	k := newAuthKeys()
	jwks := writeJWKS(t, k.jwks())
	build := func(issuer string) (*mapping.Config, *mapping.Table) {
		cfg := newConfig(map[string]string{"b": addr}, []routeSpec{
			{name: "me", method: "GET", path: "/me", backend: "b", interaction: mapping.InteractionRequestResponse, tag: "me",
				mutate: func(r *mapping.Route) { r.Auth = &mapping.RouteAuth{Provider: "users"} }},
		})
		p := jwtProvider("users", jwks)
		p.Issuer = issuer
		cfg.Auth = map[string]*mapping.AuthProvider{"users": p}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		table, err := mapping.Compile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return cfg, table
	}
	cfg, _ := build(testIss)
	g := startGateway(t, cfg, Options{})
	g.waitReady()
	p1 := g.srv.state.Load().auth.providers["users"]
	if err := g.srv.Update(build(testIss)); err != nil {
		t.Fatal(err)
	}
	if g.srv.state.Load().auth.providers["users"] != p1 {
		t.Fatal("unchanged provider rebuilt on reload")
	}
	if err := g.srv.Update(build("https://other.example.com")); err != nil {
		t.Fatal(err)
	}
	if g.srv.state.Load().auth.providers["users"] == p1 {
		t.Fatal("changed provider kept")
	}
	if r := g.do("GET", "/me", "", authHeader(k.rs.Sign(authtest.Claims("a", "https://other.example.com", testAud, time.Minute, nil)))...); r.status != 200 {
		t.Fatalf("new issuer: %d %s", r.status, r.body)
	}
	bad, table := build(testIss)
	bad.Auth["users"].JWKSFile = filepath.Join(t.TempDir(), "missing.json")
	if err := g.srv.Update(bad, table); err == nil {
		t.Fatal("a provider whose key set cannot be read was accepted")
	}
	if r := g.do("GET", "/me", "", authHeader(k.rs.Sign(authtest.Claims("a", "https://other.example.com", testAud, time.Minute, nil)))...); r.status != 200 {
		t.Fatalf("after a failed reload: %d %s", r.status, r.body)
	}
}
