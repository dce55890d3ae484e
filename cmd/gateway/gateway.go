package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/rsgate/rsgate/ingress"
	"github.com/rsgate/rsgate/internal/demo"
	"github.com/rsgate/rsgate/internal/webdemo"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/pool"
)

// gateway is one running process: ingress, pools, admin listener and, with -demo, the demo service.
type gateway struct {
	log     *zap.Logger
	flags   *flags // the command line: the file to reload and the overrides to apply again
	cfgPath string // "" when running the embedded example

	mu    sync.Mutex // serializes reloads
	cfg   *mapping.Config
	table *mapping.Table

	metrics *metrics.Set
	pools   *pool.Group
	ingress *ingress.Server
	admin   *adminServer
	demo    *demo.Server
	ln      net.Listener
	errc    chan error // fatal listener errors
	nofile  uint64     // the open-files limit after raiseNoFile (0: unknown)

	accessLog *ingress.AsyncWriter // the access log's writer (accesslog.go)
}

func start(f *flags, cfg *mapping.Config, table *mapping.Table, log *zap.Logger) (*gateway, error) {
	g := &gateway{log: log, flags: f, cfgPath: f.config, cfg: cfg, table: table, metrics: metrics.NewSet(), errc: make(chan error, 2)}
	g.nofile = startLimits(cfg, log) // rlimit.go: open-files limit, derived limits.max_connections
	if f.demo {
		addr := f.demoAddr
		if addr == "" {
			addr = demo.DefaultAddr
		}
		d, err := demo.Serve(addr, log.Named("demo"))
		if err != nil {
			return nil, fmt.Errorf("demo service on %s: %w (choose another address with -demo-addr)", addr, err)
		}
		g.demo = d
		retargetDemo(cfg, d.Addr().String())
		log.Info("demo RSocket service listening", zap.Stringer("addr", d.Addr()))
	}
	pools, err := pool.NewGroup(cfg, pool.Options{Logger: log.Named("pool"), Metrics: g.metrics})
	if err != nil {
		g.closeDemo()
		return nil, err
	}
	g.pools = pools
	pools.Start()

	inOpts := ingress.Options{Logger: log.Named("ingress"), Metrics: g.metrics, ReduceMemoryUsage: cfg.Limits.ReduceMemory}
	inOpts.AccessLog, g.accessLog = newAccessLogger(cfg, g.metrics) // unsampled, asynchronous (accesslog.go)
	if f.demo {
		// The browser demo page answers GET / and /demo/ (requests no route matches), and its "cut
		// connection" button POST /demo/cut (demo mode only: internal/webdemo/cut.go).
		inOpts.Fallback = webdemo.WithCut(func(ctx *fasthttp.RequestCtx) { g.ingress.CutClientsHandler(ctx) })
		if !webdemo.HasBundle() {
			log.Warn(webdemo.BuildHint)
		}
	}
	in, err := ingress.New(cfg, table, pools, inOpts)
	if err != nil {
		pools.Close()
		g.closeDemo()
		return nil, err
	}
	g.ingress = in
	ln, err := listenIngress(f, cfg)
	if err != nil {
		pools.Close()
		g.closeDemo()
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	g.ln = ln
	go func() {
		if err := in.Serve(ln); err != nil {
			g.errc <- fmt.Errorf("ingress: %w", err)
		}
	}()
	if cfg.Admin != "" && (f.worker == nil || f.worker.adminSock != "") {
		a, err := newAdmin(g, cfg.Admin)
		if err != nil {
			_ = ln.Close()
			pools.Close()
			g.closeDemo()
			return nil, err
		}
		g.admin = a
		go func() {
			if err := a.serve(); err != nil {
				g.errc <- fmt.Errorf("admin: %w", err)
			}
		}()
	}
	// # HELP/# TYPE lines, so Prometheus types histograms and counters instead of treating them as untyped.
	metrics.ExposeMetadata(true)
	metrics.RegisterSet(g.metrics)
	log.Info("gateway started", zap.String("version", version), zap.Stringer("listen", ln.Addr()),
		zap.String("admin", cfg.Admin), zap.Int("routes", len(cfg.Routes)), zap.Int("backends", len(cfg.Backends)))
	return g, nil
}

// retargetDemo points every backend address written as the demo's default address (config.example.yaml's
// 127.0.0.1:7878) at the address the demo service really listens on (-demo-addr).
func retargetDemo(cfg *mapping.Config, addr string) {
	if addr == demo.DefaultAddr {
		return
	}
	for _, b := range cfg.Backends {
		for i, a := range b.Addresses {
			if a == demo.DefaultAddr {
				b.Addresses[i] = addr
			}
		}
	}
}

func (g *gateway) listenAddr() string { return g.ln.Addr().String() }

// listenIngress is the ingress listener: a worker's socket from its supervisor (workers.go), else a new one.
func listenIngress(f *flags, cfg *mapping.Config) (net.Listener, error) {
	if f.worker != nil {
		return f.worker.ln, nil
	}
	return net.Listen("tcp", cfg.Listen)
}

// wait runs until SIGTERM/SIGINT (drain, exit 0) or a fatal listener error (exit 1). SIGHUP reloads.
func (g *gateway) wait(sig <-chan os.Signal) int {
	for {
		select {
		case s := <-sig:
			if s == syscall.SIGHUP {
				if err := g.reload(); err != nil {
					g.log.Error("reload failed; keeping the running configuration", zap.Error(err))
				}
				continue
			}
			g.log.Info("draining", zap.Stringer("signal", s), zap.Duration("grace", g.cfg.ShutdownGrace.D()))
			if err := g.shutdown(); err != nil {
				g.log.Warn("drain ended with requests still in flight", zap.Error(err))
			}
			g.log.Info("stopped")
			return 0
		case err := <-g.errc:
			g.log.Error("fatal", zap.Error(err))
			_ = g.shutdown()
			return 1
		}
	}
}

// shutdown stops accepting, lets in-flight requests finish within shutdown_grace, then closes everything.
func (g *gateway) shutdown() error {
	ctx, cancel := shutdownContext(g.cfg.ShutdownGrace.D())
	defer cancel()
	err := g.ingress.Shutdown(ctx)
	if g.admin != nil {
		_ = g.admin.close()
	}
	g.pools.Close()
	g.closeDemo()
	if g.accessLog != nil {
		_ = g.accessLog.Sync() // the lines still queued
	}
	metrics.UnregisterSet(g.metrics, true)
	return err
}

func (g *gateway) closeDemo() {
	if g.demo != nil {
		_ = g.demo.Close()
	}
}

// reload re-reads the configuration file; a bad file changes nothing.
func (g *gateway) reload() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cfgPath == "" {
		return errors.New("running the embedded example configuration: nothing to reload (use -config FILE)")
	}
	cfg, err := loadConfig(g.flags) // the file again, with the same -listen/-admin overrides
	if err != nil {
		return err
	}
	if g.demo != nil {
		retargetDemo(cfg, g.demo.Addr().String())
	}
	if cfg.Listen != g.cfg.Listen {
		g.log.Warn("listen address changes need a restart; keeping the old one", zap.String("old", g.cfg.Listen), zap.String("new", cfg.Listen))
		cfg.Listen = g.cfg.Listen
	}
	if cfg.Admin != g.cfg.Admin {
		g.log.Warn("admin address changes need a restart; keeping the old one", zap.String("old", g.cfg.Admin), zap.String("new", cfg.Admin))
		cfg.Admin = g.cfg.Admin
	}
	applyConnectionLimit(cfg, g.nofile)
	table, err := mapping.Compile(cfg)
	if err != nil {
		return err
	}
	adminTok, err := readAdminToken(cfg) // admin_token_file is read again on every reload
	if err != nil {
		return err
	}
	if err := g.pools.Update(cfg); err != nil {
		return err
	}
	if err := g.ingress.Update(cfg, table); err != nil {
		return err
	}
	g.cfg, g.table = cfg, table
	if g.admin != nil {
		g.admin.gd.token.Store(adminTok)
	}
	g.log.Info("configuration reloaded", zap.String("file", g.cfgPath), zap.Int("routes", len(cfg.Routes)))
	return nil
}

func (g *gateway) config() (*mapping.Config, *mapping.Table) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cfg, g.table
}

// printRouteTable writes the compiled routes, one per line, for -check.
func printRouteTable(w io.Writer, cfg *mapping.Config, table *mapping.Table) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tMETHOD\tPATH\tINTERACTION\tBACKEND\tROUTE")
	for _, r := range table.Routes() {
		tag := r.Route.Route
		if tag == "" {
			tag = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Method, r.Path, r.Interaction, r.Backend, tag)
	}
	_ = tw.Flush()
}

// printDemoHelp prints curl lines that work against the running demo.
func printDemoHelp(w io.Writer, listen string) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil || host == "" || host == "::" || host == "0.0.0.0" {
		host = "localhost"
	}
	base := "http://" + net.JoinHostPort(host, port)
	lines := []string{
		"rsgate is running with the demo RSocket service. Try:",
		"",
		"  curl -s -X POST -H 'Content-Type: application/json' -d '{\"hello\":\"rsgate\"}' " + base + "/api/echo",
		"  curl -s " + base + "/api/users/42",
		"  curl -sN " + base + "/api/ticks/5                                   # NDJSON stream",
		"  curl -sN -H 'Accept: text/event-stream' " + base + "/api/ticks/5   # SSE stream",
		"  curl -si -X POST -d '{\"msg\":\"hi\"}' " + base + "/api/log                 # fire-and-forget: 202",
		"",
		"Browser demo (rsocket-js clock stream and chat channel, plain WebSocket chat): " + base + "/",
		"  its \"cut connection\" button cuts the page's WebSocket (POST " + base + "/demo/cut, -demo only); the clock resumes",
		"WebSocket: " + strings.Replace(base, "http", "ws", 1) + "/ws/chat (JSON channel), " +
			strings.Replace(base, "http", "ws", 1) + "/rsocket (RSocket over WebSocket)",
		"",
	}
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}
