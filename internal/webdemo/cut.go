package webdemo

import (
	"strconv"

	"github.com/rsgate/rsgate/internal/csrf"

	"github.com/valyala/fasthttp"
)

// CutPath is the demo page's "cut connection" endpoint: POST only, served by WithCut.
const CutPath = "/demo/cut"

// WithCut returns Handler plus POST /demo/cut, which calls cut("") (the gateway's
// ingress.Server.CutRSocketClients: every /rsocket client's WebSocket is closed abruptly, resumable
// sessions wait for their RESUME) and answers {"cut": N}. Only `gateway -demo` mounts it, on the public
// listener beside the page, so the page's button can show a resume; anybody who can load the demo page
// can cut the demo's RSocket clients, which is what the demo is for. A production gateway has the admin
// listener's POST /debug/cut-clients instead (token, Host and Origin checked). Cross-site requests (an
// Origin that is not the request's host, Sec-Fetch-Site cross-site or same-site) get 403, so another web
// page cannot trigger cuts from a visitor's browser; other methods get 405.
func WithCut(cut func(route string) int) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) != CutPath {
			Handler(ctx)
			return
		}
		if !ctx.IsPost() {
			ctx.Response.Header.Set(fasthttp.HeaderAllow, fasthttp.MethodPost)
			jsonError(ctx, fasthttp.StatusMethodNotAllowed, "use POST", "METHOD_NOT_ALLOWED")
			return
		}
		if csrf.CrossSite(ctx) {
			jsonError(ctx, fasthttp.StatusForbidden, "cross-site request refused", "FORBIDDEN_ORIGIN")
			return
		}
		ctx.SetContentType("application/json")
		ctx.Response.Header.Set("Cache-Control", "no-store")
		ctx.SetBodyString(`{"cut": ` + strconv.Itoa(cut("")) + "}\n")
	}
}

func jsonError(ctx *fasthttp.RequestCtx, status int, msg, code string) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBodyString(`{"error":` + strconv.Quote(msg) + `,"code":"` + code + `"}` + "\n")
}
