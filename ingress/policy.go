package ingress

import (
	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/rsgate/rsgate/mapping"
)

// Per-route request policies, applied in handle after the route matched and before anything is built
// from the request (tag, metadata, upstream path), in this order:
//
//  1. CORS response headers (cors.go), first so that the browser can read the errors below;
//  2. path parameter validation (mapping/params.go): 400 BAD_PARAMETER;
//  3. authentication (auth.go): 401/403; it sets request.subject for step 4
//  4. rate limit (ratelimit.go): 429 with Retry-After and the RateLimit headers.
//
// Each step costs one nil or length check when the route has no such policy.

// CodeBadParameter is the JSON error code of a path parameter that failed its check (400).
const CodeBadParameter = "BAD_PARAMETER"

// applyPolicies applies rt's policies to the request. It answers the request itself and returns false when a
// policy refuses it. rt is the matched route (not a split variant: variants share its policies).
func (s *Server) applyPolicies(ctx *fasthttp.RequestCtx, st *state, rt *route, rq *request) bool {
	rq.policy = rt
	if rt.cors != nil {
		rt.cors.apply(ctx)
	}
	if i := rt.cr.CheckParams(&rq.ps); i >= 0 {
		writeJSONError(ctx, fasthttp.StatusBadRequest, rt.cr.ParamError(i).Error(), CodeBadParameter, nil)
		return false
	}
	if rt.auth != nil {
		if !s.authenticate(ctx, rt, rq) {
			return false
		}
		if id := IdentityOf(ctx); id != nil {
			rq.subject = unsafeBytes(id.Subject) // read-only, for the rate limit key
		}
	}
	if s.certs != nil && !s.attachClientCert(ctx, rq) { // tls_principal.go: the mTLS principal when auth gave none
		return false
	}
	if rt.limit != nil && !rt.limit.allow(ctx, rq) {
		return false
	}
	return true
}

// reapplyPolicyHeaders sets the CORS and RateLimit headers again after something replaced the response
// headers wholesale (a proxied upstream response, http_proxy.go): the gateway's values win over the
// upstream's.
func reapplyPolicyHeaders(ctx *fasthttp.RequestCtx, rq *request) {
	rt := rq.policy
	if rt == nil {
		return
	}
	if rt.cors != nil {
		rt.cors.apply(ctx)
	}
	if rt.limit != nil {
		rt.limit.setHeaders(&ctx.Response.Header, rq.rl)
	}
}

// compilePolicies gives every route its CORS policy and rate limiters: its own sections, else the
// top-level ones (one limiter shared by all the routes that use the top-level rate_limit). WebSocket
// routes take no CORS policy (websocket.origins applies).
func (st *state) compilePolicies(cfg *mapping.Config, set *metrics.Set) {
	var global *keyedLimiter
	if cfg.RateLimit != nil {
		global = newKeyedLimiter(cfg.RateLimit, RateLimitPolicyGlobal, set)
	}
	globalCORS := newCORSPolicy(cfg.CORS)
	for _, rt := range st.routes {
		cr := rt.cr
		switch {
		case cr.IsWebSocket():
		case cr.CORS != nil:
			rt.cors = newCORSPolicy(cr.CORS)
		default:
			rt.cors = globalCORS
		}
		if rt.cors != nil {
			st.preflight = true
		}
		if cr.RateLimit != nil {
			rt.limit = newKeyedLimiter(cr.RateLimit, cr.Name, set)
		} else {
			rt.limit = global
		}
		if cr.IsWebSocket() {
			rt.wsLimit = newSessionLimit(cr.WebSocket.RateLimit, cr.Name, set)
		}
	}
}
