package ingress

import (
	"context"
	"errors"
	"hash/maphash"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket"
)

// Shadow traffic (route key "shadow"): the client is served by the route's backend as usual; a copy of the
// request (method, upstream path and query, headers, body; or routing metadata and body for an RSocket
// shadow) is made before serving and sent to the shadow backend from a goroutine. The copy is bounded by
// shadow.max_concurrency (a semaphore taken without waiting: when it is full the copy is dropped and
// counted), and by shadow.timeout. Nothing of the shadow reaches the client, and the served request does
// not wait for it.
//
// With shadow.compare, both answers are reduced to a status and a body digest (64-bit maphash and length;
// a streamed served body is digested while it streams) and the pair is counted when both are known:
//
//	rsgate_shadow_requests_total{route="...",result="match"}     same status class; for 2xx also the same body
//	rsgate_shadow_requests_total{route="...",result="mismatch"}  different status class, or different 2xx body
//	rsgate_shadow_requests_total{route="...",result="error"}     the shadow failed (transport, timeout, no
//	                                                              connection), or the served body was cut short
//	rsgate_shadow_requests_total{route="...",result="dropped"}   max_concurrency copies were already running
//	rsgate_shadow_requests_total{route="...",result="sent"}      compare is off: the copy was delivered
//
// An RSocket answer's status is 200 (or the status of its gateway response entry); an RSocket ERROR counts
// with the status the route would have answered (the error table), so a legacy 404 and an
// APPLICATION_ERROR mapped to 404 match. Bodies are compared only when both statuses are 2xx, and not at
// all when the served interaction is fire-and-forget (202, no body).

// Shadow results, the values of the result label.
const (
	shadowMatch = iota
	shadowMismatch
	shadowError
	shadowDropped
	shadowSent
	numShadowResults
)

var shadowResultNames = [numShadowResults]string{"match", "mismatch", "error", "dropped", "sent"}

// shadower is a route's shadow: the variant of the route bound to the shadow backend and the limits.
type shadower struct {
	target  *route // kind kindHTTP, kindRequestResponse or kindFireAndForget; timeout = shadow.timeout
	compare bool
	percent float64 // 0..1
	sem     chan struct{}
	results [numShadowResults]*metrics.Counter
}

func newShadower(routeName string, target *route, cfg *mapping.Shadow, set *metrics.Set) *shadower {
	sh := &shadower{
		target:  target,
		compare: cfg.Compare,
		percent: cfg.Percent / 100,
		sem:     make(chan struct{}, max(cfg.MaxConcurrency, 1)),
	}
	if set != nil {
		for i, name := range shadowResultNames {
			sh.results[i] = set.GetOrCreateCounter(`rsgate_shadow_requests_total{route="` + routeName + `",result="` + name + `"}`)
		}
	}
	return sh
}

func (sh *shadower) count(result int) {
	if c := sh.results[result]; c != nil {
		c.Inc()
	}
}

// digestSeed makes the digests of one process comparable.
var digestSeed = maphash.MakeSeed()

// bodyDigest reduces a body to its length and, when on, a 64-bit hash, as it passes.
type bodyDigest struct {
	h        maphash.Hash
	n        int64
	on       bool
	complete bool // the whole body was seen
}

func (d *bodyDigest) reset(on bool) {
	d.h.SetSeed(digestSeed)
	d.n, d.on, d.complete = 0, on, false
}

func (d *bodyDigest) write(p []byte) {
	d.n += int64(len(p))
	if d.on {
		_, _ = d.h.Write(p)
	}
}

// shadowCall is one shadowed request: the copy sent to the shadow backend and, when comparing, the two
// outcomes. Two parties report to it: the served request (primaryDone) and the shadow goroutine. The
// second to report counts the result and recycles the call.
type shadowCall struct {
	s        *Server
	sh       *shadower
	arrivals atomic.Int32

	// The copy.
	req     *fasthttp.Request // http shadow
	md      []byte            // RSocket shadow: request metadata
	data    []byte            // RSocket shadow: request body
	scratch []byte

	// Outcomes.
	bodyCompared bool // the served interaction has a body to compare
	pStatus      int
	pLen         int64
	pSum         uint64
	pComplete    bool
	sStatus      int
	sLen         int64
	sSum         uint64
	sFailed      bool
	buf          []byte // reading the shadow's body
}

var shadowCallPool = sync.Pool{New: func() any { return &shadowCall{buf: make([]byte, 16<<10)} }}

// serveShadowed serves a route that has a shadow: it starts the copy, serves the client from the route's
// backend and reports the served outcome.
func (s *Server) serveShadowed(ctx *fasthttp.RequestCtx, rt *route, rq *request) int {
	sc := s.startShadow(ctx, rt, rq)
	switch rt.kind {
	case kindHTTP:
		return s.proxyHTTP(ctx, rt, rq, sc)
	case kindFireAndForget:
		status := s.serveFireAndForget(ctx, rt, rq)
		sc.primaryDone(status, nil)
		return status
	default:
		status := s.serveRequestResponse(ctx, rt, rq)
		if sc != nil {
			var d bodyDigest
			d.reset(sc.sh.compare)
			d.write(ctx.Response.Body())
			d.complete = true
			sc.primaryDone(status, &d)
		}
		return status
	}
}

// startShadow copies the request and starts the shadow goroutine; nil when the request is not sampled,
// the copy was dropped (semaphore full) or could not be built (counted as an error).
func (s *Server) startShadow(ctx *fasthttp.RequestCtx, rt *route, rq *request) *shadowCall {
	sh := rt.shadow
	if sh.percent < 1 && rand.Float64() >= sh.percent {
		return nil
	}
	select {
	case sh.sem <- struct{}{}:
	default:
		sh.count(shadowDropped)
		return nil
	}
	c := shadowCallPool.Get().(*shadowCall)
	c.s, c.sh, c.bodyCompared = s, sh, rt.kind != kindFireAndForget
	t := sh.target
	if t.kind == kindHTTP {
		hp := s.httpPool(t.backend)
		if hp == nil {
			<-sh.sem
			sh.count(shadowError)
			c.recycle()
			return nil
		}
		c.req = fasthttp.AcquireRequest()
		c.scratch = buildUpstreamRequest(ctx, t, rq, hp, c.req, c.scratch)
		c.req.SetBody(ctx.PostBody()) // a copy: the shadow outlives the handler
	} else {
		mr := s.metaRequestOf(ctx, rq) // what the served request's metadata is built from
		md, err := appendRequestMetadata(c.md, t, &rq.ps, &mr)
		if err != nil {
			<-sh.sem
			sh.count(shadowError)
			c.recycle()
			return nil
		}
		c.md = md // nil: M flag clear, as for the served request
		c.data = append(c.data[:0], ctx.PostBody()...)
	}
	go c.run()
	return c
}

// primaryDone reports the served outcome; d nil means no body. Safe on a nil call.
func (c *shadowCall) primaryDone(status int, d *bodyDigest) {
	if c == nil {
		return
	}
	c.pStatus, c.pComplete = status, true
	c.pLen, c.pSum = 0, 0
	if d != nil {
		c.pLen, c.pComplete = d.n, d.complete
		if d.on {
			c.pSum = d.h.Sum64()
		}
	}
	c.arrive()
}

func (c *shadowCall) arrive() {
	if c.arrivals.Add(1) == 2 {
		c.finish()
	}
}

// run sends the copy and records the shadow's outcome.
func (c *shadowCall) run() {
	t := c.sh.target
	deadline := time.Now().Add(t.timeout)
	switch t.kind {
	case kindHTTP:
		c.runHTTP(t, deadline)
	default:
		c.runRSocket(t, deadline)
	}
	<-c.sh.sem
	c.arrive()
}

func (c *shadowCall) runHTTP(t *route, deadline time.Time) {
	hp := c.s.httpPool(t.backend)
	if hp == nil {
		c.sFailed = true
		return
	}
	up, err := hp.Pick()
	if err != nil {
		c.sFailed = true
		return
	}
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	err = up.Do(c.req, resp, deadline)
	if err == nil {
		c.sStatus = resp.StatusCode()
		var d bodyDigest
		d.reset(c.sh.compare)
		if r := resp.BodyStream(); r != nil {
			for {
				n, rerr := r.Read(c.buf)
				d.write(c.buf[:n])
				if rerr == io.EOF {
					break
				}
				if rerr != nil {
					err = rerr
					break
				}
			}
			if cerr := resp.CloseBodyStream(); err == nil {
				err = cerr
			}
		}
		c.sLen, c.sSum = d.n, d.h.Sum64()
	}
	hp.Done(up, err)
	c.sFailed = err != nil
}

func (c *shadowCall) runRSocket(t *route, deadline time.Time) {
	p := c.s.pools.Get(t.backend)
	if p == nil {
		c.sFailed = true
		return
	}
	m, err := p.Pick()
	if err != nil {
		c.sFailed = true
		return
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	conn := m.Conn()
	if conn == nil {
		m.Done(start, rsocket.ErrClosed)
		c.sFailed = true
		return
	}
	payload := rsocket.Payload{Metadata: c.md, Data: c.data}
	if t.kind == kindFireAndForget {
		_, err = conn.FireAndForget(ctx, payload, rsocket.FireAndForgetOptions{})
		m.Done(start, err)
		c.sFailed, c.sStatus = err != nil, fasthttp.StatusAccepted
		return
	}
	msg, _, err := conn.RequestResponse(ctx, payload)
	m.Done(start, countsAgainstBackend(err))
	if err != nil {
		var re *rsocket.Error
		if errors.As(err, &re) && !errors.Is(err, rsocket.ErrClosed) && ctx.Err() == nil {
			c.sStatus = classify(err, nil, t).status // an answer: compared with the status it would have had
			return
		}
		c.sFailed = true
		return
	}
	status := answerStatus(t, msg)
	var d bodyDigest
	d.reset(c.sh.compare)
	d.write(msg.Data)
	msg.Release()
	c.sStatus, c.sLen, c.sSum = status, d.n, d.h.Sum64()
}

// answerStatus is the HTTP status writeAnswer would give an RSocket answer: 200, or the status of its
// gateway response entry.
func answerStatus(rt *route, msg *rsocket.Message) int {
	if msg.Metadata == nil || rt.mdKind != mdComposite {
		return fasthttp.StatusOK
	}
	resp := fasthttp.AcquireResponse()
	resp.SetStatusCode(fasthttp.StatusOK)
	applyResponseMetadata(resp, msg.Metadata)
	status := resp.StatusCode()
	fasthttp.ReleaseResponse(resp)
	return status
}

// finish counts the result and recycles the call (both parties have reported).
func (c *shadowCall) finish() {
	sh := c.sh
	result := shadowMatch
	switch {
	case c.sFailed || !c.pComplete:
		result = shadowError
	case !sh.compare:
		result = shadowSent
	case c.pStatus/100 != c.sStatus/100:
		result = shadowMismatch
	case c.bodyCompared && c.pStatus/100 == 2 && (c.pLen != c.sLen || c.pLen > 0 && c.pSum != c.sSum):
		result = shadowMismatch
	}
	sh.count(result)
	c.recycle()
}

func (c *shadowCall) recycle() {
	if c.req != nil {
		fasthttp.ReleaseRequest(c.req)
	}
	if cap(c.data) > maxPooledMetadata {
		c.data = nil
	}
	if cap(c.scratch) > maxPooledMetadata {
		c.scratch = nil
	}
	*c = shadowCall{md: c.md[:0], data: c.data[:0], scratch: c.scratch[:0], buf: c.buf}
	shadowCallPool.Put(c)
}
