// Command benchreport turns the trial records written by bench/http/run.sh (one TSV line per measured wrk
// trial) into the markdown report: per peer and connection count the median and min/max of req/s, latency
// percentiles and CPU per request, and the ratios of every peer to the reference peer (nginx), both as a ratio
// of medians and as the median of same-repetition ratios (trial i of peer X against trial i of nginx, which
// were run back to back and so saw the same background load).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// trial is one measured wrk run.
type trial struct {
	peer         string
	conns, rep   int
	rps          float64
	requests     float64
	durS         float64
	p50, p90     float64 // µs
	p99, p999    float64 // µs
	proxyTicks   float64
	backendTicks float64 // < 0: backend runs inside the proxy process
	wrkCPU       float64 // seconds
	sysBusy      float64 // ticks, all CPUs, during the trial
	sutBusy      float64 // ticks, the CPUs the SUT is pinned to, during the trial
	wallS        float64 // wall time of the measured wrk run (wrk process lifetime)
	errs         float64 // wrk errors: non-2xx/3xx status + socket errors
	respBytes    float64 // bytes read per response (headers + body): a cheap check that bodies were echoed
}

func main() {
	in := flag.String("in", "", "trials TSV written by run.sh")
	clk := flag.Float64("clk", 100, "clock ticks per second (getconf CLK_TCK)")
	ref := flag.String("ref", "nginx", "reference peer(s) for ratios, comma-separated (e.g. nginx,nginx-auto)")
	target := flag.String("target", "gateway,gateway-workers", "peers the goal is checked for (comma-separated)")
	unpinned := flag.Bool("unpinned", false, "wrk shares the SUT's CPUs (PIN=0): count its CPU out of the foreign load")
	order := flag.String("peers", "gateway,nginx,haproxy,caddy", "peer order in tables")
	_ = flag.Int("cores", 0, "CPUs the system under test was limited to (run.sh -cores; 0 = not limited); for the record")
	scale := flag.String("scale", "", `scaling report instead: "N=trials.tsv ..." for runs with -cores N (bench/scale.sh)`)
	flag.Parse()
	if *scale != "" {
		if err := scaling(os.Stdout, *scale, strings.Split(*order, ",")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	f, err := os.Open(*in)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer f.Close()
	trials, err := read(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	report(os.Stdout, trials, *clk, strings.Split(*ref, ","), *target, strings.Split(*order, ","), *unpinned)
}

func read(r io.Reader) ([]trial, error) {
	var out []trial
	sc := bufio.NewScanner(r)
	var cols []string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		fs := strings.Split(line, "\t")
		if cols == nil {
			cols = fs
			continue
		}
		if len(fs) != len(cols) {
			return nil, fmt.Errorf("line %q: %d fields, header has %d", line, len(fs), len(cols))
		}
		m := map[string]string{}
		for i, c := range cols {
			m[c] = fs[i]
		}
		num := func(k string) float64 {
			v, err := strconv.ParseFloat(m[k], 64)
			if err != nil {
				return -1
			}
			return v
		}
		out = append(out, trial{
			peer: m["peer"], conns: int(num("conns")), rep: int(num("rep")),
			rps: num("rps"), requests: num("requests"), durS: num("duration_s"),
			p50: num("p50_us"), p90: num("p90_us"), p99: num("p99_us"), p999: num("p999_us"),
			proxyTicks: num("proxy_ticks"), backendTicks: num("backend_ticks"),
			wrkCPU: num("wrk_cpu_s"), sysBusy: num("sys_busy_ticks"), wallS: num("wall_s"), sutBusy: num("sut_busy_ticks"), errs: num("errors"), respBytes: num("resp_bytes"),
		})
	}
	return out, sc.Err()
}

type stat struct{ med, min, max float64 }

func summarize(xs []float64) stat {
	if len(xs) == 0 {
		return stat{-1, -1, -1}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	var med float64
	if n := len(s); n%2 == 1 {
		med = s[n/2]
	} else {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return stat{med, s[0], s[len(s)-1]}
}

// metric extracts one number from a trial; ok=false leaves the trial out.
type metric func(t trial) (float64, bool)

func (s stat) fmt(format string) string {
	if s.med < 0 {
		return "n/a"
	}
	a, b, c := fmt.Sprintf(format, s.med), fmt.Sprintf(format, s.min), fmt.Sprintf(format, s.max)
	if b == c {
		return a
	}
	return fmt.Sprintf("%s (%s–%s)", a, b, c)
}

func report(w io.Writer, trials []trial, clk float64, refs []string, target string, order []string, unpinned bool) {
	usPerReq := func(ticks, reqs float64) float64 { return ticks / clk * 1e6 / reqs }
	m := map[string]metric{
		"rps":  func(t trial) (float64, bool) { return t.rps, t.rps > 0 },
		"p50":  func(t trial) (float64, bool) { return t.p50 / 1000, t.p50 >= 0 },
		"p90":  func(t trial) (float64, bool) { return t.p90 / 1000, t.p90 >= 0 },
		"p99":  func(t trial) (float64, bool) { return t.p99 / 1000, t.p99 >= 0 },
		"p999": func(t trial) (float64, bool) { return t.p999 / 1000, t.p999 >= 0 },
		"cpuProxy": func(t trial) (float64, bool) {
			return usPerReq(t.proxyTicks, t.requests), t.requests > 0 && t.proxyTicks >= 0
		},
		"cpuBackend": func(t trial) (float64, bool) {
			return usPerReq(t.backendTicks, t.requests), t.requests > 0 && t.backendTicks >= 0
		},
		"cpuTotal": func(t trial) (float64, bool) {
			b := t.backendTicks
			if b < 0 {
				b = 0
			}
			return usPerReq(t.proxyTicks+b, t.requests), t.requests > 0 && t.proxyTicks >= 0
		},
		"errs": func(t trial) (float64, bool) { return t.errs, t.errs >= 0 },
		// CPU time on the SUT's own CPUs not used by the proxy or its backend: other processes scheduled
		// there, and kernel work (loopback softirq) not charged to a process.
		"foreign": func(t trial) (float64, bool) {
			b := t.backendTicks
			if b < 0 {
				b = 0
			}
			f := t.sutBusy - t.proxyTicks - b
			if unpinned {
				f -= t.wrkCPU * clk
			}
			return f / clk / t.wallS, t.sutBusy >= 0 && t.wallS > 0
		},
		// Cores busy with anything but the proxy, its backend and wrk: other processes on the machine and
		// kernel work not charged to a process (loopback softirq). A noise indicator.
		"other": func(t trial) (float64, bool) {
			b := t.backendTicks
			if b < 0 {
				b = 0
			}
			o := (t.sysBusy - t.proxyTicks - b - t.wrkCPU*clk) / clk / t.wallS
			return o, t.sysBusy >= 0 && t.wallS > 0
		},
	}
	connsSet := map[int]bool{}
	peersSet := map[string]bool{}
	for _, t := range trials {
		connsSet[t.conns] = true
		peersSet[t.peer] = true
	}
	var conns []int
	for c := range connsSet {
		conns = append(conns, c)
	}
	sort.Ints(conns)
	var peers []string
	for _, p := range order {
		if peersSet[p] {
			peers = append(peers, p)
			delete(peersSet, p)
		}
	}
	for p := range peersSet {
		peers = append(peers, p)
	}
	sel := func(peer string, c int) []trial {
		var out []trial
		for _, t := range trials {
			if t.peer == peer && t.conns == c {
				out = append(out, t)
			}
		}
		return out
	}
	get := func(ts []trial, name string) stat {
		var xs []float64
		for _, t := range ts {
			if v, ok := m[name](t); ok {
				xs = append(xs, v)
			}
		}
		return summarize(xs)
	}
	inProc := func(ts []trial) bool {
		for _, t := range ts {
			if t.backendTicks < 0 {
				return true
			}
		}
		return false
	}

	fmt.Fprintf(w, "### Results (median, min–max over repetitions)\n\n")
	fmt.Fprintf(w, "| conns | peer | n | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | proxy CPU µs/req | backend CPU µs/req | proxy+backend µs/req | errors | other load (cores) | foreign on SUT CPUs (cores) |\n")
	fmt.Fprintf(w, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range conns {
		for _, p := range peers {
			ts := sel(p, c)
			if len(ts) == 0 {
				continue
			}
			be := get(ts, "cpuBackend").fmt("%.1f")
			if inProc(ts) {
				be = "in proxy"
			}
			fmt.Fprintf(w, "| %d | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", c, p, len(ts),
				get(ts, "rps").fmt("%.0f"), get(ts, "p50").fmt("%.2f"), get(ts, "p90").fmt("%.2f"),
				get(ts, "p99").fmt("%.2f"), get(ts, "p999").fmt("%.2f"),
				get(ts, "cpuProxy").fmt("%.1f"), be, get(ts, "cpuTotal").fmt("%.1f"),
				get(ts, "errs").fmt("%.0f"), get(ts, "other").fmt("%.2f"), get(ts, "foreign").fmt("%.2f"))
		}
	}

	// Ratios against the reference peer.
	ratio := func(a, b []trial, name string) (ofMed float64, same stat) {
		sa, sb := get(a, name), get(b, name)
		ofMed = -1
		if sa.med >= 0 && sb.med > 0 {
			ofMed = sa.med / sb.med
		}
		byRep := map[int]float64{}
		for _, t := range b {
			if v, ok := m[name](t); ok {
				byRep[t.rep] = v
			}
		}
		var xs []float64
		for _, t := range a {
			v, ok := m[name](t)
			r, ok2 := byRep[t.rep]
			if ok && ok2 && r > 0 {
				xs = append(xs, v/r)
			}
		}
		return ofMed, summarize(xs)
	}
	fr := func(x float64) string {
		if x < 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2f", x)
	}
	for _, ref := range refs {
		fmt.Fprintf(w, "\n### Ratios to %s (ratio of medians; same-repetition ratios: median (min–max))\n\n", ref)
		fmt.Fprintf(w, "| conns | peer | req/s | p99 | proxy CPU/req | proxy+backend CPU/req |\n|---:|---|---|---|---|---|\n")
		type goal struct {
			conns                 int
			rps, p99, cpu, cpuTot float64
			inProc                bool
			// the worst same-repetition ratios: the goal holds in every repetition when these meet it
			worstRPS, worstP99, worstCPU float64
		}
		goals := map[string][]goal{}
		for _, c := range conns {
			rt := sel(ref, c)
			if len(rt) == 0 {
				continue
			}
			for _, p := range peers {
				if p == ref {
					continue
				}
				ts := sel(p, c)
				if len(ts) == 0 {
					continue
				}
				cell := func(name string) (string, float64, stat) {
					om, same := ratio(ts, rt, name)
					return fmt.Sprintf("%s; %s", fr(om), same.fmt("%.2f")), om, same
				}
				a, rps, rpsSame := cell("rps")
				b, p99, p99Same := cell("p99")
				cp, cpu, cpuSame := cell("cpuProxy")
				ct, cpuTot, cpuTotSame := cell("cpuTotal")
				worstCPU := cpuSame.max
				if inProc(ts) {
					worstCPU = cpuTotSame.max
				}
				if inProc(ts) {
					cp = "n/a (backend in proxy process)"
					cpu = -1
				}
				fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s |\n", c, p, a, b, cp, ct)
				if slices.Contains(strings.Split(target, ","), p) {
					goals[p] = append(goals[p], goal{c, rps, p99, cpu, cpuTot, inProc(ts), rpsSame.min, p99Same.max, worstCPU})
				}
			}
		}
		for _, target := range strings.Split(target, ",") {
			goals := goals[target]
			if len(goals) == 0 {
				continue
			}
			fmt.Fprintf(w, "\n### Goal check: %s vs %s (req/s >= 1.3x, p99 <= 1.0x, CPU/request <= 0.8x; ratios of medians)\n\n", target, ref)
			fmt.Fprintf(w, "| conns | req/s x | p99 x | proxy CPU/req x | proxy+backend CPU/req x | met (medians) | worst repetition: req/s x, p99 x, CPU x | met in every repetition |\n|---:|---|---|---|---|---|---|---|\n")
			for _, g := range goals {
				ok := g.rps >= 1.3 && g.p99 >= 0 && g.p99 <= 1.0 && ((g.cpu >= 0 && g.cpu <= 0.8) || (g.cpu < 0 && g.cpuTot >= 0 && g.cpuTot <= 0.8))
				mark := func(v float64, good bool) string {
					if v < 0 {
						return "n/a"
					}
					if good {
						return fr(v) + " ✓"
					}
					return fr(v) + " ✗"
				}
				verdict := "no"
				if ok {
					verdict = "yes"
				}
				every := "no"
				if g.worstRPS >= 1.3 && g.worstP99 >= 0 && g.worstP99 <= 1.0 && g.worstCPU >= 0 && g.worstCPU <= 0.8 {
					every = "yes"
				}
				fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s | %s, %s, %s | %s |\n", g.conns, mark(g.rps, g.rps >= 1.3), mark(g.p99, g.p99 <= 1.0),
					mark(g.cpu, g.cpu >= 0 && g.cpu <= 0.8), mark(g.cpuTot, g.cpuTot >= 0 && g.cpuTot <= 0.8), verdict,
					fr(g.worstRPS), fr(g.worstP99), fr(g.worstCPU), every)
			}
		}
	}

	fmt.Fprintf(w, "\n### All trials\n\n| conns | rep | peer | req/s | p50 ms | p99 ms | p99.9 ms | proxy µs/req | backend µs/req | errors | bytes/resp | other load | foreign on SUT |\n|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, t := range trials {
		v := func(name string, f string) string {
			x, ok := m[name](t)
			if !ok {
				return "n/a"
			}
			return fmt.Sprintf(f, x)
		}
		rb := "n/a"
		if t.respBytes > 0 {
			rb = fmt.Sprintf("%.0f", t.respBytes)
		}
		fmt.Fprintf(w, "| %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", t.conns, t.rep, t.peer, v("rps", "%.0f"),
			v("p50", "%.2f"), v("p99", "%.2f"), v("p999", "%.2f"), v("cpuProxy", "%.1f"), v("cpuBackend", "%.1f"), v("errs", "%.0f"), rb, v("other", "%.2f"), v("foreign", "%.2f"))
	}
}
