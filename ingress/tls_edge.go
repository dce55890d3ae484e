package ingress

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/rsgate/rsgate/mapping"
)

// Ingress TLS (the "tls" section):
//
//   - The certificate, its key and the client CA file are reloaded without a restart and without
//     dropping connections: every handshake takes the current tls.Config through GetConfigForClient, so
//     connections keep the certificate they were made with and new ones get the new one. A reload
//     happens on SIGHUP and POST /reload (Server.Update), and when a file changes: at most every
//     tls.reload_interval (default 10s) a new handshake checks the files' modification times and sizes.
//     A set of files that does not load (a renewal half written, a key that does not match) is logged and
//     the running certificate kept; the check is tried again after the interval.
//   - Client certificates: with tls.client_ca, the gateway asks for one. tls.client_auth require (the
//     default) refuses a handshake without a certificate that chains to client_ca; request verifies a
//     certificate when one is given and lets clients without one in.
//   - The verified subject (the leaf certificate's subject, RFC 2253 string form such as
//     "CN=alice,O=Example") reaches backends as a principal: on RSocket routes, the /rsocket relay
//     included, as the principal entry message/x.rsgate.principal.v0 with provider "mtls" when the route's
//     auth gave no principal of its own (tls_principal.go). For compatibility it also goes, on the HTTP-facing
//     RSocket routes, as the gateway-set header x-client-cert-subject in the message/x.rsgate.http.v0 entry
//     (written for every request that has a verified client certificate, also on routes without
//     forward_headers, and also when a token's principal won), and on interaction http as the request
//     header X-Client-Cert-Subject. A client can never set either: the header is removed from what a client
//     sends (forward_headers never forwards it; the http proxy deletes it), and the relay strips client
//     message/x.rsgate.* entries. Subject and entry are computed once per connection.

// HeaderClientCertSubject is the gateway-set header that carries the verified client certificate subject.
const HeaderClientCertSubject = "x-client-cert-subject"

// tlsCerts is the ingress TLS state: the current per-handshake config and what it was loaded from.
type tlsCerts struct {
	log     *zap.Logger
	current atomic.Pointer[tls.Config]
	mTLS    atomic.Bool // client certificates are verified (client_ca set)

	mu        sync.Mutex // serializes loads
	files     mapping.IngressTLS
	stamps    [3]fileStamp // cert, key, client_ca as loaded
	interval  time.Duration
	nextCheck atomic.Int64 // unix nanoseconds of the next file check; 0: never
}

type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) fileStamp {
	if path == "" {
		return fileStamp{}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{fi.ModTime(), fi.Size()}
}

// newTLSCerts loads t's files; errors wrap errConfig and the file error.
func newTLSCerts(t *mapping.IngressTLS, log *zap.Logger) (*tlsCerts, error) {
	c := &tlsCerts{log: log}
	if err := c.load(t); err != nil {
		return nil, err
	}
	return c, nil
}

// load reads t's files and makes them current.
func (c *tlsCerts) load(t *mapping.IngressTLS) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	stamps := [3]fileStamp{stampOf(t.Cert), stampOf(t.Key), stampOf(t.ClientCA)}
	cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
	if err != nil {
		return fmt.Errorf("%w: tls: %w", errConfig, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	if t.ClientCA != "" {
		pem, err := os.ReadFile(t.ClientCA)
		if err != nil {
			return fmt.Errorf("%w: tls.client_ca: %w", errConfig, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%w: tls.client_ca: no PEM certificate in %s", errConfig, t.ClientCA)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		if t.EffectiveClientAuth() == mapping.ClientAuthRequest {
			cfg.ClientAuth = tls.VerifyClientCertIfGiven
		}
	}
	c.files, c.stamps = *t, stamps
	c.interval = t.EffectiveReloadInterval()
	c.current.Store(cfg)
	c.mTLS.Store(t.ClientCA != "")
	c.scheduleCheck()
	return nil
}

func (c *tlsCerts) scheduleCheck() {
	if c.interval > 0 {
		c.nextCheck.Store(time.Now().Add(c.interval).UnixNano())
	} else {
		c.nextCheck.Store(0)
	}
}

// serverConfig is the listener's config: every handshake asks getConfig.
func (c *tlsCerts) serverConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}, GetConfigForClient: c.getConfig}
}

func (c *tlsCerts) getConfig(*tls.ClientHelloInfo) (*tls.Config, error) {
	if next := c.nextCheck.Load(); next != 0 && time.Now().UnixNano() >= next && c.nextCheck.CompareAndSwap(next, 0) {
		c.checkFiles() // one handshake per interval does the check
	}
	return c.current.Load(), nil
}

// checkFiles reloads when a file's modification time or size changed since the last load.
func (c *tlsCerts) checkFiles() {
	c.mu.Lock()
	files, old := c.files, c.stamps
	c.mu.Unlock()
	now := [3]fileStamp{stampOf(files.Cert), stampOf(files.Key), stampOf(files.ClientCA)}
	if now == old {
		c.mu.Lock()
		c.scheduleCheck()
		c.mu.Unlock()
		return
	}
	if err := c.load(&files); err != nil {
		c.log.Error("tls: changed certificate files do not load; keeping the running certificate", zap.Error(err))
		c.mu.Lock()
		c.stamps = now // not again until they change again
		c.scheduleCheck()
		c.mu.Unlock()
		return
	}
	c.log.Info("tls: certificate files changed; reloaded", zap.String("cert", files.Cert))
}

// updateTLS applies a reloaded configuration's tls section (Update): the files are read again, also when
// their names did not change. Adding or removing the section needs a restart.
func (s *Server) updateTLS(cfg *mapping.Config) error {
	switch {
	case s.certs == nil && cfg.TLS != nil:
		s.log.Warn("tls was added; it applies after a restart")
		return nil
	case s.certs != nil && cfg.TLS == nil:
		s.log.Warn("tls was removed; the listener keeps serving TLS until a restart")
		return nil
	case s.certs == nil:
		return nil
	}
	return s.certs.load(cfg.TLS)
}

// clientSubject is the verified client certificate's subject, or nil (no TLS, no client_ca, no verified
// certificate). Computed once per connection (tls_principal.go): it does not allocate.
func (s *Server) clientSubject(ctx *fasthttp.RequestCtx) []byte {
	if id := s.clientCert(ctx); id != nil {
		return id.subject
	}
	return nil
}

// stripGatewayHeaders removes the headers only the gateway may set from a route's forward_headers.
func stripGatewayHeaders(names []string) []string {
	out := names[:0:0]
	for _, n := range names {
		if strings.EqualFold(n, HeaderClientCertSubject) {
			continue
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

var strClientCertSubject = []byte(HeaderClientCertSubject)

// applyClientCertHeader sets X-Client-Cert-Subject on a proxied request from the verified client
// certificate, and removes any value the client sent.
func applyClientCertHeader(ctx *fasthttp.RequestCtx, h *fasthttp.RequestHeader) {
	h.DelBytes(strClientCertSubject)
	if !ctx.IsTLS() {
		return
	}
	if id := connCertIdentity(ctx); id != nil {
		h.SetBytesKV(strClientCertSubject, id.subject)
	}
}
