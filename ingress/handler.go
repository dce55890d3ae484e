package ingress

import (
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/rsgate/rsgate/internal/httpmeta"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/pool"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/extension"
)

// request is the pooled per-request state of the handler.
type request struct {
	ps   mapping.Params
	md   []byte // request metadata buffer
	call *callCtx
	// subject is the authenticated subject, set by authentication before the policies run; rate limits
	// with key subject use it (ratelimit.go). nil: anonymous.
	subject []byte
	// certSubject is the verified client certificate's subject (tls_principal.go), for rate limits with
	// key subject when auth gave no subject. nil: no verified certificate.
	certSubject []byte
	// policy is the route whose policies admitted the request, and rl the RateLimit values they answered
	// (policy.go: reapplied after a proxied response replaced the headers).
	policy *route
	rl     rateLimitState

	// For the access log: the backend connection slot the request was sent on, and the RSocket stream id
	// on that connection (0: none yet).
	upstream *poolMember
	streamID uint32

	admitted  bool          // holds admission slots (admission.go)
	admitWait time.Duration // time spent in admission queues
	// principal is the verified identity's metadata entry (auth.go), shared and immutable; nil: none.
	principal []byte
}

var requestPool = sync.Pool{New: func() any {
	return &request{md: make([]byte, 0, 256), call: newCallCtx()}
}}

func acquireRequest() *request { return requestPool.Get().(*request) }

func releaseRequest(rq *request) {
	rq.ps.Reset()
	rq.upstream, rq.streamID, rq.subject, rq.certSubject, rq.policy, rq.principal = nil, 0, nil, nil, nil, nil
	rq.admitted, rq.admitWait = false, 0
	if !rq.call.finish() {
		rq.call = newCallCtx() // its timer may still fire: never reuse it
	}
	if cap(rq.md) > maxPooledMetadata {
		rq.md = make([]byte, 0, 256)
	}
	requestPool.Put(rq)
}

// maxPooledMetadata: metadata buffers that grew beyond this are dropped instead of pooled.
const maxPooledMetadata = 64 << 10

var (
	strAllow      = []byte("Allow")
	strNoRoute    = "no route"
	strNotAllowed = "method not allowed"
)

// handle is the fasthttp handler: match, then dispatch on the route's interaction.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	ctx.Time() // the one clock read of the request (LazyRequestTime): its start for timeouts and metrics
	st := s.state.Load()
	rq := acquireRequest()
	if st.preflight && s.preflight(ctx, st, rq) { // cors.go: CORS preflights answered by the gateway
		return
	}
	path := ctx.Path()
	cr, res := st.table.Match(ctx.Method(), path, &rq.ps)
	switch res {
	case mapping.MatchOK:
	case mapping.MatchMethodNotAllowed:
		if allow := st.table.Allowed(path); allow != "" {
			ctx.Response.Header.SetBytesK(strAllow, allow)
		}
		writeJSONError(ctx, fasthttp.StatusMethodNotAllowed, strNotAllowed, CodeMethodNotAllowed, path)
		s.finishUnmatched(ctx, st, rq)
		return
	default:
		if fb := s.opts.Fallback; fb != nil {
			fb(ctx)
		} else {
			writeJSONError(ctx, fasthttp.StatusNotFound, strNoRoute, CodeNoRoute, path)
		}
		s.finishUnmatched(ctx, st, rq)
		return
	}
	rt := st.routes[cr.Index]
	if rt.split != nil {
		rt = rt.split.pick(ctx) // a variant of the route bound to the chosen backend (split.go)
	}
	rt.m.begin(rq)
	if !s.applyPolicies(ctx, st, st.routes[cr.Index], rq) { // policy.go: CORS, parameters, auth (401/403), rate limit
		s.finish(ctx, st, rt, rq, ctx.Response.StatusCode())
		return
	}
	if body := ctx.PostBody(); len(body) > rt.maxBody {
		writeJSONError(ctx, fasthttp.StatusRequestEntityTooLarge, "request body over the route's size limit", CodeBodyTooLarge, nil)
		s.finish(ctx, st, rt, rq, fasthttp.StatusRequestEntityTooLarge)
		return
	}
	if (rt.adm.r != nil || rt.adm.backend != nil) && !s.admit(ctx, rt, rq) {
		s.finish(ctx, st, rt, rq, fasthttp.StatusServiceUnavailable)
		return
	}
	if rt.shadow != nil {
		s.finish(ctx, st, rt, rq, s.serveShadowed(ctx, rt, rq)) // shadow.go
		return
	}
	var status int
	switch rt.kind {
	case kindHTTP:
		status = s.serveHTTP(ctx, rt, rq) // http_proxy.go
	case kindRequestResponse:
		status = s.serveRequestResponse(ctx, rt, rq)
	case kindFireAndForget:
		status = s.serveFireAndForget(ctx, rt, rq)
	case kindRequestStream:
		if ctx.IsHead() {
			status = s.serveStreamHead(ctx, rt) // head.go: headers only, no stream opened
			break
		}
		if s.serveStream(ctx, st, rt, rq) {
			// The stream owns the request state and the metrics/access log from now on.
			return
		}
		status = ctx.Response.StatusCode()
	case kindRequestChannel:
		status = s.serveChannel(ctx, rt, rq)
	case kindRSocket:
		status = s.serveRSocket(ctx, rt)
	default:
		status = fasthttp.StatusNotImplemented
		writeJSONError(ctx, status, "interaction "+rt.cr.Interaction+" is not implemented in this build", CodeNotImplemented, nil)
	}
	s.finish(ctx, st, rt, rq, status)
}

func (s *Server) finishUnmatched(ctx *fasthttp.RequestCtx, st *state, rq *request) {
	status := ctx.Response.StatusCode()
	d := time.Since(ctx.Time())
	st.unmatched.count(status, d)
	if st.accessLog {
		s.accessLog(st, ctx.Method(), ctx.Path(), "", "", status, len(ctx.Response.Body()), d, nil, 0)
	}
	releaseRequest(rq)
}

func (s *Server) finish(ctx *fasthttp.RequestCtx, st *state, rt *route, rq *request, status int) {
	d := time.Since(ctx.Time())
	if rq.admitted {
		rq.releaseAdmission(rt, d)
	}
	rt.m.end(rq, status, d)
	if st.accessLog {
		s.accessLog(st, ctx.Method(), ctx.Path(), rt.name, rt.backend, status, responseSize(&ctx.Response), d, rq.upstream, rq.streamID)
	}
	releaseRequest(rq)
}

// accessLog writes one access log line. log.access_log.sample samples 2xx and 3xx answers only: 4xx and
// 5xx answers (and 1xx) are always logged. The line goes to Options.AccessLog (the gateway's is unsampled
// and asynchronous, accesslog.go), else to Options.Logger.
// up is the backend connection slot the request went to (nil: none); streamID its RSocket stream id on
// that connection (0: none, e.g. a request-channel whose first message has not arrived yet at 101).
func (s *Server) accessLog(st *state, method, path []byte, route, backend string, status, bytes int, d time.Duration,
	up *poolMember, streamID uint32) {
	if status >= 200 && status < 400 && st.sample < 1 && rand.Float64() >= st.sample {
		return
	}
	if ce := s.accessLogger().Check(zap.InfoLevel, "access"); ce != nil {
		// Copies: method and path live in fasthttp's reused buffers, and a zap core may keep fields.
		ce.Write(
			zap.String("method", string(method)),
			zap.String("path", string(path)),
			zap.String("route", route),
			zap.Int("status", status),
			zap.Int("bytes", bytes),
			zap.Duration("duration", d),
			zap.String("backend", backend),
			upstreamField(up),
			upstreamSlotField(up),
			streamIDField(streamID),
		)
	}
}

// upstreamField is the address of the backend connection (as /backends shows it), when there is one.
func upstreamField(up *poolMember) zap.Field {
	if up == nil {
		return zap.Skip()
	}
	return zap.String("upstream", up.Addr())
}

// upstreamSlotField tells the connections to one address apart (the slot of /backends).
func upstreamSlotField(up *poolMember) zap.Field {
	if up == nil {
		return zap.Skip()
	}
	return zap.Int("upstream_slot", up.Slot())
}

// streamIDField is the RSocket stream id of the request on the backend connection, when it has one.
func streamIDField(id uint32) zap.Field {
	if id == 0 {
		return zap.Skip()
	}
	return zap.Uint32("stream_id", id)
}

// prepare builds the request metadata into rq.md and picks a backend connection for rt. When it cannot,
// it answers the error (400 for a request the metadata cannot be built from, else the pool's error) and
// returns false.
func (s *Server) prepare(ctx *fasthttp.RequestCtx, rt *route, rq *request) ([]byte, *poolMember, bool) {
	mr := s.metaRequestOf(ctx, rq)
	md, err := appendRequestMetadata(rq.md, rt, &rq.ps, &mr)
	if err != nil {
		writeJSONError(ctx, fasthttp.StatusBadRequest, err.Error(), CodeBadRequest, nil)
		return nil, nil, false
	}
	if md != nil {
		rq.md = md[:0] // keep the grown buffer
	}
	p := s.pools.Get(rt.backend)
	if p == nil {
		writeJSONError(ctx, fasthttp.StatusBadGateway, "backend "+rt.backend+" has no connection pool", CodeNoBackend, nil)
		return nil, nil, false
	}
	m, err := pick(p, rt)
	if err != nil && errors.Is(err, pool.ErrClosed) {
		// A reload replaced the pool between Get and Pick: the new one is in place already.
		if np := s.pools.Get(rt.backend); np != nil && np != p {
			m, err = pick(np, rt)
		}
	}
	if err != nil {
		writeFailure(ctx, classify(err, nil, rt))
		return nil, nil, false
	}
	rq.upstream = m
	return md, m, true
}

// pick takes a slot on p for rt: a session slot for streams and channels (long-lived, not against
// max_inflight; ended with DoneSession), a request slot otherwise.
func pick(p *pool.Pool, rt *route) (*poolMember, error) {
	if rt.kind == kindRequestStream || rt.kind == kindRequestChannel {
		return p.PickSession()
	}
	return p.Pick()
}

func (s *Server) serveRequestResponse(ctx *fasthttp.RequestCtx, rt *route, rq *request) int {
	if rt.retry != nil {
		return s.serveRetried(ctx, rt, rq) // retry.go
	}
	md, m, ok := s.prepare(ctx, rt, rq)
	if !ok {
		return ctx.Response.StatusCode()
	}
	c := rq.call
	c.start(ctx.Time(), rt.timeout)
	c.conn = ctx.Conn() // watched for a disconnect if the call turns out slow
	s.calls.add(c)
	start := c.started
	var (
		msg *rsocket.Message
		err error
	)
	if conn := m.Conn(); conn != nil {
		msg, rq.streamID, err = conn.RequestResponse(c, rsocket.Payload{Metadata: md, Data: ctx.PostBody()})
	} else {
		err = rsocket.ErrClosed
	}
	m.Done(start, countsAgainstBackend(err))
	return s.endCall(ctx, rt, c, msg, err)
}

// endCall ends a request-response call (plain or retried): it stops watching the call and writes the
// answer, or the failure err maps to, into the HTTP response.
func (s *Server) endCall(ctx *fasthttp.RequestCtx, rt *route, c *callCtx, msg *rsocket.Message, err error) int {
	if w := s.calls.remove(c); w != nil {
		w.stop()
	}
	if err != nil {
		f := classify(err, c.Cause(), rt)
		writeFailure(ctx, f)
		return f.status
	}
	status := writeAnswer(ctx, rt, msg)
	msg.Release()
	return status
}

func (s *Server) serveFireAndForget(ctx *fasthttp.RequestCtx, rt *route, rq *request) int {
	md, m, ok := s.prepare(ctx, rt, rq)
	if !ok {
		return ctx.Response.StatusCode()
	}
	c := rq.call
	c.start(ctx.Time(), rt.timeout)
	s.calls.add(c)
	start := c.started
	var err error
	if conn := m.Conn(); conn != nil {
		rq.streamID, err = conn.FireAndForget(c, rsocket.Payload{Metadata: md, Data: ctx.PostBody()}, rsocket.FireAndForgetOptions{})
	} else {
		err = rsocket.ErrClosed
	}
	m.Done(start, err)
	s.calls.remove(c)
	if err != nil {
		f := classify(err, c.Cause(), rt)
		writeFailure(ctx, f)
		return f.status
	}
	ctx.SetStatusCode(fasthttp.StatusAccepted)
	return fasthttp.StatusAccepted
}

// writeAnswer copies a request-response answer into the HTTP response: status 200 and the backend's data
// MIME as Content-Type, unless the answer's metadata carries a gateway response entry (status, headers) or
// a per-stream mime-type entry.
func writeAnswer(ctx *fasthttp.RequestCtx, rt *route, msg *rsocket.Message) int {
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.Response.Header.SetContentTypeBytes(rt.contentType)
	if msg.Metadata != nil && rt.mdKind == mdComposite {
		applyResponseMetadata(&ctx.Response, msg.Metadata)
	}
	ctx.SetBody(msg.Data)
	return ctx.Response.StatusCode()
}

// applyResponseMetadata applies the entries of a response's composite metadata the gateway understands.
// Malformed metadata is ignored (the answer itself is still delivered).
func applyResponseMetadata(resp *fasthttp.Response, md []byte) {
	it := extension.NewCompositeIter(md)
	for it.Next() {
		e := it.Entry()
		switch {
		case e.WellKnown && e.MimeID == extension.IDMimeType:
			if ref, err := extension.ParseMimeTypeRef(e.Value); err == nil {
				if ref.WellKnown {
					if name, ok := extension.MimeName(ref.ID); ok && name != "" {
						resp.Header.SetContentType(name)
					}
				} else {
					resp.Header.SetContentTypeBytes(ref.Name)
				}
			}
		case !e.WellKnown && string(e.Mime) == MimeGateway:
			v, err := httpmeta.ParseResponse(e.Value)
			if err != nil {
				continue
			}
			if v.Status >= 100 && v.Status <= 599 {
				resp.SetStatusCode(v.Status)
			}
			h := v.Headers
			for h.Next() {
				name := h.Name()
				switch {
				case hopByHop(name):
				case httpmeta.EqualFold(name, "content-type"):
					resp.Header.SetContentTypeBytes(h.Value())
				default:
					resp.Header.AddBytesKV(name, h.Value())
				}
			}
		}
	}
}

// hopByHop reports headers a backend may not set on the HTTP response: connection management and framing
// belong to the gateway.
func hopByHop(name []byte) bool {
	for _, h := range hopByHopHeaders {
		if httpmeta.EqualFold(name, h) {
			return true
		}
	}
	return false
}

var hopByHopHeaders = [...]string{"connection", "keep-alive", "proxy-connection", "transfer-encoding",
	"content-length", "te", "trailer", "upgrade", "server", "date"}
