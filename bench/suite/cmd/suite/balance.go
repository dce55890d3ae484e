package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ---- (8) balancing: one slow instance of three, a backend killed under load ----
//
// Backend instances are bench/suite/cmd/rsdelay processes (answer every request after -delay). A gateway
// of its own ("gwbal") has one backend per case over the same instances:
//
//   - healthy:  three instances at balFast (the baseline);
//   - p2c:      two at balFast and one at 10 x balFast, balancer p2c (the previous default: peak EWMA);
//   - weighted: the same three, balancer weighted (the default);
//   - kill-weighted / kill-p2c: three instances at balFast; the loadgen run kills one of them (SIGKILL)
//     after killAt and keeps going; "weighted" has the default outlier ejection, "p2c" has it off.
//
// Load: loadgen -mode rate (open loop, latency from the intended send time) at balRate req/s over 64
// connections. Goals (report): weighted p99 <= 1.5x healthy p99; killed backend: failed requests and time
// to recover (from the first to the end of the last 100 ms interval with a failed request).

const (
	balFast = 10 * time.Millisecond // large enough that scheduling noise on a shared machine does not hide a 10x slower instance
	balRate = 1000
)

func (s *Suite) sectionBalance() {
	ports := map[string]int{}
	for _, n := range []string{"gwbal", "gwbaladmin", "f1", "f2", "f3", "slow", "k1", "k2", "k3"} {
		ports[n] = freePort()
	}
	gomax := []string{"GOMAXPROCS=" + strconv.Itoa(s.sutN)}
	inst := func(name string, d time.Duration) {
		s.must(s.spawn("bal-"+name, gomax, bin("rsdelay"), "-listen", addr(ports[name]), "-delay", d.String()), ports[name])
	}
	for _, n := range []string{"f1", "f2", "f3", "k1", "k2", "k3"} {
		inst(n, balFast)
	}
	inst("slow", 10*balFast)
	defer func() {
		for _, n := range []string{"gwbal", "bal-f1", "bal-f2", "bal-f3", "bal-slow", "bal-k1", "bal-k2", "bal-k3"} {
			s.stop(n)
		}
	}()
	list := func(names ...string) string {
		var a []string
		for _, n := range names {
			a = append(a, `"`+addr(ports[n])+`"`)
		}
		return "[" + strings.Join(a, ", ") + "]"
	}
	backend := func(name, addrs, extra string) string {
		return fmt.Sprintf("  %s:\n    addresses: %s\n    connections: 2\n    max_inflight: 100000\n    reconnect: {min_backoff: 100ms, max_backoff: 1s}\n%s", name, addrs, extra)
	}
	cfg := fmt.Sprintf(`# rsgate benchmark suite, balancing section: one backend per case over rsdelay instances.
listen: "127.0.0.1:%d"
admin: "127.0.0.1:%d"
log: {level: warn, format: json, access_log: {enabled: false}}
backends:
%s%s%s%s%sroutes:
  - {name: healthy, method: GET, path: /healthy, backend: healthy, interaction: request-response, route: x, timeout: 10s}
  - {name: p2c, method: GET, path: /p2c, backend: p2c, interaction: request-response, route: x, timeout: 10s}
  - {name: weighted, method: GET, path: /weighted, backend: weighted, interaction: request-response, route: x, timeout: 10s}
  - {name: kill-weighted, method: GET, path: /kill-weighted, backend: killw, interaction: request-response, route: x, timeout: 10s}
  - {name: kill-p2c, method: GET, path: /kill-p2c, backend: killp, interaction: request-response, route: x, timeout: 10s}
`, ports["gwbal"], ports["gwbaladmin"],
		backend("healthy", list("f1", "f2", "f3"), ""),
		backend("p2c", list("f1", "f2", "slow"), "    balancer: p2c\n"),
		backend("weighted", list("f1", "f2", "slow"), "    balancer: weighted\n"),
		backend("killw", list("k1", "k2", "k3"), "    balancer: weighted\n"),
		backend("killp", list("k1", "k2", "k3"), "    balancer: p2c\n    outlier: {consecutive_failures: 0}\n"))
	path := writeFile("gateway-balance.yaml", cfg)
	s.must(s.spawn("gwbal", gomax, bin("gateway"), "-config", path), ports["gwbal"])
	time.Sleep(500 * time.Millisecond) // connections up

	killDur, killAt := 3*s.dur, s.dur
	s.settings = append(s.settings, fmt.Sprintf("Balancing: RSocket backend instances bench/suite/cmd/rsdelay answering after %v (the slow one after %v), 2 connections each, one gateway (config gateway-balance.yaml in the run's temp dir); loadgen -mode rate at %d req/s over 64 connections, %v measured after %v warm-up. Killed backend: %v run, one of three instances SIGKILLed %v into it (restarted after the run); failed requests counted per 100 ms of intended send time.",
		balFast, 10*balFast, balRate, s.dur, s.warm, killDur, killAt))
	rate := func(name, route string, d, warm time.Duration) (map[string]any, error) {
		return s.runJSON("loadgen-balance", bin("loadgen"), "-mode", "rate", "-url", fmt.Sprintf("http://127.0.0.1:%d/%s", ports["gwbal"], route),
			"-rate", strconv.Itoa(balRate), "-conns", "64", "-duration", d.String(), "-warmup", warm.String(), "-errseries", "100ms", "-label", name)
	}
	cases := []string{"healthy", "p2c", "weighted"}
	for rep := 1; rep <= s.reps; rep++ {
		for _, c := range rotate(cases, rep-1) {
			m, err := rate(c, c, s.dur, s.warm)
			if err != nil {
				s.note(fmt.Sprintf("balance %s: %v", c, err))
				continue
			}
			t := Trial{Section: "balance", Case: "one slow instance of three", Peer: c, Rep: rep, Curve: curveOf(m), M: map[string]float64{
				"p50": num(m, "p50_us"), "p90": num(m, "p90_us"), "p99": num(m, "p99_us"), "p999": num(m, "p999_us"), "rps": num(m, "ops_per_s"), "errors": num(m, "errors")}}
			s.add(t)
			logf("balance %-9s rep %d: p50 %6.0f p99 %7.0f p99.9 %7.0f µs, %.0f req/s, errors %.0f", c, rep, t.M["p50"], t.M["p99"], t.M["p999"], t.M["rps"], t.M["errors"])
		}
		for _, c := range rotate([]string{"kill-weighted", "kill-p2c"}, rep-1) {
			done := make(chan struct{})
			go func() {
				defer close(done)
				time.Sleep(killAt)
				if p := s.procs["bal-k2"]; p != nil {
					_ = p.cmd.Process.Kill() // the process we started, by its pid
					<-p.done
					delete(s.procs, "bal-k2")
				}
			}()
			m, err := rate(c, c, killDur, 0)
			<-done
			inst("k2", balFast) // back for the next run; the pools reconnect
			time.Sleep(1500 * time.Millisecond)
			if err != nil {
				s.note(fmt.Sprintf("balance %s: %v", c, err))
				continue
			}
			failed, rec := killStats(m)
			t := Trial{Section: "balance", Case: "backend killed under load", Peer: c, Rep: rep, Curve: curveOf(m), M: map[string]float64{
				"p99": num(m, "p99_us"), "p999": num(m, "p999_us"), "rps": num(m, "ops_per_s"), "errors": failed, "recover_ms": rec}}
			s.add(t)
			logf("balance %-13s rep %d: %.0f failed requests, recovered %.0f ms after the kill, p99 %.0f µs", c, rep, failed, rec, t.M["p99"])
		}
	}
}

// killStats returns the failed requests of a kill run and the time from the first 100 ms interval with a
// failure to the end of the last one (0: none failed).
func killStats(m map[string]any) (failed, recoverMS float64) {
	arr, _ := m["err_series"].([]any)
	first, last := -1.0, -1.0
	for _, x := range arr {
		p, ok := x.([]any)
		if !ok || len(p) != 2 {
			continue
		}
		t, _ := p[0].(float64)
		n, _ := p[1].(float64)
		if n > 0 {
			failed += n
			if first < 0 {
				first = t
			}
			last = t
		}
	}
	if last < 0 {
		return failed, 0
	}
	return failed, (last + 0.1 - first) * 1000
}

// reportBalance writes the balancing section and its goals.
func (s *Suite) reportBalance(w func(string, ...any)) {
	if len(s.cases("balance")) == 0 {
		return
	}
	const slow, kill = "one slow instance of three", "backend killed under load"
	w("## 8. Balancing: one slow instance of three, a backend killed under load\n\n")
	w("Open-loop loadgen at a fixed rate through the gateway to three RSocket instances (bench/suite/cmd/rsdelay). *healthy*: three equal instances; *p2c*: one instance 10x slower, balancer p2c (peak EWMA, the previous default); *weighted*: the same instances, balancer weighted (the default). Goal: weighted p99 <= 1.5x healthy p99.\n\n")
	w("| balancer | p50 | p90 | p99 | p99.9 | req/s | errors | p99 / healthy p99 |\n|---|---|---|---|---|---|---|---|\n")
	for _, p := range []string{"healthy", "p2c", "weighted"} {
		if s.stat("balance", slow, p, "p99").n == 0 {
			continue
		}
		w("| %s | %s | %s | %s | %s | %s | %s | %s |\n", p, s.stat("balance", slow, p, "p50").str(0), s.stat("balance", slow, p, "p90").str(0), s.stat("balance", slow, p, "p99").str(0),
			s.stat("balance", slow, p, "p999").str(0), s.stat("balance", slow, p, "rps").str(0), s.stat("balance", slow, p, "errors").str(0), s.ratio("balance", slow, p, slow, "healthy", "p99").ratioStr())
	}
	w("\nKilled backend: one of three instances SIGKILLed under load. *kill-weighted*: balancer weighted with outlier ejection (defaults); *kill-p2c*: balancer p2c, outlier off. Retries (default: attempts 2, on rejected/unsent/no_lease) are on in both. Recovery = from the first 100 ms interval with a failed request to the end of the last one.\n\n")
	w("| setup | failed requests | recovered after (ms) | p99 | p99.9 |\n|---|---|---|---|---|\n")
	for _, p := range []string{"kill-weighted", "kill-p2c"} {
		if s.stat("balance", kill, p, "errors").n == 0 {
			continue
		}
		w("| %s | %s | %s | %s | %s |\n", p, s.stat("balance", kill, p, "errors").str(0), s.stat("balance", kill, p, "recover_ms").str(0), s.stat("balance", kill, p, "p99").str(0), s.stat("balance", kill, p, "p999").str(0))
	}
	w("\n")
}

// balanceGoal is the goal line of the balancing section (nil when it did not run).
func (s *Suite) balanceGoal() *goal {
	const slow = "one slow instance of three"
	r := s.ratio("balance", slow, "weighted", slow, "healthy", "p99")
	if r.n == 0 {
		return nil
	}
	p := s.ratio("balance", slow, "p2c", slow, "healthy", "p99")
	return &goal{"one slow instance of three (10x latency): weighted balancer p99 <= 1.5x all-healthy p99",
		fmt.Sprintf("%.2fx (p2c: %.2fx)", r.med, p.med), verdict(r.med <= 1.5, true)}
}
