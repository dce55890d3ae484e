package mapping

import (
	"strconv"
	"strings"
	"time"
)

// Resilience keys: how a backend's connections are chosen (balancer, outlier) and how a route recovers
// from a failed or slow request-response (idempotent, retry, hedge). Every one of them is on by default
// with the values below; README "Retries, hedging and balancing" explains them.

// Balancer names (the values of a backend's "balancer" key).
const (
	BalancerWeighted = "weighted" // availability x predicted latency (rsocket-java's weighted strategy)
	BalancerP2C      = "p2c"      // power of two choices over peak EWMA latency x (outstanding + 1)
)

// Retry conditions (the values of a route's "retry.on" list). The first three are safe by the RSocket
// spec (nothing was processed) and allowed on every route; the others need idempotent: true.
const (
	RetryRejected         = "rejected"          // the backend answered ERROR[REJECTED]
	RetryUnsent           = "unsent"            // the connection was lost before the request frame was queued
	RetryNoLease          = "no_lease"          // the connection's lease ran out between pick and send
	RetryApplicationError = "application_error" // ERROR[APPLICATION_ERROR] (idempotent routes only)
	RetryTimeout          = "timeout"           // retry.per_try_timeout expired (idempotent routes only)
	RetryConnectionLost   = "connection_lost"   // the connection ended after the request was sent (idempotent only)
)

// Hedge delay keyword (a route's "hedge.after" may also be a duration).
const HedgeAfterP95 = "p95"

// Defaults and bounds of the resilience keys.
const (
	DefaultOutlierFailures     = 5
	DefaultOutlierEjectionTime = 30 * time.Second
	DefaultOutlierMaxEjected   = 50
	DefaultRetryAttempts       = 2
	DefaultRetryBudget         = "20%"
	DefaultRetryMinPerSecond   = 10
	DefaultHedgeMax            = 1
	MaxRetryAttempts           = 5
	MaxHedges                  = 3
)

// DefaultRetryOn is the default "retry.on" list: the conditions that are safe on every route.
var DefaultRetryOn = []string{RetryRejected, RetryUnsent, RetryNoLease}

var retryConditions = []string{RetryRejected, RetryUnsent, RetryNoLease, RetryApplicationError, RetryTimeout, RetryConnectionLost}

// Outlier is a backend's "outlier" section: an address whose requests fail this many times in a row is
// taken out of the balancer for ejection_time (growing with each new ejection, capped at 10x), then gets
// one probe request at a time until one succeeds.
type Outlier struct {
	// ConsecutiveFailures ejects an address after this many failed requests in a row (connection lost,
	// REJECTED/CANCELED-free transport failures, timeouts; an ERROR answer such as APPLICATION_ERROR is not
	// a failure). Key "outlier.consecutive_failures", default 5; 0 = never eject.
	ConsecutiveFailures int `yaml:"consecutive_failures"`
	// EjectionTime is how long a first ejection lasts; the n-th ejection in a row lasts n times longer
	// (at most 10x). Key "outlier.ejection_time", default 30s; > 0.
	EjectionTime Duration `yaml:"ejection_time"`
	// MaxEjectedPercent caps the share of the backend's addresses ejected at once, in percent (at least
	// one address of two or more may always be ejected). Key "outlier.max_ejected_percent", default 50;
	// 0..100.
	MaxEjectedPercent int `yaml:"max_ejected_percent"`
}

// Retry is a route's "retry" section (request-response routes).
type Retry struct {
	// Attempts is the number of tries including the first; 1 = no retries. Key "retry.attempts",
	// default 2; 1..5.
	Attempts int `yaml:"attempts"`
	// Budget caps retries (and hedges) at this share of the route's requests over the last 10 seconds, on
	// top of min_per_second. Key "retry.budget", a percentage such as "20%", default "20%"; 0%..100%.
	Budget string `yaml:"budget"`
	// MinPerSecond is the floor of the budget: this many retries per second (accumulated over 10 seconds)
	// are allowed whatever the request rate. Key "retry.min_per_second", default 10; >= 0.
	MinPerSecond int `yaml:"min_per_second"`
	// On lists the conditions that are retried: rejected, unsent, no_lease (always allowed), and on
	// idempotent routes also application_error, timeout, connection_lost. Key "retry.on", default
	// [rejected, unsent, no_lease].
	On []string `yaml:"on,flow"`
	// PerTryTimeout bounds one try (the route timeout still bounds them all); with "timeout" in on, an
	// expired try is retried. Key "retry.per_try_timeout", default 0 = only the route timeout.
	PerTryTimeout Duration `yaml:"per_try_timeout"`
}

// Hedge is a route's "hedge" section: for idempotent request-response routes, a second copy of a request
// goes to another connection when the first has not answered after "after"; the first answer wins and the
// other copy is canceled. Hedges count against the retry budget.
type Hedge struct {
	// After is "p95" (the route's observed 95th percentile latency) or a duration. Key "hedge.after",
	// default p95.
	After string `yaml:"after"`
	// Max is the number of extra copies per request; 0 turns hedging off. Key "hedge.max", default 1;
	// 0..3. Hedging applies only to routes with idempotent: true.
	Max int `yaml:"max"`
}

// newOutlier returns the default outlier section.
func newOutlier() Outlier {
	return Outlier{
		ConsecutiveFailures: DefaultOutlierFailures,
		EjectionTime:        Duration(DefaultOutlierEjectionTime),
		MaxEjectedPercent:   DefaultOutlierMaxEjected,
	}
}

// newRetry returns the default retry section.
func newRetry() Retry {
	return Retry{
		Attempts:     DefaultRetryAttempts,
		Budget:       DefaultRetryBudget,
		MinPerSecond: DefaultRetryMinPerSecond,
		On:           append([]string(nil), DefaultRetryOn...),
	}
}

// newHedge returns the default hedge section.
func newHedge() Hedge { return Hedge{After: HedgeAfterP95, Max: DefaultHedgeMax} }

// BudgetFraction returns retry.budget as a fraction (0.2 for "20%"); ok is false when it does not parse.
func (r *Retry) BudgetFraction() (float64, bool) {
	s := strings.TrimSpace(r.Budget)
	num, pct := strings.CutSuffix(s, "%")
	if !pct {
		return 0, false
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || !(f >= 0 && f <= 100) {
		return 0, false
	}
	return f / 100, true
}

// Retries reports whether the route retries on condition c.
func (r *Retry) Retries(c string) bool {
	for _, o := range r.On {
		if o == c {
			return true
		}
	}
	return false
}

// Delay returns hedge.after: p95 true for "p95", else the fixed delay; ok is false when it does not parse.
func (h *Hedge) Delay() (d time.Duration, p95, ok bool) {
	if h.After == HedgeAfterP95 {
		return 0, true, true
	}
	v, err := parseDuration(h.After, "!!str")
	if err != nil || v <= 0 {
		return 0, false, false
	}
	return v.D(), false, true
}

// HedgeEnabled reports whether requests of the route are hedged: an idempotent request-response route
// with hedge.max >= 1.
func (r *Route) HedgeEnabled() bool {
	return r.Idempotent && r.Hedge.Max > 0 && r.Interaction == InteractionRequestResponse
}

// resolveResilience clears the retry and hedge sections of routes that do not use them (so a marshalled
// Config omits them) and reports, through fail, sections given explicitly to an interaction that has no
// use for them. set reports whether the YAML gave a key of the route.
func (r *Route) resolveResilience(set func(key string) bool, fail func(key, format string, args ...any)) {
	if r.Interaction == InteractionRequestResponse {
		return
	}
	for _, k := range []string{"retry", "hedge"} {
		if set(k) && r.Interaction != "" && fail != nil {
			fail(k, "only for request-response (this route is %s)", r.Interaction)
		}
	}
	r.Retry, r.Hedge = Retry{}, Hedge{}
}

// balancing validates a backend's balancer and outlier keys at field prefix f.
func (v *validator) balancing(f string, b *Backend) {
	if b.Transport == TransportHTTP {
		return
	}
	v.oneOf(f+".balancer", b.Balancer, BalancerWeighted, BalancerP2C)
	o := &b.Outlier
	if o.ConsecutiveFailures < 0 {
		v.add(f+".outlier.consecutive_failures", "must not be negative (0 = never eject), got %d", o.ConsecutiveFailures)
	}
	if o.EjectionTime <= 0 {
		v.add(f+".outlier.ejection_time", "must be greater than 0")
	}
	if o.MaxEjectedPercent < 0 || o.MaxEjectedPercent > 100 {
		v.add(f+".outlier.max_ejected_percent", "must be between 0 and 100, got %d", o.MaxEjectedPercent)
	}
}

// resilience validates a route's idempotent, retry and hedge keys at field prefix f.
func (v *validator) resilience(f string, r *Route) {
	if r.Interaction != InteractionRequestResponse {
		return
	}
	rt := &r.Retry
	if rt.Attempts < 1 || rt.Attempts > MaxRetryAttempts {
		v.add(f+".retry.attempts", "must be between 1 (no retries) and %d, got %d", MaxRetryAttempts, rt.Attempts)
	}
	if _, ok := rt.BudgetFraction(); !ok {
		v.add(f+".retry.budget", "must be a percentage between 0%% and 100%% such as \"20%%\", got %q", rt.Budget)
	}
	if rt.MinPerSecond < 0 {
		v.add(f+".retry.min_per_second", "must not be negative, got %d", rt.MinPerSecond)
	}
	seen := map[string]int{}
	for i, c := range rt.On {
		cf := f + ".retry.on[" + strconv.Itoa(i) + "]"
		if !v.oneOf(cf, c, retryConditions...) {
			continue
		}
		if j, dup := seen[c]; dup {
			v.add(cf, "duplicate condition %q (also on[%d])", c, j)
			continue
		}
		seen[c] = i
		switch c {
		case RetryApplicationError, RetryTimeout, RetryConnectionLost:
			if !r.Idempotent {
				v.add(cf, "%s may have been processed by the backend: retry it only on a route with idempotent: true", c)
			}
		}
	}
	if rt.PerTryTimeout > 0 && r.Timeout > 0 && rt.PerTryTimeout > r.Timeout {
		v.add(f+".retry.per_try_timeout", "must not exceed the route timeout (%s), got %s", r.Timeout, rt.PerTryTimeout)
	}
	h := &r.Hedge
	if h.Max < 0 || h.Max > MaxHedges {
		v.add(f+".hedge.max", "must be between 0 (off) and %d, got %d", MaxHedges, h.Max)
	}
	if _, _, ok := h.Delay(); !ok {
		v.add(f+".hedge.after", "must be p95 or a duration greater than 0 such as \"50ms\", got %q", h.After)
	}
}
