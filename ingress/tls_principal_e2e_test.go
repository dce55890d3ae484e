package ingress

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/rsgate/rsgate/internal/httpmeta"
	"github.com/rsgate/rsgate/internal/principal"
	"github.com/rsgate/rsgate/internal/testcert"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/extension"
	"github.com/rsgate/rsgate/rsocket/transport"
)

// End-to-end tests of the mTLS principal (tls_principal.go): with tls.client_ca, every RSocket route and
// the /rsocket relay give backends a message/x.rsgate.principal.v0 entry with provider "mtls" and the
// verified certificate's subject, unless the route's auth produced a principal of its own.

// certSeen is what the mTLS backend reports for one request: the entries (seen, decoded with
// internal/principal) and the gateway-set x-client-cert-subject header of the gateway entry.
type certSeen struct {
	seen
	CertHeader string `json:"cert_header,omitempty"`
}

func inspectCert(md []byte) certSeen {
	s := certSeen{seen: inspect(md)}
	if v, ok := extension.FindComposite(md, httpmeta.MIME); ok {
		if r, err := httpmeta.ParseRequest(v); err == nil {
			h := r.Headers
			for h.Next() {
				if string(h.Name()) == HeaderClientCertSubject {
					s.CertHeader = string(h.Value())
				}
			}
		}
	}
	return s
}

// certBackend answers request-response and request-stream with what it saw (one stream item), reports
// fire-and-forgets on fnfs, and answers a channel's REQUEST_CHANNEL with what it saw as its one item.
func certBackend(t *testing.T) (addr string, fnfs chan certSeen) {
	fnfs = make(chan certSeen, 8)
	report := func(md []byte) []byte {
		out, _ := json.Marshal(inspectCert(md))
		return out
	}
	b := startBackend(t, func() rsocket.Handler {
		return &rsocket.HandlerFuncs{
			RequestResponseFunc: func(req rsocket.Payload, s *rsocket.Stream) {
				_ = s.Respond(rsocket.Payload{Data: report(req.Metadata)})
			},
			FireAndForgetFunc: func(req rsocket.Payload) { fnfs <- inspectCert(req.Metadata) },
			RequestStreamFunc: func(req rsocket.Payload, _ uint32, s *rsocket.Stream) {
				out := report(req.Metadata)
				go func() {
					if s.Send(context.Background(), rsocket.Payload{Data: out}) == nil {
						_ = s.Complete()
					}
				}()
			},
			RequestChannelFunc: func(req rsocket.Payload, _ uint32, _ bool, s *rsocket.Stream) rsocket.Subscriber {
				out := report(req.Metadata)
				go func() {
					if s.Send(context.Background(), rsocket.Payload{Data: out}) == nil {
						_ = s.Complete()
					}
				}()
				s.Request(16)
				return discard{}
			},
		}
	})
	return b.addr, fnfs
}

// discard is a channel's inbound side that drops the items.
type discard struct{}

func (discard) OnNext(rsocket.Payload, bool) {}
func (discard) OnComplete()                  {}
func (discard) OnError(error)                {}

func decodeCertSeen(t *testing.T, data []byte) certSeen {
	t.Helper()
	var s certSeen
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("backend answer %q: %v", data, err)
	}
	return s
}

// wantPrincipal checks that s holds exactly one principal entry, with provider and subject.
func wantPrincipal(t *testing.T, what string, s certSeen, provider, subject string) {
	t.Helper()
	n := 0
	for _, e := range s.Entries {
		if e == principal.MIME {
			n++
		}
	}
	if n != 1 || len(s.Principals) != 1 || s.Principals[0].Provider != provider || s.Principals[0].Subject != subject ||
		len(s.Principals[0].Scopes) != 0 && provider == principal.ProviderMTLS {
		t.Fatalf("%s: backend saw %+v (%d principal entries); want one, provider %q, subject %q", what, s, n, provider, subject)
	}
}

func wantNoPrincipal(t *testing.T, what string, s certSeen) {
	t.Helper()
	for _, e := range s.Entries {
		if e == principal.MIME {
			t.Fatalf("%s: backend saw a principal entry: %+v", what, s)
		}
	}
}

func TestTLSClientCertPrincipalE2E(t *testing.T) {
	addr, fnfs := certBackend(t)
	server := testcert.New(t, "gw.example")
	alice := testcert.New(t, "alice")
	certFile, keyFile := server.WriteFiles(t)
	caFile, _ := alice.WriteFiles(t)

	// max_connections 0: fasthttp sees the certConn itself; > 0: the edge listener's limitedTLSConn around it.
	for _, maxConns := range []int{0, 64} {
		t.Run(map[int]string{0: "unlimited", 64: "max_connections"}[maxConns], func(t *testing.T) {
			cfg := newConfig(map[string]string{"b": addr}, []routeSpec{
				{name: "rr", method: "POST", path: "/rr", backend: "b", interaction: mapping.InteractionRequestResponse, tag: "rr"},
				{name: "fnf", method: "POST", path: "/fnf", backend: "b", interaction: mapping.InteractionFireAndForget, tag: "fnf"},
				{name: "stream", method: "GET", path: "/stream", backend: "b", interaction: mapping.InteractionRequestStream, tag: "stream"},
				{name: "ch", path: "/ws/ch", backend: "b", interaction: mapping.InteractionRequestChannel, tag: "ch"},
				{name: "keyed", method: "POST", path: "/keyed", backend: "b", interaction: mapping.InteractionRequestResponse, tag: "keyed",
					mutate: func(r *mapping.Route) { r.Auth = &mapping.RouteAuth{Provider: "partners"} }},
				{name: "rs", path: "/rsocket", backend: "b", interaction: mapping.InteractionRSocket,
					mutate: func(r *mapping.Route) { r.RSocket = &mapping.RSocketConfig{Allow: []string{"*"}} }},
				{name: "rs-keyed", path: "/rsocket-keyed", backend: "b", interaction: mapping.InteractionRSocket,
					mutate: func(r *mapping.Route) {
						r.RSocket = &mapping.RSocketConfig{Allow: []string{"*"}}
						r.Auth = &mapping.RouteAuth{Provider: "partners"}
					}},
			})
			cfg.Auth = map[string]*mapping.AuthProvider{"partners": apiKeyProvider("partners", map[string]string{"acme": "k"})}
			cfg.TLS = &mapping.IngressTLS{Cert: certFile, Key: keyFile, ClientCA: caFile, ClientAuth: mapping.ClientAuthRequest}
			cfg.Limits.MaxConnections = maxConns
			g := startGateway(t, cfg, Options{})
			g.waitReady()

			clientTLS := func(cert *testcert.Cert) *tls.Config {
				tc := &tls.Config{RootCAs: server.Roots}
				if cert != nil {
					tc.Certificates = []tls.Certificate{cert.Pair}
				}
				return tc
			}
			httpc := func(cert *testcert.Cert) *http.Client {
				return &http.Client{Timeout: testTimeout, Transport: &http.Transport{TLSClientConfig: clientTLS(cert)}}
			}
			do := func(hc *http.Client, method, path string, hdr ...string) (int, []byte) {
				t.Helper()
				req, _ := http.NewRequest(method, "https://"+g.addr+path, strings.NewReader("{}"))
				req.Header.Set("X-Client-Cert-Subject", "CN=admin") // never forwarded
				for i := 0; i+1 < len(hdr); i += 2 {
					req.Header.Set(hdr[i], hdr[i+1])
				}
				resp, err := hc.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", method, path, err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, body
			}
			withCert, noCert := httpc(alice), httpc(nil)
			const subject = "CN=alice"

			// request-response: the mTLS principal, and the compatibility header beside it.
			for range 2 { // the second request takes the identity cached on the connection
				status, body := do(withCert, "POST", "/rr")
				if status != 200 {
					t.Fatalf("rr: %d %s", status, body)
				}
				s := decodeCertSeen(t, body)
				wantPrincipal(t, "rr", s, principal.ProviderMTLS, subject)
				if s.CertHeader != subject {
					t.Fatalf("rr: x-client-cert-subject %q, want %q", s.CertHeader, subject)
				}
			}
			// Without a certificate (client_auth request): anonymous, no entry, no header.
			if status, body := do(noCert, "POST", "/rr"); status != 200 {
				t.Fatalf("rr without a certificate: %d %s", status, body)
			} else if s := decodeCertSeen(t, body); s.CertHeader != "" {
				t.Fatalf("rr without a certificate: header %q", s.CertHeader)
			} else {
				wantNoPrincipal(t, "rr without a certificate", s)
			}
			// fire-and-forget.
			if status, body := do(withCert, "POST", "/fnf"); status != 202 {
				t.Fatalf("fnf: %d %s", status, body)
			}
			select {
			case s := <-fnfs:
				wantPrincipal(t, "fnf", s, principal.ProviderMTLS, subject)
			case <-time.After(testTimeout):
				t.Fatal("fnf not received")
			}
			// request-stream (NDJSON: one line, what the backend saw).
			if status, body := do(withCert, "GET", "/stream", "Accept", "application/x-ndjson"); status != 200 {
				t.Fatalf("stream: %d %s", status, body)
			} else {
				line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
				wantPrincipal(t, "stream", decodeCertSeen(t, []byte(line)), principal.ProviderMTLS, subject)
			}
			// The route's own auth wins: one principal, the API key's; the certificate subject still arrives
			// as the header.
			if status, body := do(withCert, "POST", "/keyed", "X-API-Key", "k"); status != 200 {
				t.Fatalf("keyed: %d %s", status, body)
			} else {
				s := decodeCertSeen(t, body)
				wantPrincipal(t, "keyed", s, "partners", "acme")
				if s.CertHeader != subject {
					t.Fatalf("keyed: x-client-cert-subject %q", s.CertHeader)
				}
			}

			// request-channel over WebSocket: the REQUEST_CHANNEL metadata has the principal.
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			d := websocket.Dialer{TLSClientConfig: clientTLS(alice)}
			ws, _, err := d.DialContext(ctx, "wss://"+g.addr+"/ws/ch", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			if err := ws.WriteMessage(websocket.TextMessage, []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
			_ = ws.SetReadDeadline(time.Now().Add(testTimeout))
			_, msg, err := ws.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			wantPrincipal(t, "channel", decodeCertSeen(t, msg), principal.ProviderMTLS, subject)

			// The /rsocket relay: a client-forged principal (and every other reserved entry) is stripped and
			// the gateway's mTLS principal appended, on request-response and fire-and-forget.
			dialWSS := func(path string, cert *testcert.Cert, hdr http.Header) *rsocket.Conn {
				t.Helper()
				d := websocket.Dialer{TLSClientConfig: clientTLS(cert)}
				ws, _, err := d.DialContext(ctx, "wss://"+g.addr+path, hdr)
				if err != nil {
					t.Fatal(err)
				}
				c, err := rsocket.Connect(ctx, transport.NewWebSocketConn(ws), rsocket.Options{DataMIME: "application/json"})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = c.Close() })
				return c
			}
			c := dialWSS("/rsocket", alice, nil)
			for range 2 {
				out, err := rr(c, forgedMD("echo"))
				if err != nil {
					t.Fatal(err)
				}
				s := decodeCertSeen(t, out)
				wantPrincipal(t, "relay request-response", s, principal.ProviderMTLS, subject)
				if strings.Join(s.Entries, ",") != extension.MimeRouting+","+principal.MIME || s.Bearer != "" {
					t.Fatalf("relay: entries %q, bearer %q: client entries not stripped", s.Entries, s.Bearer)
				}
			}
			if _, err := c.FireAndForget(ctx, rsocket.Payload{Metadata: forgedMD("echo"), Data: []byte("{}")}, rsocket.FireAndForgetOptions{}); err != nil {
				t.Fatal(err)
			}
			select {
			case s := <-fnfs:
				wantPrincipal(t, "relay fire-and-forget", s, principal.ProviderMTLS, subject)
			case <-time.After(testTimeout):
				t.Fatal("relayed fnf not received")
			}
			// Without a certificate: the forged entry is stripped and nothing is added.
			out, err := rr(dialWSS("/rsocket", nil, nil), forgedMD("echo"))
			if err != nil {
				t.Fatal(err)
			}
			wantNoPrincipal(t, "relay without a certificate", decodeCertSeen(t, out))
			// A relay route with auth: the upgrade's API key gives the principal, not the certificate.
			out, err = rr(dialWSS("/rsocket-keyed", alice, http.Header{"X-API-Key": {"k"}}), forgedMD("echo"))
			if err != nil {
				t.Fatal(err)
			}
			wantPrincipal(t, "keyed relay", decodeCertSeen(t, out), "partners", "acme")
		})
	}
}

// A certificate verified on a connection stays that connection's: two connections with different
// certificates, requests interleaved, each see their own subject (the per-connection cache is per
// connection, not per server).
// mtlsGateway starts a gateway serving routes over TLS that asks for client certificates (client_auth
// request) and trusts those of clients; it returns the gateway and its server certificate.
func mtlsGateway(t *testing.T, backends map[string]string, routes []routeSpec, clients ...*testcert.Cert) (*gateway, *testcert.Cert) {
	t.Helper()
	server := testcert.New(t, "gw.example")
	certFile, keyFile := server.WriteFiles(t)
	var pem []byte
	for _, c := range clients {
		pem = append(pem, c.CertPEM...)
	}
	ca := filepath.Join(t.TempDir(), "clients-ca.pem")
	if err := os.WriteFile(ca, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := newConfig(backends, routes)
	cfg.TLS = &mapping.IngressTLS{Cert: certFile, Key: keyFile, ClientCA: ca, ClientAuth: mapping.ClientAuthRequest}
	g := startGateway(t, cfg, Options{})
	g.waitReady()
	return g, server
}

func TestTLSClientCertPrincipalPerConnection(t *testing.T) {
	addr, _ := certBackend(t)
	alice, bob := testcert.New(t, "alice"), testcert.New(t, "bob")
	g, server := mtlsGateway(t, map[string]string{"b": addr}, []routeSpec{
		{name: "rr", method: "POST", path: "/rr", backend: "b", interaction: mapping.InteractionRequestResponse, tag: "rr"},
	}, alice, bob)
	dial := func(cert *testcert.Cert) (*tls.Conn, *bufio.Reader) {
		c, err := tls.Dial("tcp", g.addr, &tls.Config{RootCAs: server.Roots, Certificates: []tls.Certificate{cert.Pair}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c, bufio.NewReader(c)
	}
	post := func(c *tls.Conn, br *bufio.Reader) certSeen {
		t.Helper()
		_ = c.SetDeadline(time.Now().Add(testTimeout))
		if _, err := io.WriteString(c, "POST /rr HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return decodeCertSeen(t, body)
	}
	ca1, br1 := dial(alice)
	cb1, brb := dial(bob)
	for range 3 {
		wantPrincipal(t, "alice", post(ca1, br1), principal.ProviderMTLS, "CN=alice")
		wantPrincipal(t, "bob", post(cb1, brb), principal.ProviderMTLS, "CN=bob")
	}
}

// TestRateLimitSubjectClientCert: with key subject and no auth, mTLS clients are keyed by their
// certificate's subject, not their (shared) address: alice's second request is limited, bob's first is not,
// and a client without a certificate is keyed by IP.
func TestRateLimitSubjectClientCert(t *testing.T) {
	addr, _ := certBackend(t)
	alice, bob := testcert.New(t, "alice"), testcert.New(t, "bob")
	g, server := mtlsGateway(t, map[string]string{"b": addr}, []routeSpec{
		{name: "rr", method: "POST", path: "/rr", backend: "b", interaction: mapping.InteractionRequestResponse, tag: "rr",
			mutate: func(r *mapping.Route) {
				r.RateLimit = &mapping.RateLimitConfig{Rate: "1/h", Burst: 1, Key: mapping.RateKeySubject}
			}},
	}, alice, bob)
	post := func(cert *testcert.Cert) int {
		t.Helper()
		tc := &tls.Config{RootCAs: server.Roots}
		if cert != nil {
			tc.Certificates = []tls.Certificate{cert.Pair}
		}
		c, err := tls.Dial("tcp", g.addr, tc)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return exchange(t, c, bufio.NewReader(c), "POST /rr HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
	}
	for _, step := range []struct {
		who  string
		cert *testcert.Cert
		want int
	}{
		{"alice", alice, 200}, {"alice again", alice, 429},
		{"bob, same address", bob, 200}, {"bob again", bob, 429},
		{"no certificate (keyed by IP)", nil, 200}, {"no certificate again", nil, 429},
	} {
		if got := post(step.cert); got != step.want {
			t.Fatalf("%s: status %d, want %d", step.who, got, step.want)
		}
	}
}

// TestShadowCarriesClientCert: a shadow copy to an RSocket backend carries what the served request carries
// for an mTLS client: the principal entry and the gateway-set x-client-cert-subject header.
func TestShadowCarriesClientCert(t *testing.T) {
	addr, fnfs := certBackend(t)
	alice := testcert.New(t, "alice")
	g, server := mtlsGateway(t, map[string]string{"b": addr, "copy": addr}, []routeSpec{
		{name: "rr", method: "POST", path: "/rr", backend: "b", interaction: mapping.InteractionRequestResponse, tag: "rr",
			mutate: func(r *mapping.Route) {
				r.Shadow = mapping.NewShadow("copy")
				r.Shadow.Mode, r.Shadow.Compare = mapping.InteractionFireAndForget, false
			}},
	}, alice)
	hc := &http.Client{Timeout: testTimeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: server.Roots, Certificates: []tls.Certificate{alice.Pair}}}}
	resp, err := hc.Post("https://"+g.addr+"/rr", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("served: %d %s", resp.StatusCode, body)
	}
	select {
	case s := <-fnfs:
		wantPrincipal(t, "shadow copy", s, principal.ProviderMTLS, "CN=alice")
		if s.CertHeader != "CN=alice" {
			t.Fatalf("shadow copy: x-client-cert-subject %q, want CN=alice", s.CertHeader)
		}
	case <-time.After(testTimeout):
		t.Fatal("the shadow copy did not arrive")
	}
}
