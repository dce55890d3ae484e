//go:build linux

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/demo"
	"github.com/rsgate/rsgate/internal/testutil"
)

// Hostile-client test for issue 10 item 1: the gateway runs as a child process with a low open-files
// limit (soft and hard, so it cannot raise it), a client opens more idle connections than fit, and the
// gateway must neither exit nor stop answering once they are gone.
//
// The child is this test binary (TestMain below): with RSGATE_TEST_NOFILE set, it lowers RLIMIT_NOFILE and
// runs the gateway's main with the arguments in RSGATE_TEST_ARGS.

const (
	childNoFileEnv = "RSGATE_TEST_NOFILE"
	childArgsEnv   = "RSGATE_TEST_ARGS"
)

func TestMain(m *testing.M) {
	if os.Getenv(envWorker) != "" { // a worker started by TestWorkers' supervisor: the gateway's main
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	if v := os.Getenv(childNoFileEnv); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bad", childNoFileEnv, err)
			os.Exit(3)
		}
		rl := syscall.Rlimit{Cur: n, Max: n}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			fmt.Fprintln(os.Stderr, "setrlimit:", err)
			os.Exit(3)
		}
		os.Exit(run(strings.Split(os.Getenv(childArgsEnv), "\n"), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// freePort returns a loopback address that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer collects the child's log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type child struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
	log    *syncBuffer
	listen string
	admin  string
}

// startChild runs the gateway with limits (extra YAML under "limits:") and an open-files limit of nofile.
func startChild(t *testing.T, nofile int, limits string) *child {
	t.Helper()
	d, err := demo.Serve("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	c := &child{listen: freePort(t), admin: freePort(t), log: &syncBuffer{}, exited: make(chan struct{})}
	yaml := fmt.Sprintf(`listen: %q
admin: %q
shutdown_grace: 2s
limits:
  read_timeout: 60s
  idle_timeout: 60s
%s
backends:
  demo:
    addresses: [%q]
    connections: 2
routes:
  - name: echo
    method: POST
    path: /api/echo
    backend: demo
    interaction: request-response
    route: echo
`, c.listen, c.admin, limits, d.Addr())
	path := filepath.Join(t.TempDir(), "gw.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command(os.Args[0], "-test.run=^$")
	c.cmd.Env = append(os.Environ(), childNoFileEnv+"="+strconv.Itoa(nofile), childArgsEnv+"=-config\n"+path)
	c.cmd.Stderr, c.cmd.Stdout = c.log, c.log
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.err = c.cmd.Wait(); close(c.exited) }()
	t.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		<-c.exited
		if t.Failed() {
			t.Logf("child log:\n%s", c.log.String())
		}
	})
	testutil.EventuallyWithin(t, 20*time.Second, func() bool {
		if code, _, err := c.get("/readyz"); err == nil && code == 200 {
			return true
		}
		select {
		case <-c.exited:
			t.Fatalf("gateway exited at start: %v\n%s", c.err, c.log.String())
		default:
		}
		return false
	}, "the child gateway to become ready (/readyz 200)")
	return c
}

func (c *child) get(path string) (int, string, error) {
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Get("http://" + c.admin + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// echo sends one request on a new connection.
func (c *child) echo() (int, error) {
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Post("http://"+c.listen+"/api/echo", "application/json", strings.NewReader(`{"x":1}`))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.ReadAll(resp.Body)
	return resp.StatusCode, nil
}

func (c *child) alive(t *testing.T) {
	t.Helper()
	select {
	case <-c.exited:
		t.Fatalf("the gateway exited: %v\n%s", c.err, c.log.String())
	default:
	}
}

// metric reads one sample from /metrics (0 when absent).
func (c *child) metric(t *testing.T, name string) float64 {
	t.Helper()
	_, body, err := c.get("/metrics")
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` ([0-9.e+]+)$`).FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// flood opens n idle connections to addr (those the gateway closes at once are kept as they are).
func flood(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			break // the backlog is full: enough
		}
		conns = append(conns, c)
	}
	t.Cleanup(func() { closeAll(conns) })
	return conns
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		_ = c.Close()
	}
}

// answersAgain waits (bounded) until the gateway serves a request again.
func (c *child) answersAgain(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		code, err := c.echo()
		if err == nil && code == 200 {
			return
		}
		lastErr = fmt.Errorf("status %d, %v", code, err)
		c.alive(t)
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the gateway does not answer after the flood: %v", lastErr)
}

const (
	hostileNoFile = 256
	hostileConns  = 600 // more than fit
)

// The default limit (derived from the open-files limit) refuses the excess connections at accept, so the
// gateway never runs out of descriptors: the admin listener answers during the flood.
func TestHostileFloodDerivedLimit(t *testing.T) {
	c := startChild(t, hostileNoFile, "")
	conns := flood(t, c.listen, hostileConns)
	t.Logf("%d idle connections open", len(conns))
	time.Sleep(300 * time.Millisecond)
	c.alive(t)
	code, _, err := c.get("/healthz")
	if err != nil || code != 200 {
		t.Fatalf("/healthz during the flood: %d %v", code, err)
	}
	if open := c.metric(t, "rsgate_client_connections"); open <= 0 || open >= hostileNoFile {
		t.Errorf("rsgate_client_connections = %v during the flood, want in (0, %d)", open, hostileNoFile)
	}
	if refused := c.metric(t, `rsgate_connections_refused_total{reason="max_connections"}`); refused == 0 {
		t.Errorf("no connection refused at max_connections")
	}
	if !strings.Contains(c.log.String(), `"max_connections"`) {
		t.Errorf("the derived max_connections is not logged")
	}
	closeAll(conns)
	c.answersAgain(t)
	c.alive(t)
}

// With max_connections above the open-files limit, accept fails with EMFILE: the gateway retries with
// backoff, counts the errors, logs once per burst, and serves again once descriptors are free.
func TestHostileFloodEMFILE(t *testing.T) {
	c := startChild(t, hostileNoFile, "  max_connections: 100000")
	conns := flood(t, c.listen, hostileConns)
	t.Logf("%d idle connections open", len(conns))
	time.Sleep(1500 * time.Millisecond) // several backoff rounds at EMFILE
	c.alive(t)
	closeAll(conns)
	c.answersAgain(t)
	c.alive(t)
	errs := c.metric(t, `rsgate_accept_errors_total{listener="ingress"}`)
	if errs == 0 {
		t.Fatalf("no accept error counted; the flood did not reach EMFILE")
	}
	logged := strings.Count(c.log.String(), "accept failed; retrying")
	if logged == 0 || float64(logged) >= errs && errs > 3 {
		t.Errorf("accept errors: %v counted, %d logged; want one log line per burst", errs, logged)
	}
	t.Logf("accept errors %v, log lines %d", errs, logged)
	// The log line says the errors were EMFILE.
	sc := bufio.NewScanner(strings.NewReader(c.log.String()))
	found := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "accept failed") && strings.Contains(sc.Text(), "too many open files") {
			found = true
		}
	}
	if !found {
		t.Errorf("no accept failure with EMFILE logged")
	}
}
