package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/zap"

	"github.com/rsgate/rsgate/internal/demo"
	"github.com/rsgate/rsgate/internal/testutil"
)

// Two workers' expositions merge into one that the Prometheus parser takes: each family once, its samples
// together, every sample with its worker label.
func TestMergeMetrics(t *testing.T) {
	worker := func(reqs, goroutines int) []byte {
		return fmt.Appendf(nil, `# HELP rsgate_http_requests_total Finished HTTP requests.
# TYPE rsgate_http_requests_total counter
rsgate_http_requests_total{route="echo",status="2xx"} %d
rsgate_http_requests_total{route="echo",status="5xx"} 0
# HELP rsgate_http_request_duration_seconds Duration.
# TYPE rsgate_http_request_duration_seconds histogram
rsgate_http_request_duration_seconds_bucket{route="echo",le="0.1"} %d
rsgate_http_request_duration_seconds_bucket{route="echo",le="+Inf"} %d
rsgate_http_request_duration_seconds_sum{route="echo"} 1.5
rsgate_http_request_duration_seconds_count{route="echo"} %d
# HELP go_goroutines Goroutines.
# TYPE go_goroutines gauge
go_goroutines %d
rsgate_untyped{} 1
`, reqs, reqs, reqs, reqs, goroutines)
	}
	var out bytes.Buffer
	mergeMetrics(&out, [][]byte{worker(3, 10), nil, worker(5, 12)}) // worker 2 did not answer
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(&out)
	if err != nil {
		t.Fatalf("merged text does not parse: %v\n%s", err, out.String())
	}
	if len(fams) != 4 {
		t.Errorf("%d families, want 4: %v", len(fams), fams)
	}
	byWorker := func(fam string) map[string]float64 {
		m := map[string]float64{}
		for _, s := range fams[fam].GetMetric() {
			w := ""
			for _, l := range s.GetLabel() {
				if l.GetName() == "worker" {
					w = l.GetValue()
				}
			}
			switch {
			case s.Counter != nil:
				m[w] += s.GetCounter().GetValue()
			case s.Gauge != nil:
				m[w] += s.GetGauge().GetValue()
			case s.Histogram != nil:
				m[w] += float64(s.GetHistogram().GetSampleCount())
			case s.Untyped != nil:
				m[w] += s.GetUntyped().GetValue()
			}
		}
		return m
	}
	for fam, want := range map[string]map[string]float64{
		"rsgate_http_requests_total":           {"1": 3, "3": 5},
		"rsgate_http_request_duration_seconds": {"1": 3, "3": 5},
		"go_goroutines":                        {"1": 10, "3": 12},
		"rsgate_untyped":                       {"1": 1, "3": 1},
	} {
		if got := byWorker(fam); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s by worker: %v, want %v", fam, got, want)
		}
	}
}

// runWorkers starts a supervisor for the configuration edit(demo address) returns, with its workers (this
// test binary), and waits for it on a signal channel of its own. stop sends SIGTERM and wants exit 0 within
// 20 s; the test's cleanup stops it if the test did not.
type runningWorkers struct {
	*supervisor
	sig     chan os.Signal
	done    chan int
	logs    *bytes.Buffer
	f       *flags
	demo    string
	stopped bool
}

func runWorkers(t *testing.T, edit func(demoAddr string) string) *runningWorkers {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("workers need Linux")
	}
	d, err := demo.Serve("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	f, cfg, _ := loadYAML(t, edit(d.Addr().String()))
	r := &runningWorkers{sig: make(chan os.Signal, 1), done: make(chan int, 1), logs: new(bytes.Buffer), f: f, demo: d.Addr().String()}
	r.supervisor = newSupervisor(f, []string{"-config", f.config}, cfg, zap.NewNop(), r.logs, r.logs)
	if err := r.start(); err != nil {
		t.Fatalf("start: %v\n%s", err, r.logs.String())
	}
	go func() { r.done <- r.wait(r.sig) }()
	t.Cleanup(func() {
		if !r.stopped {
			r.sig <- syscall.SIGTERM
			<-r.done
		}
	})
	return r
}

// stop sends SIGTERM and wants exit 0 within 20 s.
func (r *runningWorkers) stop(t *testing.T) {
	t.Helper()
	r.sig <- syscall.SIGTERM
	select {
	case code := <-r.done:
		r.stopped = true
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, r.logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the workers did not stop")
	}
}

// A gateway with workers: 2 serves from both workers on one port, merges their metrics, forwards the admin
// endpoints, starts a killed worker again, reloads every worker on SIGHUP and drains on SIGTERM. The
// workers are this test binary (TestMain runs the gateway's main when RSGATE_WORKER is set).
func TestWorkers(t *testing.T) {
	var yaml string
	s := runWorkers(t, func(demo string) string {
		yaml = "workers: 2\n" + fmt.Sprintf(testConfig, demo, "")
		return yaml
	})
	f, sig, logs := s.f, s.sig, s.logs
	base, admin := "http://"+s.addr, "http://"+s.admin.ln.Addr().String()
	waitReady(t, admin)

	// Requests on new connections: the kernel spreads them over both workers.
	fresh := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	echoAll := func(n int) {
		t.Helper()
		for i := range n {
			resp, err := fresh.Post(base+"/api/echo", "application/json", strings.NewReader(`{"n":1}`))
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("request %d: %d", i, resp.StatusCode)
			}
		}
	}
	echoAll(100)
	served := func() map[string]float64 {
		t.Helper()
		code, body := get(t, "GET", admin+"/metrics", "")
		if code != 200 {
			t.Fatalf("/metrics: %d %s", code, body)
		}
		parser := expfmt.NewTextParser(model.LegacyValidation)
		fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
		if err != nil {
			t.Fatalf("merged /metrics does not parse: %v", err)
		}
		m := map[string]float64{}
		for _, s := range fams["rsgate_http_requests_total"].GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["route"] == "echo" && labels["status"] == "2xx" {
				m[labels["worker"]] += s.GetCounter().GetValue()
			}
		}
		m["workers"] = fams["rsgate_workers"].GetMetric()[0].GetGauge().GetValue()
		m["restarts"] = fams["rsgate_worker_restarts_total"].GetMetric()[0].GetCounter().GetValue()
		return m
	}
	if m := served(); m["1"]+m["2"] != 100 || m["1"] == 0 || m["2"] == 0 || m["workers"] != 2 {
		t.Fatalf("served by worker: %v; want 100 requests over both workers, 2 running", m)
	}

	// Admin endpoints go to one worker (?worker=i, default 1).
	for q, want := range map[string]string{"": "1", "?worker=2": "2"} {
		resp, err := http.Get(admin + "/routes" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Rsgate-Worker") != want {
			t.Errorf("/routes%s: %d from worker %q, want 200 from %s", q, resp.StatusCode, resp.Header.Get("X-Rsgate-Worker"), want)
		}
	}
	if code, _ := get(t, "GET", admin+"/routes?worker=3", ""); code != 400 {
		t.Errorf("/routes?worker=3: %d, want 400", code)
	}

	// A second gateway on the same address fails instead of sharing the port.
	f2, cfg2, _ := loadYAML(t, strings.Replace(yaml, `listen: "127.0.0.1:0"`, `listen: "`+s.addr+`"`, 1))
	s2 := newSupervisor(f2, []string{"-config", f2.config}, cfg2, zap.NewNop(), logs, logs)
	if err := s2.listen(); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("a second gateway on %s: %v, want address already in use", s.addr, err)
	}
	for _, f := range s2.sockets {
		f.Close()
	}

	// A worker that dies is started again; the requests keep being answered.
	s.mu.Lock()
	pid := s.workers[0].cmd.Process.Pid
	s.mu.Unlock()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyWithin(t, 10*time.Second, func() bool {
		m := served()
		return m["restarts"] == 1 && m["workers"] == 2
	}, "the killed worker to run again")
	waitReady(t, admin)
	echoAll(50)

	// SIGHUP reloads every worker: the new route answers on every connection.
	if err := os.WriteFile(f.config, []byte("workers: 2\n"+fmt.Sprintf(testConfig, s.demo, extraRoute)), 0o644); err != nil {
		t.Fatal(err)
	}
	sig <- syscall.SIGHUP
	testutil.EventuallyWithin(t, 10*time.Second, func() bool {
		for range 20 {
			resp, err := fresh.Get(base + "/api/users/7")
			if err != nil {
				return false
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return false
			}
		}
		return true
	}, "every worker to serve the reloaded route")

	// SIGTERM drains every worker; then the port is closed.
	s.stop(t)
	if c, err := net.DialTimeout("tcp", s.addr, time.Second); err == nil {
		c.Close()
		t.Fatal("the listen address still accepts after the workers stopped")
	}
	if _, err := os.Stat(filepath.Join(s.dir)); !os.IsNotExist(err) {
		t.Errorf("the admin socket directory %s is left behind: %v", s.dir, err)
	}
}

// A worker that cannot start fails the whole start with its reason.
func TestWorkersStartFailure(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("workers need Linux")
	}
	// The admin token file is read by each worker at start; a file that is gone by then fails them.
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, cfg, _ := loadYAML(t, "workers: 2\nadmin_token_file: "+tok+"\n"+fmt.Sprintf(testConfig, "127.0.0.1:1", ""))
	if err := os.Remove(tok); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	s := newSupervisor(f, []string{"-config", f.config}, cfg, zap.NewNop(), &logs, &logs)
	err := s.start()
	s.stopAll()
	if err == nil || !strings.Contains(err.Error(), "worker 1") || !strings.Contains(err.Error(), "admin_token_file") {
		t.Fatalf("start: %v, want worker 1's admin_token_file error\n%s", err, logs.String())
	}
}

// -check and the supervisor's start name the routes whose resumable sessions workers split.
func TestWorkerCaveats(t *testing.T) {
	const cfg = `workers: %d
backends:
  demo:
    addresses: ["127.0.0.1:7878"]
routes:
  - {name: ticks, method: GET, path: /t, backend: demo, interaction: request-stream, route: t}
  - {name: quiet, method: GET, path: /q, backend: demo, interaction: request-stream, route: q, stream: {resume_window: 0}}
  - {name: echo, method: POST, path: /e, backend: demo, interaction: request-response, route: e}
  - {name: browser, method: GET, path: /rsocket, backend: demo, interaction: rsocket, rsocket: {allow: ["*"], resume: {}}}
`
	_, one, _ := loadYAML(t, fmt.Sprintf(cfg, 1))
	if c := workerCaveats(one); c != nil {
		t.Errorf("workers: 1: %q, want none", c)
	}
	_, two, _ := loadYAML(t, fmt.Sprintf(cfg, 2))
	c := workerCaveats(two)
	if len(c) != 2 || !strings.Contains(c[0], "routes ticks is per worker") || strings.Contains(c[0], "quiet") ||
		!strings.Contains(c[1], "rsocket.resume on routes browser") || !strings.Contains(c[1], "1 time in 2") {
		t.Errorf("workers: 2: %q", c)
	}
}

// With the admin listener off, the workers serve and stop without admin sockets.
func TestWorkersAdminOff(t *testing.T) {
	s := runWorkers(t, func(demo string) string {
		return "workers: 2\n" + strings.Replace(fmt.Sprintf(testConfig, demo, ""), `admin: "127.0.0.1:0"`, `admin: "off"`, 1)
	})
	if s.admin != nil {
		t.Error("admin: off, yet the supervisor serves an admin listener")
	}
	testutil.EventuallyWithin(t, 5*time.Second, func() bool {
		code, body := get(t, "POST", "http://"+s.addr+"/api/echo", `{"a":1}`)
		return code == 200 && body == `{"a":1}`
	}, "an echo through the workers")
	entries, _ := os.ReadDir(s.dir)
	if len(entries) != 0 {
		t.Errorf("admin sockets with admin off: %v", entries)
	}
	s.stop(t)
}
