package ingress

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/frame"
)

// Retries and hedging of request-response routes (route keys idempotent, retry, hedge).
//
// A failed try is retried on another connection, preferably to another address (pool.PickOther), when
// its failure is one of the route's retry.on conditions, tries are left (retry.attempts counts the first),
// the route timeout has not fired, the client is still there, and the route's retry budget allows it.
// The conditions:
//
//   - rejected: ERROR[REJECTED] ("the request was not processed", RSocket spec), unsent: the connection
//     was closed before the request got a stream on it, no_lease: the connection's lease ran out between
//     pick and send. Safe on any route: the backend did nothing.
//   - application_error, timeout (retry.per_try_timeout expired; the try is canceled), connection_lost
//     (the connection ended after the request was queued): the backend may have done the work; mapping
//     accepts them only on idempotent routes.
//
// The budget (Finagle's RetryBudget): over a sliding window of 10 seconds, retries and hedges may be at
// most retry.budget x requests + retry.min_per_second x 10. A backend that fails everything therefore
// sees at most (1 + budget) times the client's load plus the floor, never attempts x the load.
//
// Hedging (hedge.go) runs copies of the first try of idempotent routes with hedge.max >= 1 beside it.

// retryWindow is the budget's sliding window, in one-second slots.
const retryWindow = 10

// retryCond is a bit per retry.on condition.
type retryCond uint8

const (
	condRejected retryCond = 1 << iota
	condUnsent
	condNoLease
	condApplicationError
	condTimeout
	condConnectionLost
)

var condNames = []struct {
	cond retryCond
	name string
}{
	{condRejected, mapping.RetryRejected},
	{condUnsent, mapping.RetryUnsent},
	{condNoLease, mapping.RetryNoLease},
	{condApplicationError, mapping.RetryApplicationError},
	{condTimeout, mapping.RetryTimeout},
	{condConnectionLost, mapping.RetryConnectionLost},
}

// retryPolicy is a route's compiled retry and hedge settings; nil on routes that neither retry nor hedge.
type retryPolicy struct {
	attempts int
	on       retryCond
	perTry   time.Duration
	budget   retryBudget

	hedges     int           // hedge.max; 0 = no hedging
	hedgeAfter time.Duration // fixed hedge.after; 0 with hedgeP95
	hedgeP95   bool
	latency    latencySketch // observed answer latency (hedge.after: p95)

	retries   [6]*metrics.Counter // rsgate_retries_total{route,reason}, by condNames index
	exhausted *metrics.Counter    // rsgate_retry_budget_exhausted_total{route}
	hedged    *metrics.Counter    // rsgate_hedges_total{route}
	hedgeWins *metrics.Counter    // rsgate_hedge_wins_total{route}
}

// newRetryPolicy compiles the route's retry and hedge keys (nil: nothing to do for this route). The
// configuration was validated by mapping.
func newRetryPolicy(cr *mapping.CompiledRoute, set *metrics.Set) *retryPolicy {
	if cr.Interaction != mapping.InteractionRequestResponse {
		return nil
	}
	r := &cr.Retry
	hedges := 0
	if cr.HedgeEnabled() {
		hedges = cr.Hedge.Max
	}
	if r.Attempts <= 1 && hedges == 0 {
		return nil
	}
	p := &retryPolicy{attempts: max(r.Attempts, 1), perTry: r.PerTryTimeout.D(), hedges: hedges}
	for _, c := range condNames {
		if r.Retries(c.name) {
			p.on |= c.cond
		}
	}
	frac, _ := r.BudgetFraction()
	p.budget.ratio = frac
	p.budget.reserve = float64(r.MinPerSecond * retryWindow)
	if hedges > 0 {
		p.hedgeAfter, p.hedgeP95, _ = cr.Hedge.Delay()
	}
	if set != nil {
		label := `route="` + cr.Name + `"`
		for i, c := range condNames {
			p.retries[i] = set.GetOrCreateCounter(`rsgate_retries_total{` + label + `,reason="` + c.name + `"}`)
		}
		p.exhausted = set.GetOrCreateCounter(`rsgate_retry_budget_exhausted_total{` + label + `}`)
		p.hedged = set.GetOrCreateCounter(`rsgate_hedges_total{` + label + `}`)
		p.hedgeWins = set.GetOrCreateCounter(`rsgate_hedge_wins_total{` + label + `}`)
	}
	return p
}

func (p *retryPolicy) countRetry(c retryCond) {
	for i, cn := range condNames {
		if cn.cond == c && p.retries[i] != nil {
			p.retries[i].Inc()
		}
	}
}

// condition classifies a failed try: which retry.on condition it is (0: none, never retried). cause is the
// request context's own cancellation (route timeout, shutdown, client gone: never retried); sent is whether
// the request got a stream on its connection.
func condition(err, cause error, sent bool) retryCond {
	if err == nil || cause != nil {
		return 0
	}
	var re *rsocket.Error
	switch {
	case errors.Is(err, rsocket.ErrNoLease):
		return condNoLease
	case errors.As(err, &re) && !errors.Is(err, rsocket.ErrClosed):
		switch re.Code {
		case frame.CodeRejected:
			return condRejected
		case frame.CodeApplicationError:
			return condApplicationError
		}
		return 0
	case errors.Is(err, rsocket.ErrClosed):
		if !sent {
			return condUnsent
		}
		return condConnectionLost
	case errors.Is(err, context.DeadlineExceeded):
		return condTimeout // a per-try timeout (the route's own timeout sets cause)
	}
	return 0
}

// retryBudget is the sliding-window token budget shared by the route's requests. Deposits and
// withdrawals are atomic adds on the current one-second slot; a withdrawal sums the window's slots.
type retryBudget struct {
	ratio   float64 // retry.budget as a fraction
	reserve float64 // retry.min_per_second x window
	slots   [retryWindow]budgetSlot
}

type budgetSlot struct {
	sec      atomic.Int64 // unix second the counts belong to
	requests atomic.Int64
	retries  atomic.Int64
}

// slot returns the slot of second sec, reset if it held an older second.
func (b *retryBudget) slot(sec int64) *budgetSlot {
	s := &b.slots[sec%retryWindow]
	if old := s.sec.Load(); old != sec && s.sec.CompareAndSwap(old, sec) {
		s.requests.Store(0)
		s.retries.Store(0)
	}
	return s
}

// deposit counts one request at time now.
func (b *retryBudget) deposit(now time.Time) { b.slot(now.Unix()).requests.Add(1) }

// withdraw takes one retry (or hedge) from the budget at time now; false: the budget is spent.
func (b *retryBudget) withdraw(now time.Time) bool {
	sec := now.Unix()
	var requests, retries int64
	for i := range b.slots {
		s := &b.slots[i]
		if sec-s.sec.Load() < retryWindow {
			requests += s.requests.Load()
			retries += s.retries.Load()
		}
	}
	if float64(retries+1) > b.reserve+b.ratio*float64(requests) {
		return false
	}
	b.slot(sec).retries.Add(1)
	return true
}

// serveRetried is serveRequestResponse for a route with a retry policy: tries one after another
// (retries), or concurrently (hedging, hedge.go).
func (s *Server) serveRetried(ctx *fasthttp.RequestCtx, rt *route, rq *request) int {
	pol := rt.retry
	md, m, ok := s.prepare(ctx, rt, rq)
	if !ok {
		return ctx.Response.StatusCode()
	}
	pol.budget.deposit(ctx.Time())
	c := rq.call
	c.start(ctx.Time(), rt.timeout)
	c.conn = ctx.Conn()
	s.calls.add(c)
	msg, err := s.retryLoop(c, rt, rq, m, md, ctx.PostBody())
	return s.endCall(ctx, rt, c, msg, err)
}

// try sends one request on m and waits for its answer (or for per_try_timeout); it calls m.Done. ctx is
// the call context c, or (own = true) a context of a hedged copy that already ends with c.
func (pol *retryPolicy) try(c *callCtx, ctx context.Context, m *poolMember, md, body []byte, id *uint32, start time.Time) (*rsocket.Message, error) {
	var (
		msg *rsocket.Message
		err error
	)
	if conn := m.Conn(); conn == nil {
		err = rsocket.ErrClosed
	} else if pol.perTry > 0 {
		tctx, cancel := childContext(c, ctx, time.Now().Add(pol.perTry))
		msg, *id, err = conn.RequestResponse(tctx, rsocket.Payload{Metadata: md, Data: body})
		cancel()
	} else {
		msg, *id, err = conn.RequestResponse(ctx, rsocket.Payload{Metadata: md, Data: body})
	}
	m.Done(start, countsAgainstBackend(err))
	return msg, err
}

// childContext returns a context that ends at deadline (zero: none), when parent ends, or when c (the
// request's call context, of which parent is c itself or a child) ends. It is not derived from c with the
// context package: c is pooled and reused after the request, and the context package's watcher goroutine
// could read c.Err() after that. The goroutine here captures c's done channel once and never reads c again.
func childContext(c *callCtx, parent context.Context, deadline time.Time) (context.Context, context.CancelFunc) {
	if cd, ok := c.Deadline(); ok && (deadline.IsZero() || cd.Before(deadline)) {
		deadline = cd
	}
	base := context.Background()
	if parent != context.Context(c) {
		base = parent // already a child context that ends with c
	}
	var (
		ctx    context.Context
		cancel context.CancelFunc
	)
	if deadline.IsZero() {
		ctx, cancel = context.WithCancel(base)
	} else {
		ctx, cancel = context.WithDeadline(base, deadline)
	}
	if base == context.Background() {
		done := c.Done()
		go func() {
			select {
			case <-done:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	return ctx, cancel
}

// retryLoop runs the tries one after another.
func (s *Server) retryLoop(c *callCtx, rt *route, rq *request, m *poolMember, md, body []byte) (*rsocket.Message, error) {
	pol := rt.retry
	p := m.Pool() // retries and hedges pick from the pool the first try came from
	start := c.started
	for n := 1; ; n++ {
		var (
			id  uint32
			msg *rsocket.Message
			err error
		)
		if delay := pol.hedgeDelay(); n == 1 && pol.hedges > 0 && delay > 0 {
			msg, m, id, err = s.hedgedTry(c, pol, p, m, md, body, delay) // hedge.go
			rq.upstream = m
		} else {
			msg, err = pol.try(c, c, m, md, body, &id, start)
			if err == nil && pol.hedges > 0 {
				pol.latency.observe(time.Since(start)) // hedge.after: p95 learns from unhedged answers too
			}
		}
		if id != 0 {
			rq.streamID = id
		}
		if err == nil {
			return msg, nil
		}
		cond := condition(err, c.Cause(), id != 0)
		if cond == 0 || pol.on&cond == 0 || n >= pol.attempts {
			return nil, err
		}
		start = time.Now()
		if !pol.budget.withdraw(start) {
			inc(pol.exhausted)
			return nil, err
		}
		next, perr := p.PickOther(m)
		if perr != nil {
			return nil, err // nothing to retry on: the try's own error says more than the pick's
		}
		pol.countRetry(cond)
		m = next
		rq.upstream = m
	}
}
