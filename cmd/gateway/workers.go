package main

// Worker processes (`workers: N`, Linux). The process started by the user becomes a supervisor: it binds the
// listen address once per worker with SO_REUSEPORT, so that the kernel spreads client connections over the
// workers by a hash of their addresses, starts N copies of itself (this executable, the same arguments),
// hands each one its socket, restarts a worker that dies, forwards SIGHUP and SIGTERM/SIGINT, and serves the
// admin listener for all of them. Each worker is a whole gateway (ingress, pools, metrics) on GOMAXPROCS/N
// cores, usually one. Workers share nothing, like replicas on one host.
//
// Why: a Go process with one P hands a request from the client connection's goroutine to the backend
// connection's reader and back without waking another thread; with two or more Ps most of those hand-offs
// wake an idle P's thread (runtime wakep, an IPI, a futex), which cost the gateway 40% more CPU per request
// on two cores than on one (ARCHITECTURE.md, the budget per request). N one-P workers keep the one-P cost on
// every core, as nginx's worker processes do.
//
// The sockets: the supervisor first binds the address without SO_REUSEPORT and closes that socket again, so
// that an address already in use (another gateway, with or without workers) fails the start with "address
// already in use" instead of silently sharing the port; then it binds one SO_REUSEPORT socket per worker
// and keeps them, so that a restarted worker gets its socket back. A worker's socket is the file descriptor
// workerListenFD; workerReadyFD is a pipe on which the worker reports "ok" or why it could not start.
//
// The admin listener belongs to the supervisor; every worker serves its own admin endpoints on a Unix
// socket in a directory only this user can open. /metrics is every worker's metrics, merged family by
// family with a worker="i" label, plus rsgate_workers and rsgate_worker_restarts_total. /readyz and
// /reload go to every worker (the first failure is the answer). Everything else goes to one worker:
// ?worker=i, default 1.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/rsgate/rsgate/mapping"
)

const (
	envWorker      = "RSGATE_WORKER"       // "i/N" in a worker process
	envWorkerAdmin = "RSGATE_WORKER_ADMIN" // the worker's admin Unix socket ("" when admin is off)
	workerListenFD = 3                     // cmd.ExtraFiles[0]
	workerReadyFD  = 4                     // cmd.ExtraFiles[1]

	workerStartTimeout = 60 * time.Second
	workerBackoffMin   = 500 * time.Millisecond
	workerBackoffMax   = 30 * time.Second
	workerStableAfter  = time.Minute // a worker that ran this long restarts with the shortest backoff again
)

// workerEnv is what a worker process learns from its supervisor.
type workerEnv struct {
	index, count int
	ln           net.Listener // the worker's SO_REUSEPORT socket
	adminSock    string       // "" when the admin listener is off
	ready        *os.File
}

// workerFromEnv returns the worker settings when this process is a worker, nil otherwise.
func workerFromEnv() (*workerEnv, error) {
	v := os.Getenv(envWorker)
	if v == "" {
		return nil, nil
	}
	w := &workerEnv{adminSock: os.Getenv(envWorkerAdmin)}
	if _, err := fmt.Sscanf(v, "%d/%d", &w.index, &w.count); err != nil || w.index < 1 || w.index > w.count {
		return nil, fmt.Errorf("%s=%q: want i/N", envWorker, v)
	}
	w.ready = os.NewFile(workerReadyFD, "ready")
	f := os.NewFile(workerListenFD, "listener")
	ln, err := net.FileListener(f)
	_ = f.Close() // FileListener dups it
	if err != nil {
		w.report(err)
		return nil, fmt.Errorf("worker %d: the listening socket from the supervisor: %w", w.index, err)
	}
	w.ln = ln
	return w, nil
}

// report tells the supervisor that the worker started (err nil) or why it did not.
func (w *workerEnv) report(err error) {
	if w == nil || w.ready == nil {
		return
	}
	msg := "ok\n"
	if err != nil {
		msg = strings.ReplaceAll(err.Error(), "\n", "; ") + "\n"
	}
	_, _ = io.WriteString(w.ready, msg)
	_ = w.ready.Close()
	w.ready = nil
}

// adminListener is the worker's admin listener: its Unix socket (a stale one from a worker that died is
// removed first).
func (w *workerEnv) adminListener() (net.Listener, error) {
	_ = os.Remove(w.adminSock)
	return net.Listen("unix", w.adminSock)
}

// workerProcs is each of n workers' GOMAXPROCS: this process's share, at least 1.
func workerProcs(n int) int { return max(1, runtime.GOMAXPROCS(0)/n) }

// workerCaveats lists what workers change for cfg's routes: a resumable session lives in one worker, and the
// kernel picks the worker of a new connection by a hash of its addresses, so a client's reconnect (a new
// source port) reaches the worker holding its session 1 time in N.
func workerCaveats(cfg *mapping.Config) []string {
	if cfg.Workers < 2 {
		return nil
	}
	var sse, rs []string
	for _, r := range cfg.Routes {
		if r.Interaction == mapping.InteractionRequestStream && r.Stream.ResumeWindow > 0 {
			sse = append(sse, r.Name)
		}
		if r.RSocket != nil && r.RSocket.Resume != nil {
			rs = append(rs, r.Name)
		}
	}
	var out []string
	if len(sse) > 0 {
		out = append(out, fmt.Sprintf("SSE resumption (stream.resume_window) on routes %s is per worker: an EventSource reconnect reaches the worker that parked its stream 1 time in %d (set stream.resume_window: 0 there, or run workers: 1)", strings.Join(sse, ", "), cfg.Workers))
	}
	if len(rs) > 0 {
		out = append(out, fmt.Sprintf("rsocket.resume on routes %s is per worker: a RESUME reaches the worker holding its session 1 time in %d", strings.Join(rs, ", "), cfg.Workers))
	}
	return out
}

// supervisor runs the workers.
type supervisor struct {
	log     *zap.Logger
	flags   *flags
	args    []string // the command line, given to every worker as it is
	stdout  io.Writer
	stderr  io.Writer
	cfg     *mapping.Config
	n       int
	procs   int // GOMAXPROCS of each worker
	dir     string
	addr    string     // the address the sockets are bound to (the port resolved when it was 0)
	sockets []*os.File // one SO_REUSEPORT listening socket per worker; closed when draining

	mu       sync.Mutex
	workers  []*workerProc
	stopping bool
	exited   chan *workerProc
	restarts atomic.Uint64

	admin   *adminServer
	clients []*fasthttp.HostClient // one per worker, to its admin socket
}

type workerProc struct {
	index   int // 1-based
	cmd     *exec.Cmd
	started time.Time
	backoff time.Duration
	err     error // from Wait, once exited
	done    chan struct{}
}

// supervise runs cfg.Workers workers until a signal on sig ends them (SIGHUP reloads every worker). It
// returns the process exit code.
func supervise(f *flags, args []string, cfg *mapping.Config, log *zap.Logger, stdout, stderr io.Writer, sig <-chan os.Signal) int {
	s := newSupervisor(f, args, cfg, log, stdout, stderr)
	if err := s.start(); err != nil {
		log.Error("start failed", zap.Error(err))
		s.stopAll()
		return 1
	}
	return s.wait(sig)
}

func newSupervisor(f *flags, args []string, cfg *mapping.Config, log *zap.Logger, stdout, stderr io.Writer) *supervisor {
	// A worker writes straight to an *os.File (the usual os.Stdout and os.Stderr); any other writer gets
	// one copying goroutine per worker, which must take turns.
	var mu sync.Mutex
	if _, ok := stdout.(*os.File); !ok {
		stdout = &lockedWriter{mu: &mu, w: stdout}
	}
	if _, ok := stderr.(*os.File); !ok {
		stderr = &lockedWriter{mu: &mu, w: stderr}
	}
	return &supervisor{
		log: log, flags: f, args: args, stdout: stdout, stderr: stderr, cfg: cfg, n: cfg.Workers,
		procs: workerProcs(cfg.Workers), exited: make(chan *workerProc, cfg.Workers),
	}
}

func (s *supervisor) start() error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("workers: cannot find this executable to start the workers: %w", err)
	}
	s.args = append([]string{exe}, s.args...)
	if s.dir, err = os.MkdirTemp("", "rsgate-workers-"); err != nil { // mode 0700
		return fmt.Errorf("workers: %w", err)
	}
	if err := s.listen(); err != nil {
		return err
	}
	s.workers = make([]*workerProc, s.n)
	s.clients = make([]*fasthttp.HostClient, s.n)
	for i := range s.n {
		sock := s.adminSock(i + 1)
		s.clients[i] = &fasthttp.HostClient{
			Addr: "worker-" + strconv.Itoa(i+1),
			Dial: func(string) (net.Conn, error) { return net.DialTimeout("unix", sock, 2*time.Second) },
		}
		w := &workerProc{index: i + 1, backoff: workerBackoffMin}
		s.workers[i] = w
		if _, err := s.startWorker(w); err != nil {
			return err
		}
	}
	if s.cfg.Admin != "" {
		a, err := newSupervisorAdmin(s)
		if err != nil {
			return err
		}
		s.admin = a
		go func() {
			if err := a.serve(); err != nil {
				s.log.Error("admin listener failed", zap.Error(err))
			}
		}()
	}
	s.log.Info("gateway started", zap.String("version", version), zap.String("listen", s.addr),
		zap.String("admin", s.cfg.Admin), zap.Int("workers", s.n), zap.Int("gomaxprocs_per_worker", s.procs),
		zap.Int("routes", len(s.cfg.Routes)), zap.Int("backends", len(s.cfg.Backends)))
	for _, c := range workerCaveats(s.cfg) {
		s.log.Warn(c)
	}
	return nil
}

// listen binds the listen address once without SO_REUSEPORT (the check that nobody holds it), then once
// per worker with it.
func (s *supervisor) listen() error {
	probe, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.cfg.Listen, err)
	}
	s.addr = probe.Addr().String()
	_ = probe.Close()
	for range s.n {
		ln, err := listenReusePort(s.addr)
		if err != nil {
			return fmt.Errorf("listen %s (SO_REUSEPORT): %w", s.addr, err)
		}
		f, err := ln.(*net.TCPListener).File()
		_ = ln.Close() // f is a dup
		if err != nil {
			return fmt.Errorf("listen %s: %w", s.addr, err)
		}
		s.sockets = append(s.sockets, f)
	}
	return nil
}

func (s *supervisor) adminSock(i int) string {
	if s.cfg.Admin == "" {
		return ""
	}
	return filepath.Join(s.dir, "worker-"+strconv.Itoa(i)+".sock")
}

// startWorker starts w's process and waits until it reports that it serves (or why it cannot). On an error
// no process of w is left; ran says whether one was started, and so whether its exit reaches s.exited.
func (s *supervisor) startWorker(w *workerProc) (ran bool, err error) {
	w.started = time.Now()
	rd, wr, err := os.Pipe()
	if err != nil {
		return false, err
	}
	defer rd.Close()
	cmd := exec.Command(selfExe(s.args[0]), s.args[1:]...)
	cmd.Args[0] = s.args[0]
	cmd.Env = append(os.Environ(),
		envWorker+"="+strconv.Itoa(w.index)+"/"+strconv.Itoa(s.n),
		envWorkerAdmin+"="+s.adminSock(w.index),
		"GOMAXPROCS="+strconv.Itoa(s.procs))
	cmd.Stdout, cmd.Stderr = s.stdout, s.stderr
	cmd.ExtraFiles = []*os.File{s.sockets[w.index-1], wr}
	cmd.SysProcAttr = workerSysProcAttr()
	err = cmd.Start()
	_ = wr.Close()
	if err != nil {
		return false, fmt.Errorf("worker %d: %w", w.index, err)
	}
	s.mu.Lock()
	w.cmd, w.err, w.done = cmd, nil, make(chan struct{})
	s.mu.Unlock()
	go func() {
		w.err = cmd.Wait()
		close(w.done)
		s.exited <- w
	}()
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(rd).ReadString('\n')
		line <- strings.TrimSpace(l)
	}()
	select {
	case l := <-line:
		if l == "ok" {
			return true, nil
		}
		<-w.done
		if l == "" {
			return true, fmt.Errorf("worker %d exited while starting: %v", w.index, w.err)
		}
		return true, fmt.Errorf("worker %d: %s", w.index, l)
	case <-time.After(workerStartTimeout):
		_ = cmd.Process.Kill()
		<-w.done
		return true, fmt.Errorf("worker %d did not start within %s", w.index, workerStartTimeout)
	}
}

// retryLater sends w to restart after its backoff, which doubles with every try unless w ran for
// workerStableAfter.
func (w *workerProc) retryLater(restart chan<- *workerProc) time.Duration {
	if time.Since(w.started) > workerStableAfter {
		w.backoff = workerBackoffMin
	}
	d := w.backoff
	w.backoff = min(2*w.backoff, workerBackoffMax)
	time.AfterFunc(d, func() { restart <- w })
	return d
}

// wait supervises until SIGTERM/SIGINT; a worker that exits on its own is started again after a backoff.
func (s *supervisor) wait(sig <-chan os.Signal) int {
	restart := make(chan *workerProc, s.n) // at most one pending restart per worker
	for {
		select {
		case sg := <-sig:
			if sg == syscall.SIGHUP {
				s.reloadToken()
				s.signalAll(syscall.SIGHUP)
				continue
			}
			s.log.Info("draining", zap.Stringer("signal", sg), zap.Int("workers", s.n), zap.Duration("grace", s.cfg.ShutdownGrace.D()))
			return s.stopAll()
		case w := <-s.exited:
			s.restarts.Add(1)
			pid := w.cmd.Process.Pid
			s.log.Error("worker exited; starting it again", zap.Int("worker", w.index), zap.Int("pid", pid),
				zap.NamedError("exit", w.err), zap.Duration("after", w.retryLater(restart)))
		case w := <-restart:
			s.mu.Lock()
			stopping := s.stopping
			s.mu.Unlock()
			if stopping {
				continue
			}
			if ran, err := s.startWorker(w); err != nil {
				s.log.Error("worker did not start", zap.Int("worker", w.index), zap.Error(err))
				if !ran { // no exit will come to try again from
					w.retryLater(restart)
				}
			}
		}
	}
}

// stopAll closes the supervisor's copies of the sockets (so that each closes when its worker closes it),
// sends SIGTERM to every worker and waits for them for shutdown_grace plus 10 s, then kills what is left.
// The exit code is 0 when every worker exited 0.
func (s *supervisor) stopAll() int {
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	for _, f := range s.sockets {
		_ = f.Close()
	}
	s.sockets = nil
	s.signalAll(syscall.SIGTERM)
	deadline := time.After(s.cfg.ShutdownGrace.D() + 10*time.Second)
	code := 0
	// No worker is started from here on (stopping), so w.done no longer changes.
	for _, w := range s.workers {
		if w == nil || w.done == nil {
			continue
		}
		select {
		case <-w.done:
		case <-deadline:
			s.log.Warn("worker did not stop in time; killing it", zap.Int("worker", w.index))
			_ = w.cmd.Process.Kill()
			<-w.done
		}
		if w.err != nil {
			code = 1
		}
	}
	if s.admin != nil {
		_ = s.admin.close()
	}
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
	s.log.Info("stopped")
	return code
}

func (s *supervisor) signalAll(sg os.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.workers {
		if w != nil && w.cmd != nil && w.done != nil {
			select {
			case <-w.done:
			default:
				_ = w.cmd.Process.Signal(sg)
			}
		}
	}
}

func (s *supervisor) running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, w := range s.workers {
		if w != nil && w.done != nil {
			select {
			case <-w.done:
			default:
				n++
			}
		}
	}
	return n
}

// reloadToken re-reads admin_token_file for the supervisor's admin listener (SIGHUP); a file that does
// not load keeps the old token, as the workers keep their configuration. A new worker count only warns.
func (s *supervisor) reloadToken() {
	cfg, err := loadConfig(s.flags)
	if err == nil && cfg.Workers != s.n {
		s.log.Warn("workers changes need a restart; keeping the running workers", zap.Int("running", s.n), zap.Int("new", cfg.Workers))
	}
	if s.admin == nil {
		return
	}
	if err == nil {
		var tok *adminToken
		if tok, err = readAdminToken(cfg); err == nil {
			s.admin.gd.token.Store(tok)
			return
		}
	}
	s.log.Error("reload: keeping the admin token", zap.Error(err))
}

// newSupervisorAdmin is the admin listener of a gateway with workers (see the top of this file).
func newSupervisorAdmin(s *supervisor) (*adminServer, error) {
	ln, err := net.Listen("tcp", s.cfg.Admin)
	if err != nil {
		return nil, fmt.Errorf("admin listen %s: %w", s.cfg.Admin, err)
	}
	a := &adminServer{}
	if err := a.init(ln, s.cfg, s.log, nil, s.handleAdmin); err != nil {
		return nil, err
	}
	return a, nil
}

func (s *supervisor) handleAdmin(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/healthz":
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.WriteString("ok\n")
	case "/metrics":
		s.metrics(ctx)
	case "/readyz", "/reload":
		s.forwardAll(ctx)
	default:
		i := 1
		if v := ctx.QueryArgs().Peek("worker"); v != nil {
			n, err := strconv.Atoi(string(v))
			if err != nil || n < 1 || n > s.n {
				adminError(ctx, fasthttp.StatusBadRequest, fmt.Sprintf("worker must be 1..%d", s.n), "BAD_WORKER")
				return
			}
			i = n
		}
		if err := s.forward(i, &ctx.Request, &ctx.Response); err != nil {
			s.unavailable(ctx, i, err)
		}
	}
}

// forward sends req to worker i's admin socket and puts the answer into resp.
func (s *supervisor) forward(i int, req *fasthttp.Request, resp *fasthttp.Response) error {
	timeout := 15 * time.Second
	if bytes.HasPrefix(req.URI().Path(), []byte("/debug/pprof/")) { // profiles run for ?seconds=N (default 30)
		sec, err := strconv.Atoi(string(req.URI().QueryArgs().Peek("seconds")))
		if err != nil || sec <= 0 {
			sec = 30
		}
		timeout = time.Duration(sec)*time.Second + 15*time.Second
	}
	err := s.clients[i-1].DoTimeout(req, resp, timeout)
	resp.Header.Set("X-Rsgate-Worker", strconv.Itoa(i))
	return err
}

func (s *supervisor) unavailable(ctx *fasthttp.RequestCtx, i int, err error) {
	ctx.Response.Reset()
	ctx.Response.Header.Set("X-Rsgate-Worker", strconv.Itoa(i))
	adminError(ctx, fasthttp.StatusServiceUnavailable, fmt.Sprintf("worker %d: %v", i, err), "WORKER_UNAVAILABLE")
}

// forwardAll sends the request to every worker: the answer is the first one that is not 2xx, else
// worker 1's.
func (s *supervisor) forwardAll(ctx *fasthttp.RequestCtx) {
	var first fasthttp.Response
	for i := 1; i <= s.n; i++ {
		var resp fasthttp.Response
		if err := s.forward(i, &ctx.Request, &resp); err != nil {
			s.unavailable(ctx, i, err)
			return
		}
		if sc := resp.StatusCode(); sc < 200 || sc > 299 {
			resp.CopyTo(&ctx.Response)
			return
		}
		if i == 1 {
			resp.CopyTo(&first)
		}
	}
	first.CopyTo(&ctx.Response)
}

// metrics writes every worker's /metrics, merged (mergeMetrics), and the supervisor's own.
func (s *supervisor) metrics(ctx *fasthttp.RequestCtx) {
	texts := make([][]byte, s.n)
	for i := 1; i <= s.n; i++ {
		var resp fasthttp.Response
		if err := s.forward(i, &ctx.Request, &resp); err != nil || resp.StatusCode() != fasthttp.StatusOK {
			if err == nil {
				err = fmt.Errorf("status %d", resp.StatusCode())
			}
			if resp.StatusCode() == fasthttp.StatusUnauthorized {
				resp.CopyTo(&ctx.Response)
				return
			}
			s.log.Warn("metrics: a worker did not answer", zap.Int("worker", i), zap.Error(err))
			continue
		}
		texts[i-1] = resp.Body() // resp is not pooled: its body stays valid
	}
	ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
	mergeMetrics(ctx, texts)
	fmt.Fprintf(ctx, "# HELP rsgate_workers %s\n# TYPE rsgate_workers gauge\nrsgate_workers %d\n", metricHelp["rsgate_workers"], s.running())
	fmt.Fprintf(ctx, "# HELP rsgate_worker_restarts_total %s\n# TYPE rsgate_worker_restarts_total counter\nrsgate_worker_restarts_total %d\n",
		metricHelp["rsgate_worker_restarts_total"], s.restarts.Load())
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// mergeMetrics writes the Prometheus text of several workers (texts[i] from worker i+1; nil: none) as one
// exposition: each family once, its # HELP and # TYPE first, then its samples from every worker with a
// worker="i" label. The text format wants the samples of a family together, so concatenating would not do.
func mergeMetrics(w io.Writer, texts [][]byte) {
	type family struct {
		help, typ string
		samples   []string
	}
	var order []string
	fams := map[string]*family{}
	get := func(name string) *family {
		f := fams[name]
		if f == nil {
			f = &family{}
			fams[name] = f
			order = append(order, name)
		}
		return f
	}
	for i, text := range texts {
		label := strconv.Itoa(i + 1)
		cur := "" // the family of the last # HELP or # TYPE line
		for line := range strings.Lines(string(text)) {
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "":
			case strings.HasPrefix(line, "# HELP "), strings.HasPrefix(line, "# TYPE "):
				fields := strings.SplitN(line, " ", 4)
				if len(fields) < 3 {
					continue
				}
				cur = fields[2]
				f := get(cur)
				if fields[1] == "HELP" && f.help == "" {
					f.help = line
				} else if fields[1] == "TYPE" && f.typ == "" {
					f.typ = line
				}
			case line[0] == '#':
			default:
				end := strings.IndexAny(line, "{ ")
				if end < 0 {
					continue
				}
				name := line[:end]
				key := cur
				if cur == "" || !strings.HasPrefix(name, cur) {
					key, cur = name, ""
				}
				f := get(key)
				f.samples = append(f.samples, withWorkerLabel(line, end, label))
			}
		}
	}
	bw := bufio.NewWriter(w)
	for _, name := range order {
		f := fams[name]
		if len(f.samples) == 0 {
			continue
		}
		for _, l := range []string{f.help, f.typ} {
			if l != "" {
				bw.WriteString(l)
				bw.WriteByte('\n')
			}
		}
		for _, l := range f.samples {
			bw.WriteString(l)
			bw.WriteByte('\n')
		}
	}
	_ = bw.Flush()
}

// withWorkerLabel adds worker="w" to a sample line whose name ends at end ('{' or ' ').
func withWorkerLabel(line string, end int, w string) string {
	if line[end] == ' ' {
		return line[:end] + `{worker="` + w + `"}` + line[end:]
	}
	if end+1 < len(line) && line[end+1] == '}' {
		return line[:end+1] + `worker="` + w + `"` + line[end+1:]
	}
	return line[:end+1] + `worker="` + w + `",` + line[end+1:]
}
