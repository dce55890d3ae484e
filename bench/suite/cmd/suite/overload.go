package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Overload sections (issue 11): the tail-isolation trials pinned and unpinned, and open-loop latency at
// fixed fractions of nginx's measured capacity.

// sectionTail runs the tail-isolation trials with the usual pinning (load generators and the system under
// test on separate CPUs) and again unpinned (every process free to run on every CPU, as on an ordinary
// machine). With -pin=false only the unpinned run happens (its cases carry no suffix then).
func (s *Suite) sectionTail() {
	defer func() {
		s.stop("gwctl")
		s.stop("rsbackendctl")
	}()
	s.tailTrials("")
	if s.loadCPUs == "" {
		return
	}
	s.unpinned(func() { s.tailTrials(" unpinned") })
}

// tailControlCase is the tail section's control: the fast route measured on the gateway while the same
// saturating slow-route load goes to a second, identical gateway and demo service (the control pair), so
// that nothing is shared with the measured gateway but the machine. The fast route's p99 under it, over
// the unloaded p99, is what the machine alone costs (CPU, caches and the kernel shared with the load
// generators and the other pair); the gateway's own isolation is the rest of its "slow saturated" ratio.
const tailControlCase = "slow saturated elsewhere"

// startTailControl starts the control pair (once) and returns its gateway's port, 0 when it did not start.
func (s *Suite) startTailControl() int {
	p := s.ports
	if s.procs["gwctl"] != nil {
		return p["gwctl"]
	}
	gomax := []string{"GOMAXPROCS=" + strconv.Itoa(s.sutN)}
	if err := waitPort(s.spawn("rsbackendctl", gomax, bin("rsbackend"), "-listen", addr(p["rsbackendctl"])), p["rsbackendctl"]); err != nil {
		s.note(fmt.Sprintf("tail control pair: demo service: %v; no control case", err))
		return 0
	}
	if err := waitPort(s.spawn("gwctl", gomax, bin("gateway"), "-config", *tmpDir+"/gateway-control.yaml"), p["gwctl"]); err != nil {
		s.note(fmt.Sprintf("tail control pair: gateway: %v; no control case", err))
		return 0
	}
	return p["gwctl"]
}

// unpinned runs f with every process under test (and their children and threads) allowed on every CPU and
// the load generators unpinned, then restores the pinning.
func (s *Suite) unpinned(f func()) {
	all := cpuRange(0, numCPU()-1)
	saved := s.loadCPUs
	s.setAffinity(all)
	s.loadCPUs = ""
	defer func() {
		s.loadCPUs = saved
		s.setAffinity(s.sutCPUs)
	}()
	f()
}

// setAffinity sets the CPU list of every process the suite started, their threads and their children
// (nginx workers).
func (s *Suite) setAffinity(cpus string) {
	for _, p := range s.procs {
		if p == nil || !p.Alive() {
			continue
		}
		for _, pid := range withDescendants(p.Pid()) {
			if out, err := exec.Command("taskset", "-a", "-p", "-c", cpus, strconv.Itoa(pid)).CombinedOutput(); err != nil {
				s.note(fmt.Sprintf("taskset %s %d: %v %s", cpus, pid, err, strings.TrimSpace(string(out))))
			}
		}
	}
}

// withDescendants returns pid and the pids of all its descendants (from /proc/<pid>/task/*/children).
func withDescendants(pid int) []int {
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", out[i]))
		for _, t := range tasks {
			b, err := os.ReadFile(t)
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(b)) {
				if c, err := strconv.Atoi(f); err == nil {
					out = append(out, c)
				}
			}
		}
	}
	return out
}

// reportTailPinning writes the fast-route p99 ratios (loaded / unloaded) of gateway and nginx side by side,
// pinned and unpinned.
func (s *Suite) reportTailPinning(w func(string, ...any)) {
	tp := s.peersOf("tail")
	if len(tp) == 0 {
		return
	}
	w("Fast-route p99, loaded / unloaded of the same repetition and pinning (goal <= 2x), side by side:\n\n| pinning | slow route |")
	for _, p := range tp {
		w(" %s |", p)
	}
	w("\n|---|---|")
	for range tp {
		w("---|")
	}
	w("\n")
	for _, pin := range []string{"", " unpinned"} {
		name := "pinned"
		if pin != "" {
			name = "unpinned"
		}
		for _, c := range []string{"slow busy", "slow saturated", tailControlCase} {
			have := false
			for _, p := range tp {
				have = have || len(s.values("tail", "unloaded"+pin, p, "p99")) > 0 && len(s.values("tail", c+pin, p, "p99")) > 0
			}
			if !have {
				continue
			}
			w("| %s | %s |", name, c)
			for _, p := range tp {
				w(" %s |", s.ratio("tail", c+pin, p, "unloaded"+pin, p, "p99").ratioStr())
			}
			w("\n")
		}
	}
	w("\n*%s* (control, gateway only): the fast route is measured on the gateway while the same saturating load goes to a second, identical gateway and demo service; the measured gateway shares only the machine with it. Its ratio is what the machine alone adds (CPU, caches and kernel shared with the load generators and the other pair); the gateway's own isolation is the difference between it and *slow saturated*.\n\n", tailControlCase)
	for _, p := range tp {
		for _, c := range []string{"unloaded unpinned", "slow busy unpinned", "slow saturated unpinned", tailControlCase + " unpinned"} {
			if st := s.stat("tail", c, p, "p99"); st.n > 0 {
				w("- %s %s: p50 %s, p99 %s, p99.9 %s µs; slow route %s req/s\n", p, c, s.stat("tail", c, p, "p50").str(0), st.str(0),
					s.stat("tail", c, p, "p999").str(0), s.stat("tail", c, p, "slow_rps").str(0))
			}
		}
	}
	w("\n")
}

// ---- open loop at fixed rates ----

var openLoopFractions = []float64{0.2, 0.5, 0.8}

// sectionOpenLoop measures nginx's capacity on the fast route (wrk, closed loop), then drives gateway,
// nginx and haproxy open-loop (loadgen -mode rate, latency from the intended send time) at 20%, 50% and
// 80% of it.
func (s *Suite) sectionOpenLoop() {
	var peers []peer
	var nginx *peer
	for _, pr := range httpPeers {
		switch pr.name {
		case "gateway", "nginx", "haproxy":
			peers = append(peers, pr)
			if pr.name == "nginx" {
				nginx = &peers[len(peers)-1]
			}
		}
	}
	if nginx == nil {
		s.note("openloop: nginx is not running; no capacity to scale the rates from")
		return
	}
	path := "/api/users/" + userID
	capacity := 0.0
	for try := 0; try < 2 && capacity == 0; try++ {
		_, _ = s.wrk("openloop-capacity-warmup", nginx.port, 128, s.warm, "GET", path, false)
		r, err := s.wrk("openloop-capacity", nginx.port, 128, s.dur, "GET", path, false)
		if err != nil || r.seconds == 0 {
			s.note(fmt.Sprintf("openloop: nginx capacity run: %v", err))
			continue
		}
		capacity = r.requests / r.seconds
	}
	if capacity == 0 {
		return
	}
	s.add(Trial{Section: "openloop", Case: "capacity", Peer: "nginx", Rep: 1, M: map[string]float64{"rps": capacity}})
	logf("openloop: nginx capacity %.0f req/s (wrk, 128 connections)", capacity)
	s.settings = append(s.settings, fmt.Sprintf("Open loop: nginx's capacity on GET /api/users/{id} measured first in the same run (wrk 2 threads, 128 connections, %v): %.0f req/s; then gateway, nginx and haproxy driven at a constant %v of it (loadgen -mode rate, 256 connections, latency from the intended send time), %v after %v warm-up, peers rotated per rate and repetition.",
		s.dur, capacity, openLoopFractions, s.dur, s.warm))
	n := 0
	for rep := 1; rep <= s.reps; rep++ {
		for _, f := range openLoopFractions {
			rate := int(capacity * f)
			c := fmt.Sprintf("%.0f%%", f*100)
			for _, pr := range rotate(peers, n) {
				n++
				m, err := s.runJSON("loadgen-openloop", bin("loadgen"), "-mode", "rate", "-url", fmt.Sprintf("http://127.0.0.1:%d%s", pr.port, path),
					"-rate", strconv.Itoa(rate), "-conns", "256", "-duration", s.dur.String(), "-warmup", s.warm.String())
				if err != nil {
					s.note(fmt.Sprintf("openloop %s %s: %v", pr.name, c, err))
					continue
				}
				t := Trial{Section: "openloop", Case: c, Peer: pr.name, Rep: rep, Curve: curveOf(m), M: map[string]float64{
					"rate": float64(rate), "p50": num(m, "p50_us"), "p99": num(m, "p99_us"), "p999": num(m, "p999_us"), "max": num(m, "max_us"),
					"rps": num(m, "ops_per_s"), "errors": num(m, "errors")}}
				s.add(t)
				logf("openloop %-8s %s (%d req/s) rep %d: p50 %6.0f p99 %7.0f p99.9 %7.0f µs (%.0f req/s, err %.0f)", pr.name, c, rate, rep,
					t.M["p50"], t.M["p99"], t.M["p999"], t.M["rps"], t.M["errors"])
				time.Sleep(300 * time.Millisecond)
			}
		}
	}
}

// reportOpenLoop writes the open-loop table: p50/p99/p99.9 per rate and system, and the goal gateway p99 <=
// nginx p99 at every rate.
func (s *Suite) reportOpenLoop(w func(string, ...any)) {
	peers := s.peersOf("openloop")
	if len(peers) == 0 {
		return
	}
	w("## Open-loop latency at fixed rates (fractions of nginx's capacity)\n\n")
	if c := s.stat("openloop", "capacity", "nginx", "rps"); c.n > 0 {
		w("nginx capacity in this run: %s req/s (wrk, closed loop). Latency from the intended send time (loadgen -mode rate); µs.\n\n", c.str(0))
	}
	w("| rate | system | req/s offered | achieved | p50 | p99 | p99.9 | max | errors |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, f := range openLoopFractions {
		c := fmt.Sprintf("%.0f%%", f*100)
		for _, p := range peers {
			if s.stat("openloop", c, p, "p99").n == 0 {
				continue
			}
			w("| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", c, p, s.stat("openloop", c, p, "rate").str(0), s.stat("openloop", c, p, "rps").str(0),
				s.stat("openloop", c, p, "p50").str(0), s.stat("openloop", c, p, "p99").str(0), s.stat("openloop", c, p, "p999").str(0),
				s.stat("openloop", c, p, "max").str(0), s.stat("openloop", c, p, "errors").str(0))
		}
	}
	w("\nGoal: gateway p99 <= nginx p99 at every rate (same-repetition ratio gateway / nginx):")
	for _, f := range openLoopFractions {
		c := fmt.Sprintf("%.0f%%", f*100)
		r := s.ratio("openloop", c, "gateway", c, "nginx", "p99")
		if r.n == 0 {
			continue
		}
		w(" %s: %s (%s);", c, r.ratioStr(), verdict(r.med <= 1, true))
	}
	w("\n\n")
}
