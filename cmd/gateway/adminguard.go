package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"

	"github.com/rsgate/rsgate/internal/csrf"

	"github.com/valyala/fasthttp"

	"github.com/rsgate/rsgate/mapping"
)

// The admin guard runs before every admin handler:
//
//   - Host: a request whose Host is not the admin address's host, "localhost" or an IP literal gets 403
//     FORBIDDEN_HOST. A web page can reach a loopback listener
//     through DNS rebinding, but then its Host is the attacker's name.
//   - Origin: a POST (any method but GET, HEAD and OPTIONS) whose Origin header is present and not the
//     request's own scheme-less host ("null" included), or whose Sec-Fetch-Site is cross-site, gets
//     403 FORBIDDEN_ORIGIN: a form on a web page cannot trigger /reload.
//   - Token: with admin_token_file set, every endpoint but /healthz and /readyz needs
//     "Authorization: Bearer <token>" (the file's content without surrounding white space), compared in
//     constant time; otherwise 401 UNAUTHORIZED with WWW-Authenticate. The file is read at start and
//     again on every reload (a reload whose token file cannot be read fails and changes nothing).

// Error codes of the admin guard (JSON "code").
const (
	codeAdminUnauthorized = "UNAUTHORIZED"
	codeAdminHost         = "FORBIDDEN_HOST"
	codeAdminOrigin       = "FORBIDDEN_ORIGIN"
)

// adminToken is the digest of the admin bearer token; nil: no token required.
type adminToken struct{ sum [sha256.Size]byte }

// readAdminToken reads cfg's admin_token_file (nil, nil when none is set).
func readAdminToken(cfg *mapping.Config) (*adminToken, error) {
	if cfg.AdminTokenFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(cfg.AdminTokenFile)
	if err != nil {
		return nil, fmt.Errorf("admin_token_file: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, errors.New("admin_token_file: " + cfg.AdminTokenFile + " is empty")
	}
	return &adminToken{sum: sha256.Sum256(b)}, nil
}

// adminGuard holds what the guard checks; the token is swapped on reload.
type adminGuard struct {
	token    atomic.Pointer[adminToken]
	hostName string // the admin address's host when it is a name (not an IP literal), lower-case
}

func newAdminGuard(addr string) *adminGuard {
	g := &adminGuard{}
	if host, _, err := net.SplitHostPort(addr); err == nil {
		if _, err := netip.ParseAddr(host); err != nil && host != "" {
			g.hostName = strings.ToLower(host)
		}
	}
	return g
}

// guard wraps the admin handler with the checks above.
func (a *adminServer) guard(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if !a.gd.hostAllowed(ctx.Host()) {
			adminError(ctx, fasthttp.StatusForbidden, "host not allowed on the admin listener", codeAdminHost)
			return
		}
		if !isSafeMethod(ctx.Method()) && csrf.CrossSite(ctx) {
			adminError(ctx, fasthttp.StatusForbidden, "cross-site request refused", codeAdminOrigin)
			return
		}
		if tok := a.gd.token.Load(); tok != nil && !isProbe(ctx.Path()) && !tok.matches(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)) {
			ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, `Bearer realm="rsgate-admin"`)
			adminError(ctx, fasthttp.StatusUnauthorized, "admin token required", codeAdminUnauthorized)
			return
		}
		next(ctx)
	}
}

func adminError(ctx *fasthttp.RequestCtx, status int, msg, code string) {
	ctx.SetStatusCode(status)
	writeJSON(ctx, map[string]string{"error": msg, "code": code})
	ctx.SetStatusCode(status)
}

// isProbe: the endpoints Kubernetes probes call without credentials.
func isProbe(path []byte) bool {
	return string(path) == "/healthz" || string(path) == "/readyz"
}

func isSafeMethod(m []byte) bool {
	switch string(m) {
	case fasthttp.MethodGet, fasthttp.MethodHead, fasthttp.MethodOptions:
		return true
	}
	return false
}

// matches compares the Authorization header with the token in constant time (over digests, so the
// length of the token does not leak either).
func (t *adminToken) matches(auth []byte) bool {
	const prefix = "bearer "
	if len(auth) < len(prefix) || !strings.EqualFold(string(auth[:len(prefix)]), prefix) {
		return false
	}
	sum := sha256.Sum256(bytes.TrimSpace(auth[len(prefix):]))
	return subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1
}

// hostAllowed checks the Host header (see the top of this file). An empty Host (HTTP/1.0) is allowed: a
// browser always sends one.
func (g *adminGuard) hostAllowed(hostport []byte) bool {
	if len(hostport) == 0 {
		return true
	}
	host := string(hostport)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "localhost" {
		return true
	}
	return g.hostName != "" && host == g.hostName
}
