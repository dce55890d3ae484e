package ingress

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/rsgate/rsgate/internal/auth"
	"github.com/rsgate/rsgate/internal/principal"
	"github.com/rsgate/rsgate/mapping"
)

// Authentication (route key "auth", providers under the top-level "auth"): a route with auth verifies the
// client's credential before anything else is done for the request, and answers
//
//   - 401 UNAUTHORIZED with WWW-Authenticate when the credential is missing (`Bearer realm="rsgate"`,
//     RFC 6750 section 3.1: no error parameter) or invalid (`Bearer error="invalid_token",
//     error_description="token expired"`); api_key providers use the scheme "APIKey" the same way;
//   - 403 INSUFFICIENT_SCOPE with `Bearer error="insufficient_scope", scope="a b"` when the token lacks a
//     scope the route requires.
//
// Where the credential is read:
//
//   - jwt: "Authorization: Bearer <token>"; api_key: the provider's header (default X-API-Key).
//   - WebSocket routes (request-channel, rsocket) also accept, for browsers that cannot set headers on an
//     upgrade: the Sec-WebSocket-Protocol list "bearer, <token>" (the entry after "bearer"; the gateway
//     answers with the subprotocol "bearer", never the token), and the query parameter named by the route's
//     auth.query_param or the provider's query_param (off by default: URLs end up in logs).
//   - rsocket routes also accept the bearer entry (message/x.rsocket.authentication.v0, type bearer) of
//     the client's SETUP metadata when the upgrade carried none; a missing or bad one then rejects the SETUP
//     with ERROR[REJECTED_SETUP].
//
// The verified identity is forwarded to the backend as the composite entry message/x.rsgate.principal.v0
// (package internal/principal, docs/METADATA.md) on every request of the route with composite metadata.
// SubjectOf gives it to other ingress policies (the subject-keyed rate limit).

// Error codes of authentication answers.
const (
	CodeUnauthorized      = "UNAUTHORIZED"       // 401: missing or invalid credential
	CodeInsufficientScope = "INSUFFICIENT_SCOPE" // 403: the token lacks a scope the route requires
)

// routeAuth is a route's resolved "auth".
type routeAuth struct {
	p       auth.Provider
	scopes  []string
	query   string // query parameter carrying the credential on WebSocket upgrades ("" = none)
	header  string // api_key header ("" = Authorization: Bearer)
	scheme  string // "Bearer" or "APIKey"
	missing string // WWW-Authenticate for a missing credential
	scope   string // WWW-Authenticate for missing scopes
}

// principalKey is the RequestCtx user value key of the verified *auth.Identity.
type principalKey struct{}

// IdentityOf returns the identity verified for the request by its route's auth, or nil (no auth on the
// route, or an rsocket upgrade whose credential comes in SETUP).
func IdentityOf(ctx *fasthttp.RequestCtx) *auth.Identity {
	id, _ := ctx.UserValue(principalKey{}).(*auth.Identity)
	return id
}

// SubjectOf returns the verified subject of the request (the token's "sub", or the API key's name) and
// whether the request was authenticated. It does not allocate.
func SubjectOf(ctx *fasthttp.RequestCtx) (string, bool) {
	if id := IdentityOf(ctx); id != nil {
		return id.Subject, true
	}
	return "", false
}

// ClientCertPrincipalEntry returns the composite metadata entry message/x.rsgate.principal.v0 for a
// verified TLS client certificate whose subject is subjectDN (x509.Certificate.Subject.String()): provider
// "mtls", no scopes. Append it to request metadata like the entry of a verified token.
func ClientCertPrincipalEntry(subjectDN string) ([]byte, error) {
	v, err := principal.Append(nil, principal.FromClientCert(subjectDN))
	if err != nil {
		return nil, err
	}
	return principal.AppendEntry(nil, v), nil
}

// authSet is the providers of one state, by name, with the configuration each was built from.
type authSet struct {
	providers map[string]auth.Provider
	cfgs      map[string]mapping.AuthProvider
}

// provisionAuth builds (or, when unchanged, takes over from old) the auth providers of st's configuration
// and resolves the auth of st's routes.
func (s *Server) provisionAuth(st, old *state) error {
	cfg := st.cfg
	if len(cfg.Auth) == 0 {
		return nil
	}
	set := &authSet{providers: map[string]auth.Provider{}, cfgs: map[string]mapping.AuthProvider{}}
	for name, pc := range cfg.Auth {
		c := *pc
		c.Line = 0
		if old != nil && old.auth != nil {
			if p := old.auth.providers[name]; p != nil && reflect.DeepEqual(old.auth.cfgs[name], c) {
				set.providers[name], set.cfgs[name] = p, c
				continue
			}
		}
		p, err := auth.New(pc, s.log)
		if err != nil {
			closeAuthExcept(set, old)
			return fmt.Errorf("%w: %w", errConfig, err)
		}
		set.providers[name], set.cfgs[name] = p, c
	}
	st.auth = set
	for _, rt := range st.routes {
		a := rt.cr.Auth
		if a == nil {
			continue
		}
		p := set.providers[a.Provider]
		if p == nil {
			closeAuthExcept(set, old)
			return fmt.Errorf("%w: route %q: unknown auth provider %q", errConfig, rt.name, a.Provider)
		}
		rt.auth = newRouteAuth(p, a)
		if rt.ws != nil {
			rt.ws.upgrader.Subprotocols = []string{subprotocolBearer}
		}
	}
	return nil
}

// closeAuthExcept closes the providers of set that old does not hold.
func closeAuthExcept(set *authSet, old *state) {
	if set == nil {
		return
	}
	for name, p := range set.providers {
		if old == nil || old.auth == nil || old.auth.providers[name] != p {
			p.Close()
		}
	}
}

// releaseAuth closes the providers of old that cur did not take over (after a reload).
func releaseAuth(old, cur *state) {
	if old == nil || old.auth == nil {
		return
	}
	for name, p := range old.auth.providers {
		if cur == nil || cur.auth == nil || cur.auth.providers[name] != p {
			p.Close()
		}
	}
}

func newRouteAuth(p auth.Provider, a *mapping.RouteAuth) *routeAuth {
	ra := &routeAuth{p: p, scopes: a.Scopes, query: a.QueryParam, header: p.Header(), scheme: "Bearer"}
	if ra.query == "" {
		ra.query = p.QueryParam()
	}
	if p.Type() == mapping.AuthAPIKey {
		ra.scheme = "APIKey"
		ra.missing = `APIKey realm="rsgate", header="` + ra.header + `"`
	} else {
		ra.missing = `Bearer realm="rsgate"`
	}
	ra.scope = ra.scheme + ` error="insufficient_scope", scope="` + strings.Join(a.Scopes, " ") + `"`
	return ra
}

// subprotocolBearer is the Sec-WebSocket-Protocol entry that precedes a token.
const subprotocolBearer = "bearer"

var strWWWAuthenticate = []byte("WWW-Authenticate")

// authenticate runs the auth of route base (the route as matched, before a split picks a variant) for the
// request. It returns false after answering 401 or 403. For an rsocket route without a credential on the
// upgrade it returns true: the SETUP may carry one (ws_rsocket_auth.go).
func (s *Server) authenticate(ctx *fasthttp.RequestCtx, base *route, rq *request) bool {
	ra := base.auth
	if ra == nil {
		return true
	}
	cred := ra.credential(ctx, base.ws != nil)
	if cred == nil {
		if base.kind == kindRSocket {
			return true
		}
		ra.reject(ctx, auth.ErrNoCredentials)
		return false
	}
	id, err := ra.p.Verify(cred)
	if err != nil {
		ra.reject(ctx, err)
		return false
	}
	if !id.HasScopes(ra.scopes) {
		ra.reject(ctx, errInsufficientScope)
		return false
	}
	rq.principal = id.Entry
	ctx.SetUserValue(principalKey{}, id)
	return true
}

var errInsufficientScope = errors.New("insufficient scope")

// reject answers 401 or 403 for err (auth.ErrNoCredentials, an auth.Error, errInsufficientScope).
func (ra *routeAuth) reject(ctx *fasthttp.RequestCtx, err error) {
	var ae *auth.Error
	switch {
	case errors.Is(err, errInsufficientScope):
		ctx.Response.Header.SetBytesK(strWWWAuthenticate, ra.scope)
		writeJSONError(ctx, fasthttp.StatusForbidden, "insufficient scope: the route requires "+strings.Join(ra.scopes, " "), CodeInsufficientScope, nil)
	case errors.As(err, &ae):
		code := "invalid_token"
		if ra.scheme != "Bearer" {
			code = "invalid_key"
		}
		ctx.Response.Header.SetBytesK(strWWWAuthenticate, ra.scheme+` error="`+code+`", error_description="`+ae.Reason+`"`)
		writeJSONError(ctx, fasthttp.StatusUnauthorized, ae.Reason, CodeUnauthorized, nil)
	default:
		ctx.Response.Header.SetBytesK(strWWWAuthenticate, ra.missing)
		writeJSONError(ctx, fasthttp.StatusUnauthorized, "authentication required", CodeUnauthorized, nil)
	}
}

// credential returns the request's credential for the route, or nil. ws: the route is a WebSocket route
// (subprotocol and query parameter are accepted too).
func (ra *routeAuth) credential(ctx *fasthttp.RequestCtx, ws bool) []byte {
	h := &ctx.Request.Header
	if ra.header == "" {
		if tok := bearerToken(h.Peek(fasthttp.HeaderAuthorization)); tok != nil {
			return tok
		}
	} else if v := trimOWS(h.Peek(ra.header)); len(v) > 0 {
		return v
	}
	if !ws {
		return nil
	}
	if tok := subprotocolToken(h.Peek(fasthttp.HeaderSecWebSocketProtocol)); tok != nil {
		return tok
	}
	if ra.query != "" {
		if v := ctx.QueryArgs().Peek(ra.query); len(v) > 0 {
			return v
		}
	}
	return nil
}

// subprotocolToken returns the entry after "bearer" in a Sec-WebSocket-Protocol list ("bearer, <token>";
// entries are comma-separated, surrounding spaces ignored, "bearer" case-insensitive), or nil.
func subprotocolToken(v []byte) []byte {
	next := false
	for len(v) > 0 {
		var item []byte
		item, v = nextListItem(v)
		if next {
			if len(item) == 0 {
				return nil
			}
			return item
		}
		next = len(item) == len(subprotocolBearer) && strings.EqualFold(unsafeString(item), subprotocolBearer)
	}
	return nil
}

// unsafeString returns b as a string without copying; b must not change while the string is used.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
