// Package csrf tells whether a browser sent a request on behalf of another site, for the endpoints that
// change state and must refuse that: the admin listener's POSTs (cmd/gateway) and the demo page's cut
// button (internal/webdemo).
package csrf

import (
	"net/url"
	"strings"

	"github.com/valyala/fasthttp"
)

// CrossSite reports a request a browser sent on behalf of another site: Sec-Fetch-Site cross-site or
// same-site, or an Origin whose host is not the request's Host (an opaque "null" Origin included). A
// request without either header (curl, a script) is not cross-site.
func CrossSite(ctx *fasthttp.RequestCtx) bool {
	switch string(ctx.Request.Header.Peek("Sec-Fetch-Site")) {
	case "cross-site", "same-site":
		return true
	}
	origin := ctx.Request.Header.Peek(fasthttp.HeaderOrigin)
	if len(origin) == 0 {
		return false
	}
	u, err := url.Parse(string(origin))
	if err != nil || u.Host == "" {
		return true
	}
	return !strings.EqualFold(u.Host, string(ctx.Host()))
}
