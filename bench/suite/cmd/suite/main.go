// Command suite is the driver of bench/run.sh: it starts every system under test and peer (on 127.0.0.1, configs
// in its temp dir), runs the sections with repetitions and interleaving, stores every trial in trials.json and
// writes bench/RESULTS.md with plots in bench/results/. It only ever stops the processes it started.
//
// It expects the binaries that bench/run.sh builds in -bin: gateway, httpbackend, rsbackend (bench/http),
// rsocketbench (bench/rsocketbench), loadgen, upstream, rsgoserver, rsfnf (bench/suite).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var (
	quick      = flag.Bool("quick", false, "short trials, one repetition, fewer cells (~2-3 minutes)")
	tmpDir     = flag.String("tmp", "", "work dir (configs, logs, raw outputs)")
	binDir     = flag.String("bin", "", "directory with the built binaries")
	suiteDir   = flag.String("suite", "", "bench/suite directory (wrk.lua)")
	outMD      = flag.String("out", "", "RESULTS.md to write")
	pngDir     = flag.String("png", "", "directory for the plots")
	sections   = flag.String("sections", "http,tail,openloop,streams,rsocket,memory,balance", "sections to run")
	reportOnly = flag.String("report-only", "", "only write the report from this trials.json")
	reps       = flag.Int("reps", 0, "repetitions (0: 3, or 1 with -quick)")
	pin        = flag.Bool("pin", true, "pin load generators to the first half of the CPUs and the system under test to the other half")
	meta       = flag.String("meta", "", "file with 'key: value' lines about the machine and versions (from run.sh)")
	niceN      = flag.Int("nice", 0, "run load generators and everything under test at this nice level (e.g. -10 on a shared machine)")
)

// Trial is one measured run.
type Trial struct {
	Section string             `json:"section"`
	Case    string             `json:"case"`
	Peer    string             `json:"peer"`
	Rep     int                `json:"rep"`
	M       map[string]float64 `json:"m"`
	Curve   [][2]float64       `json:"curve,omitempty"`  // latency percentile curve [pct, µs]
	Series  [][2]float64       `json:"series,omitempty"` // e.g. RSS over time [s, MiB]
	Note    string             `json:"note,omitempty"`
}

type Suite struct {
	trials   []Trial
	notes    []string
	settings []string
	procs    map[string]*Proc
	ports    map[string]int
	loadCPUs string
	sutCPUs  string
	sutN     int
	clk      float64
	start    time.Time
	// durations
	dur, warm time.Duration
	reps      int
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "[%s] "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	if *reportOnly != "" {
		var st struct {
			Trials   []Trial  `json:"trials"`
			Notes    []string `json:"notes"`
			Settings []string `json:"settings"`
		}
		b, err := os.ReadFile(*reportOnly)
		if err != nil {
			log.Fatal(err)
		}
		if err := json.Unmarshal(b, &st); err != nil {
			log.Fatal(err)
		}
		s := &Suite{trials: st.Trials, notes: st.Notes, settings: st.Settings}
		s.report()
		return
	}
	s := &Suite{procs: map[string]*Proc{}, ports: map[string]int{}, clk: 100, start: time.Now()}
	if out, err := exec.Command("getconf", "CLK_TCK").Output(); err == nil {
		if v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil {
			s.clk = v
		}
	}
	s.reps = *reps
	if *quick {
		s.dur, s.warm = 2*time.Second, 500*time.Millisecond
		if s.reps == 0 {
			s.reps = 1
		}
	} else {
		s.dur, s.warm = 5*time.Second, 1500*time.Millisecond
		if s.reps == 0 {
			s.reps = 3
		}
	}
	ncpu := numCPU()
	if *pin && ncpu >= 2 {
		half := ncpu / 2
		s.loadCPUs = cpuRange(0, half-1)
		s.sutCPUs = cpuRange(half, ncpu-1)
		s.sutN = ncpu - half
		s.settings = append(s.settings, fmt.Sprintf("Pinning: load generators (wrk, loadgen) on CPU %s; every proxy and backend on CPU %s (taskset). GOMAXPROCS of every Go server, nginx worker_processes and haproxy nbthread = %d.", s.loadCPUs, s.sutCPUs, s.sutN))
	} else {
		s.sutN = ncpu
		s.settings = append(s.settings, fmt.Sprintf("No pinning: everything shares %d CPUs.", ncpu))
	}
	if *niceN != 0 {
		s.settings = append(s.settings, fmt.Sprintf("Load generators and every process under test ran at nice %d.", *niceN))
	}
	defer s.stopAll()
	go func() { // stop our processes on SIGINT/SIGTERM too
		ch := make(chan os.Signal, 1)
		signalNotify(ch)
		<-ch
		s.stopAll()
		os.Exit(130)
	}()
	s.setup()
	run := map[string]bool{}
	for _, x := range strings.Split(*sections, ",") {
		run[strings.TrimSpace(x)] = true
	}
	steps := []struct {
		name string
		f    func()
	}{{"http", s.sectionHTTP}, {"tail", s.sectionTail}, {"openloop", s.sectionOpenLoop}, {"streams", s.sectionStreams}, {"rsocket", s.sectionRSocket}, {"memory", s.sectionMemory}, {"balance", s.sectionBalance}}
	for _, st := range steps {
		if !run[st.name] {
			continue
		}
		t0 := time.Now()
		logf("== section %s", st.name)
		func() {
			defer func() {
				if r := recover(); r != nil {
					s.note(fmt.Sprintf("section %s aborted: %v", st.name, r))
				}
			}()
			st.f()
		}()
		logf("== section %s done in %s", st.name, time.Since(t0).Round(time.Second))
		s.save()
	}
	s.settings = append(s.settings, fmt.Sprintf("Wall time of the measurement: %s.", time.Since(s.start).Round(time.Second)))
	s.save()
	s.stopAll()
	s.report()
}

func (s *Suite) note(n string) {
	logf("note: %s", n)
	s.notes = append(s.notes, n)
}

func (s *Suite) add(t Trial) {
	s.trials = append(s.trials, t)
}

func (s *Suite) save() {
	b, _ := json.MarshalIndent(map[string]any{"trials": s.trials, "notes": s.notes, "settings": s.settings}, "", " ")
	_ = os.WriteFile(filepath.Join(*tmpDir, "trials.json"), b, 0o644)
}

// ---- processes ----

type Proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *Proc) Pid() int { return p.cmd.Process.Pid }
func (p *Proc) Alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// start runs a system-under-test process (pinned to the SUT CPUs), logging to tmp/name.log.
func (s *Suite) spawn(name string, env []string, args ...string) *Proc {
	return s.startOn(s.sutCPUs, name, env, args...)
}

func (s *Suite) startOn(cpus, name string, env []string, args ...string) *Proc {
	args = wrapCPU(cpus, args)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	lf, err := os.Create(filepath.Join(*tmpDir, name+".log"))
	if err != nil {
		panic(err)
	}
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		panic(fmt.Sprintf("start %s: %v", name, err))
	}
	p := &Proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); lf.Close(); close(p.done) }()
	s.procs[name] = p
	return p
}

func (s *Suite) stop(name string) {
	p := s.procs[name]
	if p == nil {
		return
	}
	delete(s.procs, name)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (s *Suite) stopAll() {
	for n := range s.procs {
		s.stop(n)
	}
}

func waitPort(p *Proc, port int) error {
	for range 150 {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if !p.Alive() {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := os.ReadFile(filepath.Join(*tmpDir, p.name+".log"))
	return fmt.Errorf("%s did not listen on :%d; log tail: %s", p.name, port, tail(string(b), 400))
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// pids returns pid and its descendants (nginx workers, the process under taskset is exec'd so it is pid itself).
func pids(pid int) []int {
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		ents, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", out[i]))
		for _, e := range ents {
			b, _ := os.ReadFile(e)
			for _, f := range strings.Fields(string(b)) {
				if v, err := strconv.Atoi(f); err == nil {
					out = append(out, v)
				}
			}
		}
	}
	return out
}

// cpuTicks: utime+stime of pid and its descendants, in clock ticks.
func cpuTicks(pid int) float64 {
	var t float64
	for _, p := range pids(pid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		st := string(b)
		st = st[strings.LastIndexByte(st, ')')+2:]
		f := strings.Fields(st)
		u, _ := strconv.ParseFloat(f[11], 64)
		k, _ := strconv.ParseFloat(f[12], 64)
		t += u + k
	}
	return t
}

// rssKiB: VmRSS of pid and its descendants.
func rssKiB(pid int) float64 {
	var t float64
	for _, p := range pids(pid) {
		f, err := os.Open(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
				x, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
				t += x
			}
		}
		f.Close()
	}
	return t
}

// cpuBusy: busy ticks (user+nice+system+irq+softirq+steal) over the given CPUs ("" = all).
func cpuBusy(cpus string) float64 {
	want := map[string]bool{}
	for _, c := range expand(cpus) {
		want["cpu"+strconv.Itoa(c)] = true
	}
	b, _ := os.ReadFile("/proc/stat")
	var t float64
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 9 {
			continue
		}
		if (cpus == "" && f[0] == "cpu") || (cpus != "" && want[f[0]]) {
			for _, i := range []int{1, 2, 3, 6, 7, 8} {
				v, _ := strconv.ParseFloat(f[i], 64)
				t += v
			}
		}
	}
	return t
}

func expand(r string) []int {
	var out []int
	for _, part := range strings.Split(r, ",") {
		if part == "" {
			continue
		}
		a, b, ok := strings.Cut(part, "-")
		x, _ := strconv.Atoi(a)
		y := x
		if ok {
			y, _ = strconv.Atoi(b)
		}
		for i := x; i <= y; i++ {
			out = append(out, i)
		}
	}
	return out
}

func cpuRange(a, b int) string {
	if a == b {
		return strconv.Itoa(a)
	}
	return fmt.Sprintf("%d-%d", a, b)
}

func numCPU() int {
	out, err := exec.Command("nproc").Output()
	if err != nil {
		return 1
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return max(n, 1)
}

func writeFile(name, content string) string {
	p := filepath.Join(*tmpDir, name)
	_ = os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		panic(err)
	}
	return p
}

func bin(name string) string { return filepath.Join(*binDir, name) }

// runJSON runs a load generator pinned to the load CPUs and decodes its last JSON line.
func (s *Suite) runJSON(name string, args ...string) (map[string]any, error) {
	args = wrapCPU(s.loadCPUs, args)
	cmd := exec.Command(args[0], args[1:]...)
	lf, _ := os.OpenFile(filepath.Join(*tmpDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	defer lf.Close()
	cmd.Stderr = lf
	out, err := cmd.Output()
	fmt.Fprintf(lf, "--- %v\n%s", args, out)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil {
		return nil, fmt.Errorf("%s: %v in %q", name, err, tail(string(out), 200))
	}
	return m, nil
}

func num(m map[string]any, k string) float64 {
	v, _ := m[k].(float64)
	return v
}

func curveOf(m map[string]any) [][2]float64 {
	var c [][2]float64
	if arr, ok := m["curve"].([]any); ok {
		for _, x := range arr {
			if p, ok := x.([]any); ok && len(p) == 2 {
				c = append(c, [2]float64{p[0].(float64), p[1].(float64)})
			}
		}
	}
	return c
}

var _ = io.Discard

// wrapCPU prefixes a command with taskset (cpus != "") and nice (-nice != 0).
func wrapCPU(cpus string, args []string) []string {
	if cpus != "" {
		args = append([]string{"taskset", "-c", cpus}, args...)
	}
	if *niceN != 0 {
		args = append([]string{"nice", "-n", strconv.Itoa(*niceN)}, args...)
	}
	return args
}
