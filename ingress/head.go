package ingress

import (
	"github.com/valyala/fasthttp"
)

// HEAD is served wherever GET is (RFC 9110 9.3.2): mapping.Table.Match matches a HEAD request with the
// path's GET route when there is no HEAD route, and fasthttp writes the answer's headers without its body
// (Content-Length stays the length of the body GET would have sent).
//
//   - request-response and http routes call the backend as for GET (the gateway entry carries method HEAD)
//     and drop the body: status, Content-Type and Content-Length are those of the GET answer.
//   - request-stream routes answer the stream's headers (200, the Content-Type the format and Accept
//     choose, Cache-Control: no-cache, chunked) WITHOUT opening a stream: a HEAD must not start backend
//     work whose items nobody reads. serveStreamHead does this.
//   - WebSocket routes answer as a GET without an upgrade does (426, headers only).

// serveStreamHead answers HEAD on a request-stream route: the headers a GET would get, no backend call.
func (s *Server) serveStreamHead(ctx *fasthttp.RequestCtx, rt *route) int {
	ctx.SetStatusCode(fasthttp.StatusOK)
	if chooseFormat(rt.format, ctx.Request.Header.Peek(fasthttp.HeaderAccept)) == formatSSE {
		ctx.Response.Header.SetContentTypeBytes(strTextEventStream)
	} else {
		ctx.Response.Header.SetContentTypeBytes(strNDJSON)
	}
	ctx.Response.Header.SetCanonical(strCacheControl, strNoCache)
	ctx.Response.Header.SetCanonical(strXAccelBuffering, strNo)
	ctx.Response.Header.SetContentLength(-1) // as the GET answer: chunked, of unknown length
	return fasthttp.StatusOK
}
