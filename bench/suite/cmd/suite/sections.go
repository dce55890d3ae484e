package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func (s *Suite) procPid(name string) int {
	if p := s.procs[name]; p != nil {
		return p.Pid()
	}
	return 0
}

// rotate returns ps rotated by k (interleaving: the start moves every repetition).
func rotate[T any](ps []T, k int) []T {
	if len(ps) == 0 {
		return ps
	}
	k %= len(ps)
	return append(append([]T{}, ps[k:]...), ps[:k]...)
}

// ---- (1) HTTP request-response ----

func (s *Suite) sectionHTTP() {
	conns := []int{64, 256}
	if *quick {
		conns = []int{64}
	}
	type wl struct {
		name, method, path string
		body               bool
	}
	wls := []wl{{"POST 1 KiB JSON", "POST", "/api/echo", true}, {"GET 100 B", "GET", "/api/users/" + userID, false}}
	s.settings = append(s.settings, fmt.Sprintf("HTTP: wrk 2 threads, %v measured after %v warm-up per trial, connections %v, %d repetition(s); peers in rotated order each repetition and cell.", s.dur, s.warm, conns, s.reps))
	n := 0
	for rep := 1; rep <= s.reps; rep++ {
		for _, w := range wls {
			for _, c := range conns {
				cell := fmt.Sprintf("%s, %d conns", w.name, c)
				for _, pr := range rotate(httpPeers, n) {
					s.httpTrial(pr, cell, rep, c, w.method, w.path, w.body)
				}
				n++
			}
		}
	}
}

func (s *Suite) httpTrial(pr peer, cell string, rep, conns int, method, path string, body bool) {
	tag := strings.NewReplacer(" ", "", ",", "_").Replace(fmt.Sprintf("wrk-%s-%s-r%d", pr.name, cell, rep))
	if pr.proxy != "" && (s.procs[pr.proxy] == nil || !s.procs[pr.proxy].Alive()) {
		s.note(fmt.Sprintf("%s is not running; trial %s rep %d skipped", pr.name, cell, rep))
		return
	}
	_, _ = s.wrk(tag+".warmup", pr.port, conns, s.warm, method, path, body)
	time.Sleep(200 * time.Millisecond)
	ppid, bpid := s.procPid(pr.proxy), s.procPid(pr.backend)
	p0, b0, u0, a0 := cpuTicks(ppid), cpuTicks(bpid), cpuBusy(s.sutCPUs), cpuBusy("")
	if ppid == 0 {
		p0 = 0
	}
	r, err := s.wrk(tag, pr.port, conns, s.dur, method, path, body)
	p1, b1, u1, a1 := cpuTicks(ppid), cpuTicks(bpid), cpuBusy(s.sutCPUs), cpuBusy("")
	if ppid == 0 {
		p1 = 0
	}
	if err != nil {
		s.note(fmt.Sprintf("%s %s rep %d: %v", pr.name, cell, rep, err))
		return
	}
	us := 1e6 / s.clk
	t := Trial{Section: "http", Case: cell, Peer: pr.name, Rep: rep, Curve: r.curve, M: map[string]float64{
		"rps": r.requests / r.seconds, "p50": r.p50, "p90": r.p90, "p99": r.p99, "p999": r.p999, "errors": r.errors,
		"cpu_proxy_us": (p1 - p0) * us / r.requests, "cpu_backend_us": (b1 - b0) * us / r.requests,
		"cpu_total_us": (p1 - p0 + b1 - b0) * us / r.requests,
		// busy time on the SUT CPUs not charged to the proxy or its backend (kernel loopback work, other processes)
		"foreign_sut_cores":  ((u1 - u0) - (p1 - p0) - (b1 - b0)) / s.clk / r.seconds,
		"machine_busy_cores": (a1 - a0) / s.clk / r.seconds,
	}}
	if pr.proxy == "" { // direct: the backend is the whole system under test
		t.M["cpu_proxy_us"] = 0
	}
	s.add(t)
	logf("http %-12s %-28s rep %d: %8.0f req/s p99 %6.0f µs cpu %5.1f+%5.1f µs/req err %.0f", pr.name, cell, rep, t.M["rps"], r.p99, t.M["cpu_proxy_us"], t.M["cpu_backend_us"], r.errors)
}

// ---- (2) tail isolation ----

// tailTrials runs the tail-isolation trials; suffix is appended to the case names (" unpinned").
func (s *Suite) tailTrials(suffix string) {
	rate, fastConns := 1000, 128
	busyConns, satConns := 100, 1000
	type tp struct {
		name, proxy string
		port        int
		fast, slow  string
		procs       []string // proxy and backends, for the foreign-load measure
	}
	var peers []tp
	for _, pr := range httpPeers {
		switch pr.name {
		case "gateway":
			peers = append(peers, tp{"gateway", "gw", pr.port, "/api/users/" + userID, fmt.Sprintf("/api/slow/%d", slowMS), []string{"gw", "rsbackend"}})
		case "nginx":
			peers = append(peers, tp{"nginx", "nginx", pr.port, "/api/users/" + userID, fmt.Sprintf("/api/slow/%d", slowMS), []string{"nginx", "httpbackend", "upslow"}})
		}
	}
	s.settings = append(s.settings, fmt.Sprintf("Tail isolation: fast route GET /api/users/{id} at a constant %d req/s over %d connections (loadgen -mode rate, latency from the intended send time, HDR histogram), %v measured after %v warm-up; 'loaded' = at the same time wrk drives the slow route (backend answers after %d ms: gateway demo route slow.%d, nginx a second fasthttp upstream with a %d ms delay) with closed-loop connections (wrk, 1 thread), starting 1 s before the fast-route run: 'slow busy' = %d connections (~%d req/s of 50 ms requests), 'slow saturated' = %d connections (~%d req/s offered, more than the one SUT core can proxy, so the proxy's CPU is saturated). Order per repetition rotated over peer x {unloaded, busy, saturated}.",
		rate, fastConns, s.dur, s.warm, slowMS, slowMS, slowMS, busyConns, busyConns*1000/slowMS, satConns, satConns*1000/slowMS))
	n := 0
	type job struct {
		p         tp
		slowConns int
		name      string
		slowPort  int // where the slow-route load goes: p.port, or the control pair's gateway
	}
	var jobs []job
	for _, p := range peers {
		jobs = append(jobs, job{p, 0, "unloaded", p.port}, job{p, busyConns, "slow busy", p.port}, job{p, satConns, "slow saturated", p.port})
		if p.name == "gateway" {
			if port := s.startTailControl(); port != 0 {
				jobs = append(jobs, job{p, satConns, tailControlCase, port})
			}
		}
	}
	for rep := 1; rep <= s.reps; rep++ {
		for _, j := range rotate(jobs, n) {
			n++
			var wrkDone chan wrkResult
			if j.slowConns > 0 {
				wrkDone = make(chan wrkResult, 1)
				slowDur := s.warm + s.dur + 2*time.Second
				go func() {
					r, err := s.wrkT(1, fmt.Sprintf("tail-slow-%s-%s-r%d", j.p.name, strings.ReplaceAll(j.name+suffix, " ", "-"), rep), j.slowPort, j.slowConns, slowDur, "GET", j.p.slow, false)
					if err != nil {
						s.note(fmt.Sprintf("tail %s slow-route wrk: %v", j.p.name, err))
					}
					wrkDone <- r
				}()
				time.Sleep(time.Second)
			}
			sutTicks := func() (t float64) {
				for _, n := range j.p.procs {
					t += cpuTicks(s.procPid(n))
				}
				return t
			}
			t0, u0, w0 := sutTicks(), cpuBusy(s.sutCPUs), time.Now()
			m, err := s.runJSON("loadgen-tail", bin("loadgen"), "-mode", "rate", "-url", fmt.Sprintf("http://127.0.0.1:%d%s", j.p.port, j.p.fast),
				"-rate", strconv.Itoa(rate), "-conns", strconv.Itoa(fastConns), "-duration", s.dur.String(), "-warmup", s.warm.String())
			t1, u1, w1 := sutTicks(), cpuBusy(s.sutCPUs), time.Now()
			var slow wrkResult
			if wrkDone != nil {
				slow = <-wrkDone
			}
			if err != nil {
				s.note(fmt.Sprintf("tail %s: %v", j.p.name, err))
				continue
			}
			c := j.name + suffix
			t := Trial{Section: "tail", Case: c, Peer: j.p.name, Rep: rep, Curve: curveOf(m), M: map[string]float64{
				"p50": num(m, "p50_us"), "p90": num(m, "p90_us"), "p99": num(m, "p99_us"), "p999": num(m, "p999_us"), "max": num(m, "max_us"),
				"rps": num(m, "ops_per_s"), "errors": num(m, "errors"),
				"sut_cores": (t1 - t0) / s.clk / w1.Sub(w0).Seconds(), "foreign_sut_cores": ((u1 - u0) - (t1 - t0)) / s.clk / w1.Sub(w0).Seconds()}}
			if j.slowConns > 0 && slow.seconds > 0 {
				t.M["slow_rps"] = slow.requests / slow.seconds
				t.M["slow_p99"] = slow.p99
				t.M["slow_errors"] = slow.errors
			}
			s.add(t)
			logf("tail %-8s %-14s rep %d: fast p50 %6.0f p99 %7.0f p99.9 %7.0f µs (%.0f req/s, err %.0f); slow %.0f req/s; SUT %.2f cores, foreign %.2f", j.p.name, c, rep, t.M["p50"], t.M["p99"], t.M["p999"], t.M["rps"], t.M["errors"], t.M["slow_rps"], t.M["sut_cores"], t.M["foreign_sut_cores"])
			time.Sleep(500 * time.Millisecond)
		}
	}
}

// ---- (3) streams ----

func (s *Suite) sectionStreams() {
	gwPort := s.ports["gw"]
	gw := s.procs["gw"]
	if gw == nil {
		panic("gateway not running")
	}
	slowReaders, slowBps, slowDur := 32, 2048, 20*time.Second
	if *quick {
		slowReaders, slowDur = 16, 6*time.Second
	}
	s.settings = append(s.settings, fmt.Sprintf("Streams: SSE GET /api/ticks/1000000 (demo ticks, as fast as credit allows; route window 64) through the gateway; fast = 1 reader reading as fast as it can for %v; slow = %d readers each reading %d B/s with a 4 KiB socket receive buffer for %v, gateway RSS sampled every 250 ms. WebSocket: %d sockets, one 64-byte message in flight each, echo round trips through /ws/chat (gateway: request-channel to the demo service; nginx and caddy: proxied to a fasthttp/websocket echo upstream). RSocket over WebSocket: request-response echo through the gateway's /rsocket route, 64 in flight on one connection.",
		s.dur, slowReaders, slowBps, slowDur, 16))
	url := fmt.Sprintf("http://127.0.0.1:%d/api/ticks/1000000", gwPort)
	for rep := 1; rep <= s.reps; rep++ {
		// fast SSE reader
		stopS, series := s.sampleRSS(gw.Pid())
		m, err := s.runJSON("loadgen-sse", bin("loadgen"), "-mode", "sse", "-url", url, "-readers", "1", "-duration", s.dur.String(), "-warmup", s.warm.String())
		ser := stopS()
		if err != nil {
			s.note(fmt.Sprintf("sse fast: %v", err))
		} else {
			s.add(Trial{Section: "streams", Case: "SSE fast reader", Peer: "gateway", Rep: rep, Series: *series, M: map[string]float64{"items_s": num(m, "ops_per_s"), "mib_s": num(m, "bytes") / num(m, "seconds") / (1 << 20), "errors": num(m, "errors"), "rss_growth_mib": growth(ser)}})
			logf("sse fast rep %d: %.0f items/s", rep, num(m, "ops_per_s"))
		}
		// slow readers
		stopS, series = s.sampleRSS(gw.Pid())
		m, err = s.runJSON("loadgen-sse", bin("loadgen"), "-mode", "sse", "-url", url, "-readers", strconv.Itoa(slowReaders), "-bps", strconv.Itoa(slowBps), "-duration", slowDur.String(), "-warmup", "0s")
		ser = stopS()
		if err != nil {
			s.note(fmt.Sprintf("sse slow: %v", err))
		} else {
			g := growth(ser)
			s.add(Trial{Section: "streams", Case: "SSE slow readers", Peer: "gateway", Rep: rep, Series: *series, M: map[string]float64{"items_s": num(m, "ops_per_s"), "items_s_per_reader": num(m, "ops_per_s") / float64(slowReaders), "errors": num(m, "errors"), "rss_growth_mib": g, "rss_end_mib": last(ser)}})
			logf("sse slow rep %d: %.0f items/s over %d readers, RSS growth %.2f MiB (end %.1f MiB)", rep, num(m, "ops_per_s"), slowReaders, g, last(ser))
		}
		// WebSocket echo, interleaved over peers
		wsPeers := []struct {
			name string
			port int
		}{{"gateway", gwPort}, {"nginx", s.ports["nginx"]}, {"caddy", s.ports["caddy"]}}
		for _, p := range rotate(wsPeers, rep-1) {
			if p.name != "gateway" && !s.hasPeer(p.name) {
				continue
			}
			m, err := s.runJSON("loadgen-ws", bin("loadgen"), "-mode", "ws", "-url", fmt.Sprintf("ws://127.0.0.1:%d/ws/chat", p.port), "-conns", "16", "-duration", s.dur.String(), "-warmup", s.warm.String())
			if err != nil {
				s.note(fmt.Sprintf("ws %s: %v", p.name, err))
				continue
			}
			s.add(Trial{Section: "streams", Case: "WebSocket echo", Peer: p.name, Rep: rep, Curve: curveOf(m), M: map[string]float64{"msgs_s": num(m, "ops_per_s"), "p50": num(m, "p50_us"), "p99": num(m, "p99_us"), "errors": num(m, "errors")}})
			logf("ws %s rep %d: %.0f msgs/s p99 %.0f µs", p.name, rep, num(m, "ops_per_s"), num(m, "p99_us"))
		}
		// RSocket over WebSocket through the gateway
		m, err = s.runJSON("loadgen-rsocket", bin("loadgen"), "-mode", "rsocket", "-url", fmt.Sprintf("ws://127.0.0.1:%d/rsocket", gwPort), "-inflight", "64", "-size", "1024", "-duration", s.dur.String(), "-warmup", s.warm.String())
		if err != nil {
			s.note(fmt.Sprintf("rsocket route: %v", err))
		} else {
			s.add(Trial{Section: "streams", Case: "RSocket route rr", Peer: "gateway", Rep: rep, Curve: curveOf(m), M: map[string]float64{"ops_s": num(m, "ops_per_s"), "p50": num(m, "p50_us"), "p99": num(m, "p99_us"), "errors": num(m, "errors")}})
			logf("rsocket route rep %d: %.0f ops/s p99 %.0f µs", rep, num(m, "ops_per_s"), num(m, "p99_us"))
		}
	}
}

func (s *Suite) hasPeer(name string) bool {
	for _, p := range httpPeers {
		if p.name == name {
			return true
		}
	}
	return false
}

// sampleRSS samples pid's RSS (MiB) every 250 ms until the returned stop is called.
func (s *Suite) sampleRSS(pid int) (func() [][2]float64, *[][2]float64) {
	var series [][2]float64
	done, fin := make(chan struct{}), make(chan struct{})
	t0 := time.Now()
	go func() {
		defer close(fin)
		tk := time.NewTicker(250 * time.Millisecond)
		defer tk.Stop()
		for {
			series = append(series, [2]float64{time.Since(t0).Seconds(), rssKiB(pid) / 1024})
			select {
			case <-done:
				return
			case <-tk.C:
			}
		}
	}()
	return func() [][2]float64 { close(done); <-fin; return series }, &series
}

// growth: RSS at the end minus RSS at a quarter of the run (after the streams have started), MiB.
func growth(ser [][2]float64) float64 {
	if len(ser) < 4 {
		return 0
	}
	return ser[len(ser)-1][1] - ser[len(ser)/4][1]
}

func last(ser [][2]float64) float64 {
	if len(ser) == 0 {
		return 0
	}
	return ser[len(ser)-1][1]
}

// ---- (4) RSocket core vs rsocket-go ----

func (s *Suite) sectionRSocket() {
	d, w := 3*time.Second, time.Second
	items := 200000
	if *quick {
		d, w, items = time.Second, 300*time.Millisecond, 100000
	}
	s.settings = append(s.settings, fmt.Sprintf("RSocket core: bench/rsocketbench's server and client roles (separate processes, one TCP loopback connection, not pinned) for request-response 1 KiB + routing metadata at 1/64/256 in flight (%v after %v warm-up) and request-stream of %d x 1 KiB items; fire-and-forget from bench/suite/cmd/rsfnf (client and server in one process, 128-byte frames, at most 4096 unreceived). Implementations alternate, the first one swapped every repetition.", d, w, items))
	type wl struct {
		name, workload string
		inflight       int
	}
	wls := []wl{{"rr 1 in flight", "rr", 1}, {"rr 64 in flight", "rr", 64}, {"rr 256 in flight", "rr", 256}, {"stream 1 KiB items", "stream", 1}, {"fire-and-forget", "fnf", 0}}
	impls := []string{"ours", "rsgo"}
	for rep := 1; rep <= s.reps; rep++ {
		for _, x := range wls {
			for _, im := range rotate(impls, rep-1) {
				var t Trial
				var err error
				if x.workload == "fnf" {
					var m map[string]any
					m, err = s.runJSONFree("rsfnf", bin("rsfnf"), "-impl", im, "-duration", d.String(), "-warmup", w.String())
					if err == nil {
						t = Trial{M: map[string]float64{"ops_s": num(m, "ops_per_s"), "allocs_op": num(m, "allocs_per_op"), "bytes_op": num(m, "bytes_per_op"), "errors": num(m, "errors")}}
					}
				} else {
					t, err = s.rsocketbench(im, x.workload, x.inflight, d, w, items)
				}
				if err != nil {
					s.note(fmt.Sprintf("rsocket %s %s: %v", im, x.name, err))
					continue
				}
				t.Section, t.Case, t.Peer, t.Rep = "rsocket", x.name, im, rep
				s.add(t)
				logf("rsocket %-4s %-20s rep %d: %9.0f ops/s p99 %5.0f µs allocs/op %.2f", im, x.name, rep, t.M["ops_s"], t.M["p99"], t.M["allocs_op"])
			}
		}
	}
}

func (s *Suite) runJSONFree(name string, args ...string) (map[string]any, error) {
	saved := s.loadCPUs
	s.loadCPUs = ""
	defer func() { s.loadCPUs = saved }()
	return s.runJSON(name, args...)
}

// rsocketbench drives bench/rsocketbench's -role server and -role client processes with their line protocol
// (server: READY addr, "stats" -> STATS mallocs bytes; client: MARK start / go / MARK end / go / JSON).
func (s *Suite) rsocketbench(impl, workload string, inflight int, d, w time.Duration, items int) (Trial, error) {
	srv, err := startLines(bin("rsocketbench"), "-role", "server", "-impl", impl)
	if err != nil {
		return Trial{}, err
	}
	defer srv.close()
	a, err := srv.expect("READY ")
	if err != nil {
		return Trial{}, err
	}
	cl, err := startLines(bin("rsocketbench"), "-role", "client", "-impl", impl, "-addr", strings.TrimPrefix(a, "READY "), "-workload", workload,
		"-inflight", strconv.Itoa(inflight), "-duration", d.String(), "-warmup", w.String(), "-items", strconv.Itoa(items))
	if err != nil {
		return Trial{}, err
	}
	defer cl.close()
	stats := func() (float64, error) {
		fmt.Fprintln(srv.in, "stats")
		l, err := srv.expect("STATS ")
		if err != nil {
			return 0, err
		}
		var m, b float64
		fmt.Sscanf(l, "STATS %g %g", &m, &b)
		return m, nil
	}
	if _, err := cl.expect("MARK start"); err != nil {
		return Trial{}, err
	}
	s0, err := stats()
	if err != nil {
		return Trial{}, err
	}
	fmt.Fprintln(cl.in, "go")
	if _, err := cl.expect("MARK end"); err != nil {
		return Trial{}, err
	}
	s1, err := stats()
	if err != nil {
		return Trial{}, err
	}
	fmt.Fprintln(cl.in, "go")
	l, err := cl.expect("{")
	if err != nil {
		return Trial{}, err
	}
	var r struct {
		Ops           float64 `json:"ops"`
		Seconds       float64 `json:"seconds"`
		P50, P99      float64
		ClientMallocs float64 `json:"client_mallocs"`
		Errors        float64 `json:"errors"`
	}
	if err := jsonUnmarshal(l, &r); err != nil {
		return Trial{}, err
	}
	ops := max(r.Ops, 1)
	t := Trial{M: map[string]float64{"ops_s": r.Ops / r.Seconds, "allocs_op": (r.ClientMallocs + s1 - s0) / ops,
		"client_allocs_op": r.ClientMallocs / ops, "server_allocs_op": (s1 - s0) / ops, "errors": r.Errors}}
	if workload == "rr" {
		t.M["p50"], t.M["p99"] = r.P50, r.P99
	}
	return t, nil
}

type lineProc struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
}

func startLines(args ...string) (*lineProc, error) {
	args = wrapCPU("", args)
	cmd := exec.Command(args[0], args[1:]...)
	lf, _ := os.OpenFile(*tmpDir+"/rsocketbench.log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	cmd.Stderr = lf
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &lineProc{cmd: cmd, in: in, lines: make(chan string, 16)}
	go func() {
		defer close(p.lines)
		defer lf.Close()
		buf := make([]byte, 0, 4096)
		b := make([]byte, 4096)
		for {
			n, err := out.Read(b)
			buf = append(buf, b[:n]...)
			for {
				i := strings.IndexByte(string(buf), '\n')
				if i < 0 {
					break
				}
				p.lines <- string(buf[:i])
				buf = buf[i+1:]
			}
			if err != nil {
				return
			}
		}
	}()
	return p, nil
}

func (p *lineProc) expect(prefix string) (string, error) {
	timeout := time.After(120 * time.Second)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				return "", fmt.Errorf("%v ended before %q", p.cmd.Args[1:5], prefix)
			}
			if strings.HasPrefix(l, prefix) {
				return l, nil
			}
		case <-timeout:
			return "", fmt.Errorf("%v: timeout waiting for %q", p.cmd.Args[1:5], prefix)
		}
	}
}

func (p *lineProc) close() {
	p.in.Close()
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// ---- (5) memory per idle connection ----

func (s *Suite) sectionMemory() {
	nHTTP, nWS := 10000, wsConnsFor(openFilesLimit())
	if *quick {
		nHTTP, nWS = 2000, 2000
	}
	note := ""
	if nWS < 10000 {
		note = fmt.Sprintf(" N for WebSockets is below 10,000 because the open-files limit here is %d (hard limit; a WebSocket proxy holds two sockets per client, so 10,000 needs about 20,500).", openFilesLimit())
	}
	s.settings = append(s.settings, fmt.Sprintf("Memory: each proxy restarted fresh, RSS (VmRSS of the process and its children: nginx master+worker) read 1 s after start and 2 s after the last of N idle connections was opened; per connection = difference / N. HTTP: N=%d keep-alive connections, one GET /api/users/1 each, then idle. WebSocket: N=%d upgraded sockets, idle (gateway: /ws/chat request-channel; nginx and caddy: proxied to a fasthttp/websocket echo upstream, whose memory is not counted).%s", nHTTP, nWS, note))
	type mp struct {
		name, proc string
		port       int
	}
	peers := []mp{{"gateway", "gw", s.ports["gw"]}}
	for _, n := range []string{"nginx", "caddy"} {
		if s.hasPeer(n) {
			peers = append(peers, mp{n, n, s.ports[n]})
		}
	}
	for _, kind := range []string{"http", "ws"} {
		for _, p := range peers {
			s.stop(p.proc)
			time.Sleep(300 * time.Millisecond)
			if err := s.startProxy(p.name); err != nil {
				s.note(fmt.Sprintf("memory %s: restart failed: %v", p.name, err))
				continue
			}
			time.Sleep(time.Second)
			pid := s.procPid(p.proc)
			before := rssKiB(pid)
			n, url := nHTTP, fmt.Sprintf("http://127.0.0.1:%d/api/users/1", p.port)
			if kind == "ws" {
				n, url = nWS, fmt.Sprintf("ws://127.0.0.1:%d/ws/chat", p.port)
			}
			lp, err := startLines(bin("loadgen"), "-mode", "idle", "-kind", kind, "-url", url, "-n", strconv.Itoa(n))
			if err != nil {
				s.note(fmt.Sprintf("memory %s %s: %v", p.name, kind, err))
				continue
			}
			l, err := lp.expect("READY ")
			if err != nil {
				lp.close()
				s.note(fmt.Sprintf("memory %s %s: %v", p.name, kind, err))
				continue
			}
			var ok, failed int
			fmt.Sscanf(l, "READY %d %d", &ok, &failed)
			time.Sleep(2 * time.Second)
			after := rssKiB(pid)
			lp.close()
			if ok == 0 {
				s.note(fmt.Sprintf("memory %s %s: no connection succeeded", p.name, kind))
				continue
			}
			c := "HTTP keep-alive"
			if kind == "ws" {
				c = "WebSocket"
			}
			s.add(Trial{Section: "memory", Case: c, Peer: p.name, Rep: 1, M: map[string]float64{"kib_per_conn": (after - before) / float64(ok), "conns": float64(ok), "failed": float64(failed), "rss_before_mib": before / 1024, "rss_after_mib": after / 1024}})
			logf("memory %-8s %-16s: %d conns (%d failed): RSS %.1f -> %.1f MiB = %.1f KiB/conn", p.name, c, ok, failed, before/1024, after/1024, (after-before)/float64(ok))
			if failed > 0 {
				s.note(fmt.Sprintf("memory %s %s: %d of %d connections failed", p.name, c, failed, ok+failed))
			}
		}
	}
}

// openFilesLimit is this process's open-files limit (run.sh raises the soft limit to the hard one first).
func openFilesLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 1024
	}
	return int(rl.Cur)
}

// wsConnsFor is how many idle WebSockets a proxy can hold under an open-files limit of limit: two sockets
// per client plus some headroom, in steps of 1,000, at most 10,000.
func wsConnsFor(limit int) int {
	n := (limit - 500) / 2 / 1000 * 1000
	return max(1000, min(10000, n))
}
