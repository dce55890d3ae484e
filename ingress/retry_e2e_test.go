package ingress

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/frame"
)

// flaky is a backend whose n-th request (counted over all its connections) fails or is slow by rule.
type flaky struct {
	n        atomic.Int64
	canceled atomic.Int64
	// answer decides for request number n (1-based): nil = answer at once, else the error to send, or
	// errSlow to answer after slow.
	answer func(n int64) error
	slow   time.Duration
}

var errSlow = errors.New("slow")

func (b *flaky) handler() rsocket.Handler {
	return &rsocket.HandlerFuncs{
		RequestResponseFunc: func(req rsocket.Payload, s *rsocket.Stream) {
			n := b.n.Add(1)
			data := append([]byte(nil), req.Data...)
			switch err := b.answer(n); {
			case err == nil:
				_ = s.Respond(rsocket.Payload{Data: data})
			case err == errSlow:
				go func() {
					select {
					case <-time.After(b.slow):
						_ = s.Respond(rsocket.Payload{Data: data})
					case <-s.Done():
						b.canceled.Add(1)
					}
				}()
			default:
				var re *rsocket.Error
				if errors.As(err, &re) {
					_ = s.Error(re.Code, re.Message)
				}
			}
		},
	}
}

// metricValue reads one series from the gateway's metrics (0 when absent).
func (g *gateway) metricValue(series string) float64 {
	g.t.Helper()
	var buf bytes.Buffer
	g.set.WritePrometheus(&buf)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` ([0-9.e+-]+)$`).FindSubmatch(buf.Bytes())
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

var rejectedErr = &rsocket.Error{Code: frame.CodeRejected, Message: "busy"}

// startFlaky starts count backend instances sharing one flaky rule and a gateway with one backend "f"
// over all of them (2 connections each) and the given request-response routes.
func startFlaky(t *testing.T, b *flaky, count int, routes ...routeSpec) *gateway {
	t.Helper()
	var addrs []string
	for i := 0; i < count; i++ {
		addrs = append(addrs, startBackend(t, b.handler).addr)
	}
	cfg := newConfig(map[string]string{"f": addrs[0]}, routes)
	cfg.Backends["f"].Addresses = addrs
	cfg.Backends["f"].Connections = 2
	g := startGateway(t, cfg, Options{})
	testutil.Eventually(t, func() bool { return g.pools.Get("f").Stats().ReadyConns == 2*count }, "all connections")
	return g
}

// TestRetryRejectedSucceeds: a backend that REJECTs a quarter of its requests; with the default retry
// policy (attempts 2, on rejected) every client request succeeds, and the retries are counted.
func TestRetryRejectedSucceeds(t *testing.T) {
	b := &flaky{answer: func(n int64) error {
		if n%4 == 0 {
			return rejectedErr
		}
		return nil
	}}
	g := startFlaky(t, b, 2, routeSpec{name: "rr", method: "POST", path: "/rr", backend: "f", interaction: mapping.InteractionRequestResponse, tag: "x"})
	const n = 200
	failed := 0
	for i := 0; i < n; i++ {
		if r := g.do("POST", "/rr", "hi"); r.status != 200 || r.body != "hi" {
			failed++
		}
	}
	if failed != 0 {
		t.Errorf("%d of %d requests failed with retries on", failed, n)
	}
	rejected := b.n.Load() - n
	if rejected < n/4-1 {
		t.Errorf("backend saw %d requests for %d: the rejections were not retried", b.n.Load(), n)
	}
	if got := g.metricValue(`rsgate_retries_total{route="rr",reason="rejected"}`); got != float64(rejected) {
		t.Errorf("rsgate_retries_total{reason=rejected} = %v, want %d", got, rejected)
	}

	// The same backend without retries: a quarter fails.
	b.n.Store(0)
	g2 := startFlaky(t, b, 1, routeSpec{name: "once", method: "POST", path: "/once", backend: "f",
		interaction: mapping.InteractionRequestResponse, tag: "x", mutate: func(r *mapping.Route) { r.Retry.Attempts = 1 }})
	failed = 0
	for i := 0; i < 40; i++ {
		if r := g2.do("POST", "/once", "hi"); r.status == 503 {
			failed++
		}
	}
	if failed != 10 {
		t.Errorf("retry.attempts 1: %d of 40 failed with 503, want 10", failed)
	}
}

// TestRetryBudgetStopsStorm: a backend that REJECTs everything; retries stop at the budget (20% of the
// requests plus min_per_second x 10s), far below attempts x requests.
func TestRetryBudgetStopsStorm(t *testing.T) {
	b := &flaky{answer: func(int64) error { return rejectedErr }}
	g := startFlaky(t, b, 2, routeSpec{name: "storm", method: "POST", path: "/storm", backend: "f",
		interaction: mapping.InteractionRequestResponse, tag: "x", mutate: func(r *mapping.Route) {
			r.Retry = mapping.Retry{Attempts: 3, Budget: "20%", MinPerSecond: 1, On: []string{mapping.RetryRejected}}
		}})
	const n = 200
	for i := 0; i < n; i++ {
		if r := g.do("POST", "/storm", "hi"); r.status != 503 {
			t.Fatalf("request %d: status %d, want 503", i, r.status)
		}
	}
	retries := b.n.Load() - n
	// Budget: 10 (1/s x 10s) + 20% x 200 = 50. Without it: 2 x 200 = 400.
	if retries > 50 || retries < 40 {
		t.Errorf("backend saw %d retries for %d requests, want 40..50 (the budget)", retries, n)
	}
	if got := g.metricValue(`rsgate_retries_total{route="storm",reason="rejected"}`); got != float64(retries) {
		t.Errorf("rsgate_retries_total = %v, want %d", got, retries)
	}
	if got := g.metricValue(`rsgate_retry_budget_exhausted_total{route="storm"}`); got < n-50 {
		t.Errorf("rsgate_retry_budget_exhausted_total = %v, want at least %d", got, n-50)
	}
}

// TestRetryApplicationErrorOnlyIdempotent: APPLICATION_ERROR is not retried by default; an idempotent
// route that lists it retries it.
func TestRetryApplicationErrorOnlyIdempotent(t *testing.T) {
	b := &flaky{answer: func(n int64) error {
		if n%2 == 1 {
			return &rsocket.Error{Code: frame.CodeApplicationError, Message: "oops"}
		}
		return nil
	}}
	g := startFlaky(t, b, 1,
		routeSpec{name: "plain", method: "POST", path: "/plain", backend: "f", interaction: mapping.InteractionRequestResponse, tag: "x"},
		routeSpec{name: "idem", method: "POST", path: "/idem", backend: "f", interaction: mapping.InteractionRequestResponse, tag: "x",
			mutate: func(r *mapping.Route) {
				r.Idempotent = true
				r.Hedge.Max = 0
				r.Retry.On = []string{mapping.RetryRejected, mapping.RetryApplicationError}
			}},
	)
	if r := g.do("POST", "/plain", "hi"); r.status != 500 || b.n.Load() != 1 {
		t.Fatalf("plain route: status %d after %d backend requests, want 500 after 1", r.status, b.n.Load())
	}
	b.n.Store(0)
	if r := g.do("POST", "/idem", "hi"); r.status != 200 || b.n.Load() != 2 {
		t.Fatalf("idempotent route: status %d after %d backend requests, want 200 after 2", r.status, b.n.Load())
	}
}

// TestRetryPerTryTimeout: an idempotent route with per_try_timeout and on: [timeout] cancels a stuck try
// and answers from the retry.
func TestRetryPerTryTimeout(t *testing.T) {
	b := &flaky{slow: 5 * time.Second, answer: func(n int64) error {
		if n == 1 {
			return errSlow
		}
		return nil
	}}
	g := startFlaky(t, b, 2, routeSpec{name: "pt", method: "POST", path: "/pt", backend: "f", interaction: mapping.InteractionRequestResponse, tag: "x",
		mutate: func(r *mapping.Route) {
			r.Idempotent = true
			r.Hedge.Max = 0
			r.Retry.On = []string{mapping.RetryTimeout}
			r.Retry.PerTryTimeout = mapping.Duration(100 * time.Millisecond)
		}})
	if r := g.do("POST", "/pt", "hi"); r.status != 200 || r.body != "hi" {
		t.Fatalf("status %d body %q, want 200 from the retry", r.status, r.body)
	}
	testutil.Eventually(t, func() bool { return b.canceled.Load() == 1 }, "CANCEL of the stuck try")
}

// TestHedgingCutsSlowAnswers: a backend of two instances answering every 20th request (5%) after 300ms.
// Without hedging about 5% of the client's requests wait for a slow answer; with hedge {after: p95}
// almost none do, the slow copies are canceled, and hedges are counted.
func TestHedgingCutsSlowAnswers(t *testing.T) {
	b := &flaky{slow: 300 * time.Millisecond, answer: func(n int64) error {
		if n%20 == 0 {
			return errSlow
		}
		return nil
	}}
	idem := func(hedge int) func(r *mapping.Route) {
		return func(r *mapping.Route) {
			r.Idempotent = true
			r.Hedge = mapping.Hedge{After: mapping.HedgeAfterP95, Max: hedge}
		}
	}
	g := startFlaky(t, b, 2,
		routeSpec{name: "plain", method: "POST", path: "/plain", backend: "f", interaction: mapping.InteractionRequestResponse, tag: "x", mutate: idem(0)},
		routeSpec{name: "hedged", method: "POST", path: "/hedged", backend: "f", interaction: mapping.InteractionRequestResponse, tag: "x", mutate: idem(1)},
	)
	// run sends n requests from 4 clients and counts those that took 250ms or more.
	run := func(path string, n int) int {
		var slow atomic.Int64
		var wg sync.WaitGroup
		per := n / 4
		for c := 0; c < 4; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < per; i++ {
					start := time.Now()
					if r := g.do("POST", path, "hi"); r.status != 200 {
						t.Errorf("%s: status %d", path, r.status)
						return
					}
					if time.Since(start) >= 250*time.Millisecond {
						slow.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		return int(slow.Load())
	}
	plain := run("/plain", 200)
	run("/hedged", 100) // warm-up: the route learns its p95 (hedging starts after 64 answers)
	canceledBefore := b.canceled.Load()
	hedged := run("/hedged", 200)
	t.Logf("requests waiting >= 250ms: %d of 200 without hedging, %d of 200 with hedging", plain, hedged)
	if plain < 5 {
		t.Fatalf("only %d of 200 requests were slow without hedging: the backend rule did not work", plain)
	}
	if hedged > 2 {
		t.Errorf("%d of 200 hedged requests waited for a slow answer, want at most 2", hedged)
	}
	if got := g.metricValue(`rsgate_hedges_total{route="hedged"}`); got < 5 {
		t.Errorf("rsgate_hedges_total = %v, want at least 5", got)
	}
	testutil.Eventually(t, func() bool { return b.canceled.Load()-canceledBefore >= 5 }, "CANCEL of the slow copies")
}

// TestRetryCondition: the classification of failed tries.
func TestRetryCondition(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		cause error
		sent  bool
		want  retryCond
	}{
		{"rejected", rejectedErr, nil, true, condRejected},
		{"application error", &rsocket.Error{Code: frame.CodeApplicationError}, nil, true, condApplicationError},
		{"invalid", &rsocket.Error{Code: frame.CodeInvalid}, nil, true, 0},
		{"closed before send", rsocket.ErrClosed, nil, false, condUnsent},
		{"closed after send", rsocket.ErrClosed, nil, true, condConnectionLost},
		{"no lease", rsocket.ErrNoLease, nil, false, condNoLease},
		{"per-try timeout", context.DeadlineExceeded, nil, true, condTimeout},
		{"route timeout", context.DeadlineExceeded, ErrRouteTimeout, true, 0},
		{"client gone", context.Canceled, ErrClientGone, true, 0},
		{"too large", rsocket.ErrTooLarge, nil, true, 0},
	} {
		if got := condition(tc.err, tc.cause, tc.sent); got != tc.want {
			t.Errorf("%s: condition = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestLatencySketchP95: the histogram's p95 sits at the 95th percentile within a bucket (19%).
func TestLatencySketchP95(t *testing.T) {
	var s latencySketch
	if s.p95() != 0 {
		t.Fatal("p95 known before any sample")
	}
	for i := 0; i < 10000; i++ {
		s.observe(time.Duration(i%100+1) * time.Millisecond) // uniform 1..100ms: p95 = 95ms
	}
	if got := s.p95(); got < 95*time.Millisecond || got > 115*time.Millisecond {
		t.Errorf("p95 = %v, want about 95ms", got)
	}
}
