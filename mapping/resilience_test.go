package mapping

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestResilienceDefaults: a config that writes only routes gets the weighted balancer, outlier ejection
// and budgeted retries; hedging is configured but applies only to idempotent routes.
func TestResilienceDefaults(t *testing.T) {
	cfg := mustParse(t, base)
	b := cfg.Backend("demo")
	if b.Balancer != BalancerWeighted {
		t.Errorf("balancer = %q, want weighted", b.Balancer)
	}
	if want := (Outlier{ConsecutiveFailures: 5, EjectionTime: Duration(30 * time.Second), MaxEjectedPercent: 50}); b.Outlier != want {
		t.Errorf("outlier = %+v, want %+v", b.Outlier, want)
	}
	r := cfg.Routes[0]
	if r.Retry.Attempts != 2 || r.Retry.MinPerSecond != 10 || !reflect.DeepEqual(r.Retry.On, []string{"rejected", "unsent", "no_lease"}) {
		t.Errorf("retry = %+v", r.Retry)
	}
	if f, ok := r.Retry.BudgetFraction(); !ok || f != 0.2 {
		t.Errorf("budget = %v %v, want 0.2", f, ok)
	}
	if r.HedgeEnabled() {
		t.Error("hedging on for a route that is not idempotent")
	}
	r2 := mustParse(t, base+"    idempotent: true\n").Routes[0]
	if !r2.HedgeEnabled() {
		t.Error("hedging off for an idempotent route with the defaults")
	}
	if _, p95, ok := r2.Hedge.Delay(); !ok || !p95 {
		t.Errorf("hedge.after default: p95=%v ok=%v", p95, ok)
	}
	// NewRoute/NewBackend (configs built in Go) hold the same defaults.
	if nr := NewRoute("x", InteractionRequestResponse); !reflect.DeepEqual(nr.Retry, r.Retry) || nr.Hedge != r.Hedge {
		t.Errorf("NewRoute retry/hedge = %+v %+v", nr.Retry, nr.Hedge)
	}
	if nb := NewBackend("x"); nb.Balancer != b.Balancer || nb.Outlier != b.Outlier {
		t.Errorf("NewBackend balancer/outlier = %q %+v", nb.Balancer, nb.Outlier)
	}
	// Streams have no retry section.
	if s := NewRoute("s", InteractionRequestStream); s.Retry.Attempts != 0 || s.Hedge.Max != 0 {
		t.Errorf("request-stream route has retry/hedge: %+v %+v", s.Retry, s.Hedge)
	}
}

func TestResilienceExplicit(t *testing.T) {
	cfg := mustParse(t, `backends:
  demo:
    addresses: ["127.0.0.1:7878"]
    balancer: p2c
    outlier: {consecutive_failures: 0, ejection_time: 5s, max_ejected_percent: 100}
routes:
  - name: r0
    method: GET
    path: /a
    backend: demo
    interaction: request-response
    idempotent: true
    retry: {attempts: 3, budget: 5%, min_per_second: 0, on: [rejected, timeout, application_error], per_try_timeout: 200ms}
    hedge: {after: 40ms, max: 2}
`)
	b, r := cfg.Backend("demo"), cfg.Routes[0]
	if b.Balancer != BalancerP2C || b.Outlier.ConsecutiveFailures != 0 || b.Outlier.EjectionTime.D() != 5*time.Second {
		t.Errorf("backend = %q %+v", b.Balancer, b.Outlier)
	}
	if f, _ := r.Retry.BudgetFraction(); f != 0.05 || r.Retry.Attempts != 3 || r.Retry.PerTryTimeout.D() != 200*time.Millisecond {
		t.Errorf("retry = %+v", r.Retry)
	}
	if !r.Retry.Retries(RetryTimeout) || r.Retry.Retries(RetryUnsent) {
		t.Errorf("retry.on = %v", r.Retry.On)
	}
	if d, p95, ok := r.Hedge.Delay(); !ok || p95 || d != 40*time.Millisecond || r.Hedge.Max != 2 {
		t.Errorf("hedge = %+v", r.Hedge)
	}
}

func TestResilienceErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"balancer", strings.Replace(base, `["127.0.0.1:7878"]`, `["127.0.0.1:7878"]`+"\n    balancer: random", 1),
			`config.yaml:4: backends.demo.balancer: invalid value "random" (one of weighted, p2c)`},
		{"outlier failures", strings.Replace(base, `["127.0.0.1:7878"]`, `["127.0.0.1:7878"]`+"\n    outlier: {consecutive_failures: -1}", 1),
			`config.yaml:4: backends.demo.outlier.consecutive_failures: must not be negative (0 = never eject), got -1`},
		{"outlier percent", strings.Replace(base, `["127.0.0.1:7878"]`, `["127.0.0.1:7878"]`+"\n    outlier: {max_ejected_percent: 101}", 1),
			`config.yaml:4: backends.demo.outlier.max_ejected_percent: must be between 0 and 100, got 101`},
		{"attempts", base + "    retry: {attempts: 0}\n",
			`config.yaml:13: routes[0].retry.attempts: must be between 1 (no retries) and 5, got 0`},
		{"budget", base + "    retry: {budget: 0.2}\n",
			`config.yaml:13: routes[0].retry.budget: must be a percentage between 0% and 100% such as "20%", got "0.2"`},
		{"budget over", base + "    retry: {budget: 120%}\n",
			`config.yaml:13: routes[0].retry.budget: must be a percentage between 0% and 100% such as "20%", got "120%"`},
		{"unknown condition", base + "    retry: {on: [rejected, 5xx]}\n",
			`config.yaml:13: routes[0].retry.on[1]: invalid value "5xx" (one of rejected, unsent, no_lease, application_error, timeout, connection_lost)`},
		{"unsafe condition", base + "    retry: {on: [application_error]}\n",
			`config.yaml:13: routes[0].retry.on[0]: application_error may have been processed by the backend: retry it only on a route with idempotent: true`},
		{"hedge after", base + "    hedge: {after: p99}\n",
			`config.yaml:13: routes[0].hedge.after: must be p95 or a duration greater than 0 such as "50ms", got "p99"`},
		{"hedge max", base + "    hedge: {max: 4}\n",
			`config.yaml:13: routes[0].hedge.max: must be between 0 (off) and 3, got 4`},
		{"retry on a stream", strings.Replace(base, "request-response", "request-stream", 1) + "    retry: {attempts: 2}\n",
			`config.yaml:13: routes[0].retry: only for request-response (this route is request-stream)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "config.yaml")
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *ConfigError", err)
			}
			if err.Error() != tc.want {
				t.Errorf("got  %s\nwant %s", err.Error(), tc.want)
			}
		})
	}
}

// FuzzResilienceValues: retry.budget and hedge.after never panic, and whatever they accept is in range.
func FuzzResilienceValues(f *testing.F) {
	for _, s := range []string{"20%", "0%", "100%", " 5.5 % ", "0.2", "120%", "-1%", "%", "NaN%", "p95", "50ms", "0s", "-5ms", "1h", "p99", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := Retry{Budget: s}
		if v, ok := r.BudgetFraction(); ok && !(v >= 0 && v <= 1) {
			t.Fatalf("budget %q accepted as %v", s, v)
		}
		h := Hedge{After: s}
		if d, p95, ok := h.Delay(); ok && !p95 && d <= 0 {
			t.Fatalf("hedge.after %q accepted as %v", s, d)
		}
	})
}
