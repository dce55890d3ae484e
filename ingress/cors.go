package ingress

import (
	"bytes"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/rsgate/rsgate/internal/httpmeta"
	"github.com/rsgate/rsgate/mapping"
)

// CORS (key cors, top level and per route). The policy of a route is compiled once; per request it costs
// one Origin lookup and a scan of the origin patterns.
//
// Preflight: an OPTIONS request with Origin and Access-Control-Request-Method, for a path and requested
// method that match a route with a CORS policy, is answered by the gateway itself (the route's backend
// never sees it): 204 with Access-Control-Allow-Origin/-Methods/-Headers (and -Credentials, -Max-Age)
// when the origin, the method and every requested header are allowed; otherwise 403 FORBIDDEN_CORS with
// no Access-Control-* header (the Fetch standard fails the preflight either way; the 403 and its JSON
// body make the refusal visible in logs and metrics). A preflight whose path or method has no route, or
// whose route has no policy, is served as any other request (404, 405, or the route).
//
// Actual requests on a route with a policy get "Vary: Origin" and, when the Origin is allowed,
// Access-Control-Allow-Origin (the origin itself, or "*" for origins ["*"] without credentials),
// Access-Control-Allow-Credentials and Access-Control-Expose-Headers. A disallowed origin gets no CORS
// header (the browser then hides the answer from the page); the request is still served, as CORS
// protects readers, not servers.

// CodeForbiddenCORS is the JSON error code of a refused CORS preflight (403).
const CodeForbiddenCORS = "FORBIDDEN_CORS"

var (
	strOrigin          = []byte(fasthttp.HeaderOrigin)
	strVary            = []byte(fasthttp.HeaderVary)
	strVaryOrigin      = []byte("Origin")
	strVaryPreflight   = []byte("Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
	strACAO            = []byte(fasthttp.HeaderAccessControlAllowOrigin)
	strACAC            = []byte(fasthttp.HeaderAccessControlAllowCredentials)
	strACAM            = []byte(fasthttp.HeaderAccessControlAllowMethods)
	strACAH            = []byte(fasthttp.HeaderAccessControlAllowHeaders)
	strACEH            = []byte(fasthttp.HeaderAccessControlExposeHeaders)
	strACMA            = []byte(fasthttp.HeaderAccessControlMaxAge)
	strACRM            = []byte(fasthttp.HeaderAccessControlRequestMethod)
	strACRH            = []byte(fasthttp.HeaderAccessControlRequestHeaders)
	strTrue            = []byte("true")
	strStar            = []byte("*")
	strCORSNotAllowed  = "CORS preflight refused: origin, method or headers not allowed"
	defaultCORSHeaders = []string{"content-type"}
)

// corsPolicy is a compiled cors section.
type corsPolicy struct {
	origins     []mapping.OriginPattern
	anyOrigin   bool
	credentials bool
	methods     []string // nil: the methods that have a route for the path
	methodsList []byte   // methods joined for Access-Control-Allow-Methods
	headers     []string // lower-cased
	anyHeader   bool
	expose      []byte // nil: none
	maxAge      []byte // nil: not sent
}

// newCORSPolicy compiles c; nil when c turns CORS off (no origins).
func newCORSPolicy(c *mapping.CORSConfig) *corsPolicy {
	if c == nil || len(c.Origins) == 0 {
		return nil
	}
	p := &corsPolicy{credentials: c.Credentials}
	for _, o := range c.Origins {
		op, ok := mapping.ParseOriginPattern(o)
		if !ok {
			continue // rejected by validation
		}
		p.anyOrigin = p.anyOrigin || op.Any
		p.origins = append(p.origins, op)
	}
	if len(c.Methods) > 0 {
		for _, m := range c.Methods {
			p.methods = append(p.methods, strings.ToUpper(m))
		}
		p.methodsList = []byte(strings.Join(p.methods, ", "))
	}
	hs := c.Headers
	if len(hs) == 0 {
		hs = defaultCORSHeaders
	}
	for _, h := range hs {
		if h == "*" && !c.Credentials {
			p.anyHeader = true
			continue
		}
		p.headers = append(p.headers, strings.ToLower(h))
	}
	if len(c.ExposeHeaders) > 0 {
		p.expose = []byte(strings.Join(c.ExposeHeaders, ", "))
	}
	if s := int64(c.MaxAge.D() / time.Second); s > 0 {
		p.maxAge = strconv.AppendInt(nil, s, 10)
	}
	return p
}

// originAllowed reports whether the Origin value o is allowed.
func (p *corsPolicy) originAllowed(o []byte) bool {
	for i := range p.origins {
		if p.origins[i].MatchOrigin(o) {
			return true
		}
	}
	return false
}

// allowOrigin sets Access-Control-Allow-Origin (and -Credentials) for the allowed origin o.
func (p *corsPolicy) allowOrigin(h *fasthttp.ResponseHeader, o []byte) {
	if p.anyOrigin && !p.credentials {
		h.SetBytesKV(strACAO, strStar)
	} else {
		h.SetBytesKV(strACAO, o)
	}
	if p.credentials {
		h.SetBytesKV(strACAC, strTrue)
	}
}

// apply adds the CORS headers of an actual (non-preflight) request. It does not allocate.
func (p *corsPolicy) apply(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	h.AddBytesKV(strVary, strVaryOrigin)
	o := ctx.Request.Header.PeekBytes(strOrigin)
	if len(o) == 0 || !p.originAllowed(o) {
		return
	}
	p.allowOrigin(h, o)
	if p.expose != nil {
		h.SetBytesKV(strACEH, p.expose)
	}
}

// methodAllowed reports whether a preflight may ask for method m (which has a route on the path).
func (p *corsPolicy) methodAllowed(m []byte) bool {
	if p.methods == nil {
		return true
	}
	for _, a := range p.methods {
		if a == string(m) {
			return true
		}
	}
	return false
}

// headersAllowed reports whether every name of an Access-Control-Request-Headers value is allowed.
func (p *corsPolicy) headersAllowed(list []byte) bool {
	if p.anyHeader {
		return true
	}
	for len(list) > 0 {
		var name []byte
		name, list = nextListItem(list)
		if len(name) == 0 {
			continue
		}
		ok := false
		for _, a := range p.headers {
			if httpmeta.EqualFold(name, a) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// nextListItem splits the first item off a comma-separated header list (RFC 9110 5.6.1): the item without
// surrounding white space (empty for an empty item) and the rest of the list after its comma.
func nextListItem(list []byte) (item, rest []byte) {
	if i := bytes.IndexByte(list, ','); i >= 0 {
		item, rest = list[:i], list[i+1:]
	} else {
		item = list
	}
	return trimOWS(item), rest
}

// trimOWS strips optional white space (RFC 9110 5.6.3: spaces and tabs) from both ends of b (header
// list items: CORS request headers, the api_key header, Sec-WebSocket-Protocol entries).
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// preflight answers a CORS preflight for a route with a policy (see the top of this file). It returns
// false, having written nothing, for any other request.
func (s *Server) preflight(ctx *fasthttp.RequestCtx, st *state, rq *request) bool {
	if string(ctx.Method()) != fasthttp.MethodOptions {
		return false
	}
	h := &ctx.Request.Header
	acrm := h.PeekBytes(strACRM)
	origin := h.PeekBytes(strOrigin)
	if len(acrm) == 0 || len(origin) == 0 {
		return false
	}
	cr, res := st.table.Match(acrm, ctx.Path(), &rq.ps)
	if res != mapping.MatchOK {
		rq.ps.Reset()
		return false
	}
	rt := st.routes[cr.Index]
	p := rt.cors
	if p == nil {
		rq.ps.Reset()
		return false
	}
	rt.m.begin(rq)
	resp := &ctx.Response.Header
	resp.AddBytesKV(strVary, strVaryPreflight)
	acrh := h.PeekBytes(strACRH)
	if !p.originAllowed(origin) || !p.methodAllowed(acrm) || !p.headersAllowed(acrh) {
		writeJSONError(ctx, fasthttp.StatusForbidden, strCORSNotAllowed, CodeForbiddenCORS, nil)
		s.finish(ctx, st, rt, rq, fasthttp.StatusForbidden)
		return true
	}
	p.allowOrigin(resp, origin)
	if p.methods != nil {
		resp.SetBytesKV(strACAM, p.methodsList)
	} else {
		resp.SetBytesKV(strACAM, acrm)
	}
	if len(acrh) > 0 {
		resp.SetBytesKV(strACAH, acrh)
	}
	if p.maxAge != nil {
		resp.SetBytesKV(strACMA, p.maxAge)
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
	s.finish(ctx, st, rt, rq, fasthttp.StatusNoContent)
	return true
}
