package webdemo

import (
	"github.com/rsgate/rsgate/internal/csrf"

	"github.com/valyala/fasthttp"
)

// CutPath is the demo page's "cut connection" endpoint: POST only, served by WithCut.
const CutPath = "/demo/cut"

// WithCut returns Handler plus POST /demo/cut, served by cut: the gateway's
// ingress.Server.CutClientsHandler (every /rsocket client's WebSocket is closed abruptly, resumable sessions
// wait for their RESUME; {"cut": N}; other methods 405). Only `gateway -demo` mounts it, on the public
// listener beside the page, so the page's button can show a resume; anybody who can load the demo page can
// cut the demo's RSocket clients, which is what the demo is for. A production gateway has the admin
// listener's POST /debug/cut-clients instead (token, Host and Origin checked). Cross-site requests (an
// Origin that is not the request's host, Sec-Fetch-Site cross-site or same-site) get 403 here, so another
// web page cannot trigger cuts from a visitor's browser.
func WithCut(cut fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) != CutPath {
			Handler(ctx)
			return
		}
		if csrf.CrossSite(ctx) {
			ctx.SetStatusCode(fasthttp.StatusForbidden)
			ctx.SetContentType("application/json")
			ctx.SetBodyString(`{"error":"cross-site request refused","code":"FORBIDDEN_ORIGIN"}` + "\n")
			return
		}
		ctx.Response.Header.Set("Cache-Control", "no-store")
		cut(ctx)
	}
}
