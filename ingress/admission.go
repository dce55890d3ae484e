package ingress

import (
	"errors"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/rsgate/rsgate/internal/admission"
	"github.com/rsgate/rsgate/mapping"
)

// Admission control (README "Overload"). Request-response, fire-and-forget and http requests of a route
// take a slot of the route's limiter and of its backend's limiter before they are read further (the
// body is already in; the connection is not read again while the request waits). Streams and WebSocket
// sessions are long-lived and are not counted here: idle sessions must never use the slots short
// requests need. A request over the limit waits in the route's queue, parked on a channel, at most
// queue_timeout and never past its route timeout; then it gets 503 OVERLOADED with Retry-After.
//
// admissionLoop adjusts the adaptive limits every admissionTick from the latency samples of the tick and
// the gateway's CPU pressure (scheduling latency, internal/admission.Pressure).

const (
	admissionTick = 100 * time.Millisecond
	// admissionRetryAfter is the Retry-After hint of a shed request.
	admissionRetryAfter = time.Second
)

// admissionRef is what a route (and each of its split variants) needs at admission: its route limiter,
// priority and metrics, and the limiter of the backend the variant is bound to.
type admissionRef struct {
	r       *routeAdmission    // nil: the route is not admission-controlled (sessions, mode off)
	backend *admission.Limiter // nil: backend mode off
	bm      *admissionMetrics  // the backend's series
	prio    admission.Priority
}

// routeAdmission is a route's limiter and its metric series.
type routeAdmission struct {
	l   *admission.Limiter
	cfg mapping.Admission
	m   *admissionMetrics
}

// admissionMetrics are the series of one limiter (rsgate_admission_*{route=...} or
// rsgate_backend_admission_*{backend=...}).
type admissionMetrics struct {
	limit, inflight, queued *metrics.Gauge
	shed                    *metrics.Counter
}

func newAdmissionMetrics(set *metrics.Set, prefix, label string) *admissionMetrics {
	if set == nil {
		return nil
	}
	return &admissionMetrics{
		limit:    set.GetOrCreateGauge(prefix+`_limit{`+label+`}`, nil),
		inflight: set.GetOrCreateGauge(prefix+`_inflight{`+label+`}`, nil),
		queued:   set.GetOrCreateGauge(prefix+`_queued{`+label+`}`, nil),
		shed:     set.GetOrCreateCounter(prefix + `_shed_total{` + label + `}`),
	}
}

func (m *admissionMetrics) publish(l *admission.Limiter) {
	if m == nil {
		return
	}
	s := l.Stats()
	m.limit.Set(float64(s.Limit))
	m.inflight.Set(float64(s.InFlight))
	m.queued.Set(float64(s.Queued))
}

func (m *admissionMetrics) countShed() {
	if m != nil {
		m.shed.Inc()
	}
}

func limiterMode(mode string) admission.Mode {
	switch mode {
	case mapping.AdmissionFixed:
		return admission.Fixed
	case mapping.AdmissionOff:
		return admission.Off
	}
	return admission.Adaptive
}

func priorityOf(p string) admission.Priority {
	switch p {
	case mapping.PriorityCritical:
		return admission.Critical
	case mapping.PriorityBackground:
		return admission.Background
	}
	return admission.Normal
}

// admissionLimits is the admission part of a state: every limiter, for the controller.
type admissionLimits struct {
	routes   []*routeAdmission
	backends map[string]*backendAdmission
}

type backendAdmission struct {
	l *admission.Limiter
	m *admissionMetrics
}

// compileAdmission gives every route of st its admission settings. old (nil at start) is the state being
// replaced: limiters whose settings did not change are kept, with their learned limit and their requests
// in flight.
func (st *state) compileAdmission(cfg *mapping.Config, set *metrics.Set, old *state) {
	oldRoutes := map[string]*routeAdmission{}
	oldBackends := map[string]*backendAdmission{}
	if old != nil {
		for _, rt := range old.routes {
			if rt.adm.r != nil {
				oldRoutes[rt.name] = rt.adm.r
			}
		}
		oldBackends = old.adm.backends
	}
	st.adm.routes, st.adm.backends = nil, map[string]*backendAdmission{}
	g := cfg.Limits.Admission
	backendOf := func(name string) (*admission.Limiter, *admissionMetrics) {
		if ba := st.adm.backends[name]; ba != nil {
			return ba.l, ba.m
		}
		b := cfg.Backends[name]
		if b == nil || g.Mode == mapping.AdmissionOff {
			return nil, nil
		}
		c := admission.Config{Mode: limiterMode(g.Mode), Max: max(b.MaxInflight, g.MinConcurrency), Min: g.MinConcurrency,
			Queue: g.Queue, QueueTimeout: g.QueueTimeout.D(), Priority: admission.Critical}
		if c.Mode == admission.Fixed || b.MaxInflight <= 0 {
			c.Max = max(b.MaxInflight, g.MaxConcurrency)
		}
		ba := oldBackends[name]
		if ba == nil || ba.l.Config() != c {
			ba = &backendAdmission{l: admission.New(c), m: newAdmissionMetrics(set, "rsgate_backend_admission", `backend="`+name+`"`)}
		}
		st.adm.backends[name] = ba
		return ba.l, ba.m
	}
	for _, rt := range st.routes {
		switch rt.kind {
		case kindRequestResponse, kindFireAndForget, kindHTTP:
		default:
			continue // sessions: counted apart (pool sessions), never against request slots
		}
		a := rt.cr.Admission
		if a.Mode == "" {
			a = g
		}
		prio := priorityOf(rt.cr.Priority)
		if a.Mode != mapping.AdmissionOff {
			c := admission.Config{Mode: limiterMode(a.Mode), Max: a.MaxConcurrency, Min: a.MinConcurrency, Queue: a.Queue,
				QueueTimeout: a.QueueTimeout.D(), Priority: prio}
			ra := oldRoutes[rt.name]
			if ra == nil || ra.l.Config() != c {
				ra = &routeAdmission{l: admission.New(c), cfg: a, m: newAdmissionMetrics(set, "rsgate_admission", `route="`+rt.name+`"`)}
			}
			rt.adm.r = ra
			st.adm.routes = append(st.adm.routes, ra)
		}
		rt.adm.prio = prio
		rt.adm.backend, rt.adm.bm = backendOf(rt.backend)
		if rt.split != nil {
			for _, v := range rt.split.targets {
				v.adm.r, v.adm.prio = rt.adm.r, prio
				v.adm.backend, v.adm.bm = backendOf(v.backend)
			}
		}
	}
}

// admit takes the route's and the backend's slots for a request, waiting in the queue if need be. false:
// the 503 is written.
func (s *Server) admit(ctx *fasthttp.RequestCtx, rt *route, rq *request) bool {
	a := &rt.adm
	if a.r != nil && !a.r.l.TryAcquire(a.prio) {
		if !s.admitSlow(ctx, rt, rq, a.r.l, a.r.m) {
			return false
		}
	}
	if a.backend != nil && !a.backend.TryAcquire(a.prio) {
		if !s.admitSlow(ctx, rt, rq, a.backend, a.bm) {
			if a.r != nil {
				a.r.l.Release(-1)
			}
			return false
		}
	}
	rq.admitted = true
	return true
}

// admitSlow waits in l's queue (a request over the limit). It records the wait so that the latency
// sample of the request excludes it.
func (s *Server) admitSlow(ctx *fasthttp.RequestCtx, rt *route, rq *request, l *admission.Limiter, m *admissionMetrics) bool {
	var deadline time.Time
	if rt.timeout > 0 {
		deadline = ctx.Time().Add(rt.timeout)
	}
	t0 := time.Now()
	err := l.Acquire(rt.adm.prio, deadline)
	rq.admitWait += time.Since(t0)
	if err == nil {
		return true
	}
	m.countShed()
	msg := "route " + rt.name + " is over its concurrency limit"
	if l != rt.adm.routeLimiter() {
		msg = "backend " + rt.backend + " is over its concurrency limit"
	}
	if errors.Is(err, admission.ErrQueueTimeout) {
		msg += " (queue timeout)"
	}
	writeFailure(ctx, failure{status: fasthttp.StatusServiceUnavailable, code: CodeOverloaded, msg: msg, retryAfter: admissionRetryAfter})
	return false
}

func (a *admissionRef) routeLimiter() *admission.Limiter {
	if a.r == nil {
		return nil
	}
	return a.r.l
}

// releaseAdmission frees the slots of an admitted request; d is its time in the handler.
func (rq *request) releaseAdmission(rt *route, d time.Duration) {
	rq.admitted = false
	rtt := d - rq.admitWait
	rq.admitWait = 0
	a := &rt.adm
	var norm time.Duration = -1
	if a.r != nil {
		if base := a.r.l.BaseRTT(); base > 0 {
			// The backend limiter sees latencies relative to each route's own baseline latency, so that
			// routes of different speeds on one backend do not read as queueing when their mix changes.
			norm = time.Duration(float64(rtt) / float64(base) * float64(time.Millisecond))
		}
		a.r.l.Release(rtt)
	}
	if a.backend != nil {
		a.backend.Release(norm)
	}
}

// startAdmission starts the controller unless it runs already (one per Server, whatever the number of
// Serve calls); it returns the function that stops it, or nil.
func (s *Server) startAdmission() func() {
	if !s.admOn.CompareAndSwap(false, true) {
		return nil
	}
	stop := make(chan struct{})
	go s.admissionLoop(stop)
	return func() {
		close(stop)
		s.admOn.Store(false)
	}
}

// admissionLoop runs the adaptive controller until stop is closed.
func (s *Server) admissionLoop(stop <-chan struct{}) {
	p := admission.NewPressure(0)
	t := time.NewTicker(admissionTick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		s.adjustAdmission(p.Sample())
	}
}

// adjustAdmission runs one controller step with CPU pressure level lvl. Pressure shrinks a saturated
// route only while other routes have traffic too: one route alone at full CPU has nobody to be
// protected from, and shrinking it would only add queueing.
func (s *Server) adjustAdmission(lvl int) {
	st := s.state.Load()
	active := 0
	for _, ra := range st.adm.routes {
		if ra.l.Pending() > 0 || ra.l.Stats().InFlight > 0 {
			active++
		}
	}
	for _, ra := range st.adm.routes {
		p := lvl
		if active < 2 {
			p = 0
		}
		ra.l.Adjust(p)
		ra.m.publish(ra.l)
	}
	for _, ba := range st.adm.backends {
		ba.l.Adjust(0)
		ba.m.publish(ba.l)
	}
}
