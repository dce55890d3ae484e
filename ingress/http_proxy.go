package ingress

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/rsgate/rsgate/pool"
)

// Interaction http: the request is proxied as HTTP/1.1 to a backend with transport http (a legacy REST
// service). The upstream path is the route's rewrite template expanded with the path parameters (or the
// request path), behind the path of the backend's address URLs; the query string is kept as sent.
// Hop-by-hop headers (Connection, Keep-Alive, Proxy-Connection, Proxy-Authenticate, Proxy-Authorization,
// TE, Trailer, Transfer-Encoding, Upgrade and every header named in Connection) are removed both ways;
// X-Forwarded-For gets the client's address appended, X-Forwarded-Proto and X-Forwarded-Host are set
// (the gateway is the edge: values sent by the client for those two are replaced).
//
// The response body is not buffered: its stream is handed to the server (SetBodyStream), which copies it
// to the client chunk by chunk, flushing each chunk when the length is unknown (chunked answers, SSE). The
// upstream connection and the pool's in-flight slot are held until the body has been copied, then the
// connection goes back to the keep-alive pool (or is closed when the copy stopped early).
//
// Errors: no http pool for the backend 502 NO_BACKEND; every address marked down 503 NO_CONNECTION,
// max_inflight or max_conns_per_address reached 503 OVERLOADED (both with Retry-After); route timeout
// (or http.read_timeout, or a dial timeout) 504 TIMEOUT; upstream unreachable or broken 502 BAD_GATEWAY.
// An error while the body streams cuts the client's response short (chunked: no final chunk), as HTTP
// proxies do.

// httpPools is implemented by *pool.Group: the pools of the backends with transport http.
type httpPools interface {
	HTTP(name string) *pool.HTTPPool
}

func (s *Server) httpPool(name string) *pool.HTTPPool {
	if hp, ok := s.pools.(httpPools); ok {
		return hp.HTTP(name)
	}
	return nil
}

// serveHTTP proxies the request of an http route (or an http split target).
func (s *Server) serveHTTP(ctx *fasthttp.RequestCtx, rt *route, rq *request) int {
	return s.proxyHTTP(ctx, rt, rq, nil)
}

// proxyHTTP proxies the request; sc (may be nil) receives the served status and body digest for a
// shadow comparison, possibly after proxyHTTP returned (streamed bodies report when they end).
func (s *Server) proxyHTTP(ctx *fasthttp.RequestCtx, rt *route, rq *request, sc *shadowCall) int {
	hp := s.httpPool(rt.backend)
	if hp == nil {
		writeJSONError(ctx, fasthttp.StatusBadGateway, "backend "+rt.backend+" has no http client pool", CodeNoBackend, nil)
		sc.primaryDone(fasthttp.StatusBadGateway, nil)
		return fasthttp.StatusBadGateway
	}
	up, err := hp.Pick()
	if err != nil {
		return s.httpFailure(ctx, rt, err, sc)
	}
	req := fasthttp.AcquireRequest()
	rq.md = buildUpstreamRequest(ctx, rt, rq, hp, req, rq.md)
	resp := fasthttp.AcquireResponse()
	var deadline time.Time
	if rt.timeout > 0 {
		deadline = time.Now().Add(rt.timeout)
	}
	err = up.Do(req, resp, deadline)
	fasthttp.ReleaseRequest(req) // written in full when Do returns; it referenced the client's body
	if err != nil {
		hp.Done(up, err)
		fasthttp.ReleaseResponse(resp)
		return s.httpFailure(ctx, rt, err, sc)
	}
	status := resp.StatusCode()
	copyUpstreamResponseHeader(&ctx.Response.Header, &resp.Header, ctx.Request.Header.Protocol())
	reapplyPolicyHeaders(ctx, rq) // policy.go: the copy replaced the CORS and RateLimit headers
	bs := resp.BodyStream()
	if bs == nil { // no body (HEAD, 204, 304)
		hp.Done(up, nil)
		fasthttp.ReleaseResponse(resp)
		sc.primaryDone(status, nil)
		return status
	}
	pb := proxyBodyPool.Get().(*proxyBody)
	pb.hp, pb.up, pb.resp, pb.r, pb.status = hp, up, resp, bs, status
	if sc != nil {
		pb.sc = sc
		pb.digest.reset(sc.sh.compare)
	}
	n := resp.Header.ContentLength()
	if n < 0 {
		n = -1 // chunked, or until close upstream: chunked to the client, flushed per chunk
		ctx.Response.ImmediateHeaderFlush = true
	}
	ctx.Response.SetBodyStream(pb, n)
	return status
}

// responseSize is the body size for the access log, without touching a body stream (Response.Body would
// read a proxied body into memory, and wait for an SSE stream to end): the Content-Length of a streamed
// body, -1 when it is unknown.
func responseSize(resp *fasthttp.Response) int {
	if resp.IsBodyStream() {
		return max(resp.Header.ContentLength(), -1)
	}
	return len(resp.Body())
}

// httpFailure answers a failed proxy attempt.
func (s *Server) httpFailure(ctx *fasthttp.RequestCtx, rt *route, err error, sc *shadowCall) int {
	f := classifyHTTP(err, rt)
	if ce := s.log.Check(zap.DebugLevel, "http upstream failed"); ce != nil {
		ce.Write(zap.String("route", rt.name), zap.String("backend", rt.backend), zap.Error(err))
	}
	writeFailure(ctx, f)
	sc.primaryDone(f.status, nil)
	return f.status
}

// classifyHTTP maps an HTTPPool.Pick or Upstream.Do error onto the error table. Messages name no
// internal address (they go to clients).
func classifyHTTP(err error, rt *route) failure {
	if ra, ok := pool.RetryAfter(err); ok {
		f := failure{status: fasthttp.StatusServiceUnavailable, code: CodeNoConnection, msg: "no upstream of backend " + rt.backend + " is available", retryAfter: ra}
		if errors.Is(err, pool.ErrOverloaded) {
			f.code, f.msg = CodeOverloaded, "backend "+rt.backend+" is at its in-flight limit"
		}
		return f
	}
	var ne net.Error
	switch {
	case errors.Is(err, pool.ErrClosed):
		return failure{status: fasthttp.StatusServiceUnavailable, code: CodeShuttingDown, msg: "gateway shutting down", retryAfter: time.Second}
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return failure{status: fasthttp.StatusServiceUnavailable, code: CodeOverloaded, msg: "backend " + rt.backend + " has no free connection", retryAfter: time.Second}
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout), errors.As(err, &ne) && ne.Timeout():
		return failure{status: fasthttp.StatusGatewayTimeout, code: CodeTimeout, msg: "upstream timeout (route timeout " + rt.timeout.String() + ")"}
	}
	var de *pool.DialError
	if errors.As(err, &de) {
		return failure{status: fasthttp.StatusBadGateway, code: CodeBadGateway, msg: "upstream of backend " + rt.backend + " unreachable"}
	}
	return failure{status: fasthttp.StatusBadGateway, code: CodeBadGateway, msg: "upstream of backend " + rt.backend + " failed"}
}

var (
	strXForwardedFor   = []byte("X-Forwarded-For")
	strXForwardedProto = []byte("X-Forwarded-Proto")
	strXForwardedHost  = []byte("X-Forwarded-Host")
	strHTTPS           = []byte("https")
	strHTTP            = []byte("http")
)

// hopHeaders are removed from requests and responses (RFC 9110 section 7.6.1, plus the legacy
// Proxy-Connection and the proxy authentication pair).
var hopHeaders = [...]string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// buildUpstreamRequest fills req from the client's request for route rt. scratch is a reusable buffer
// (returned, possibly grown). The client's body is referenced, not copied: req must be written before
// the handler returns.
func buildUpstreamRequest(ctx *fasthttp.RequestCtx, rt *route, rq *request, hp *pool.HTTPPool, req *fasthttp.Request, scratch []byte) []byte {
	ctx.Request.Header.CopyTo(&req.Header)
	removeHopHeaders(&req.Header)

	p := append(scratch[:0], hp.PathPrefix()...)
	p = rt.cr.AppendUpstreamPath(p, ctx.Path(), &rq.ps)
	uri := req.URI()
	uri.SetPathBytes(p)
	uri.SetQueryStringBytes(ctx.URI().QueryString())
	req.SetBodyRaw(ctx.PostBody())

	// X-Forwarded-For: what earlier proxies recorded, then the client's address.
	xff := p[:0]
	if prior := ctx.Request.Header.PeekBytes(strXForwardedFor); len(prior) > 0 {
		xff = append(append(xff, prior...), ", "...)
	}
	xff = appendRemoteIP(xff, ctx.RemoteAddr())
	req.Header.SetBytesKV(strXForwardedFor, xff)
	if ctx.IsTLS() {
		req.Header.SetBytesKV(strXForwardedProto, strHTTPS)
	} else {
		req.Header.SetBytesKV(strXForwardedProto, strHTTP)
	}
	req.Header.SetBytesKV(strXForwardedHost, ctx.Host())
	applyClientCertHeader(ctx, &req.Header) // gateway-set, never the client's (tls_edge.go)
	return xff[:0]
}

// appendRemoteIP appends the IP of a TCP address (IPv4-mapped addresses as IPv4), or "unknown".
func appendRemoteIP(dst []byte, a net.Addr) []byte {
	if ta, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap().AppendTo(dst)
		}
	}
	return append(dst, "unknown"...)
}

// headerList is the subset of fasthttp's request and response headers removeHop needs.
type headerList interface {
	Peek(key string) []byte
	DelBytes(key []byte)
	Del(key string)
}

// removeHop deletes the headers named in Connection, then the hop-by-hop headers.
func removeHop(h headerList) {
	if conn := h.Peek("Connection"); len(conn) > 0 {
		var buf [128]byte
		list := append(buf[:0], conn...) // Del may reuse the value's storage
		for len(list) > 0 {
			var tok []byte
			tok, list = nextToken(list)
			if len(tok) > 0 {
				h.DelBytes(tok)
			}
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
}

func removeHopHeaders(h *fasthttp.RequestHeader) {
	removeHop(h)
	h.ResetConnectionClose()
}

// nextToken splits the first element off a comma-separated header value, trimmed of spaces and tabs.
func nextToken(list []byte) (tok, rest []byte) {
	i := 0
	for i < len(list) && list[i] != ',' {
		i++
	}
	tok, rest = list[:i], list[min(i+1, len(list)):]
	for len(tok) > 0 && (tok[0] == ' ' || tok[0] == '\t') {
		tok = tok[1:]
	}
	for len(tok) > 0 && (tok[len(tok)-1] == ' ' || tok[len(tok)-1] == '\t') {
		tok = tok[:len(tok)-1]
	}
	return tok, rest
}

// copyUpstreamResponseHeader copies status and end-to-end headers of an upstream response into the
// client's response, answering in the client's protocol version (an HTTP/1.0 upstream does not make the
// client's HTTP/1.1 connection HTTP/1.0). Framing (Content-Length) is set when the body is attached.
func copyUpstreamResponseHeader(dst, src *fasthttp.ResponseHeader, proto []byte) {
	src.CopyTo(dst)
	dst.SetProtocol(proto)
	removeHop(dst)
	dst.ResetConnectionClose() // an upstream "Connection: close" concerns the upstream connection only
}

// proxyBody is the body stream of a proxied response: it reads the upstream body and, when the response
// is being compared with a shadow's, digests it. The server closes it when the copy ends; Close releases
// the upstream response, the connection (back to keep-alive when the body was read to its end) and the
// pool slot.
type proxyBody struct {
	hp     *pool.HTTPPool
	up     *pool.Upstream
	resp   *fasthttp.Response
	r      io.Reader
	status int
	sc     *shadowCall
	digest bodyDigest
	err    error
}

var proxyBodyPool = sync.Pool{New: func() any { return new(proxyBody) }}

func (b *proxyBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 && b.sc != nil {
		b.digest.write(p[:n])
	}
	switch {
	case err == io.EOF:
		b.digest.complete = true
	case err != nil && b.err == nil:
		b.err = err
	}
	return n, err
}

// Close implements io.Closer; fasthttp calls it once, after the copy.
func (b *proxyBody) Close() error {
	err := b.resp.CloseBodyStream()
	b.hp.Done(b.up, b.err)
	fasthttp.ReleaseResponse(b.resp)
	if b.sc != nil {
		b.sc.primaryDone(b.status, &b.digest)
	}
	*b = proxyBody{}
	proxyBodyPool.Put(b)
	return err
}
