package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/rsgate/rsgate/ingress"
	"github.com/rsgate/rsgate/mapping"
)

// adminServer serves the operator endpoints on the admin listener (never on the public one):
//
//	GET  /metrics   Prometheus text format: the gateway's metrics plus Go runtime and process metrics
//	GET  /healthz   200 while the process runs
//	GET  /readyz    200 when the configuration is loaded and every backend a required route uses has a healthy
//	                connection (adminready.go; ?verbose lists every backend)
//	GET  /routes    the routes as configured, defaults applied (JSON, adminview.go)
//	GET  /backends  per backend: its configuration and, per connection, state, in-flight, EWMA latency,
//	                lease, reconnects (JSON, adminview.go)
//	POST /reload    re-read the configuration file (as SIGHUP); 200 or 400 with the errors
//	POST /debug/cut-clients[?route=NAME]  cut the WebSocket of every /rsocket client (of that route):
//	                resumable sessions wait for their RESUME; {"cut": N} (ingress/rsocket_cut.go)
//	GET  /debug/pprof/...  Go profiles (CPU, heap, goroutines) for diagnosing a running gateway; mutex and
//	                block with ?seconds=N turn contention sampling on for those N seconds (adminprofile.go)
type adminServer struct {
	g   *gateway
	ln  net.Listener
	srv *fasthttp.Server
	gd  *adminGuard // adminguard.go
}

func newAdmin(g *gateway, addr string) (*adminServer, error) {
	var ln net.Listener
	var err error
	if w := g.flags.worker; w != nil {
		ln, err = w.adminListener() // the supervisor serves addr and forwards here (workers.go)
	} else {
		ln, err = net.Listen("tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("admin listen %s: %w", addr, err)
	}
	a := &adminServer{g: g}
	if err := a.init(ln, g.cfg, g.log, g.metrics, a.handle); err != nil {
		return nil, err
	}
	return a, nil
}

// init serves handle on ln behind the guard for cfg.Admin (the gateway's admin listener, or the supervisor's
// with workers). Accept errors (EMFILE under a connection flood) are retried, never fatal; the guard checks
// the token, Host and Origin before any handler (adminguard.go). ln is closed when init fails.
func (a *adminServer) init(ln net.Listener, cfg *mapping.Config, log *zap.Logger, set *metrics.Set, handle fasthttp.RequestHandler) error {
	tok, err := readAdminToken(cfg)
	if err != nil {
		_ = ln.Close()
		return err
	}
	a.ln = ingress.RetryAccept(ln, "admin", log, set)
	a.gd = newAdminGuard(cfg.Admin)
	a.gd.token.Store(tok)
	a.srv = &fasthttp.Server{Handler: a.guard(handle), Name: "rsgate-admin"}
	return nil
}

func (a *adminServer) serve() error { return a.srv.Serve(a.ln) }
func (a *adminServer) close() error { return a.srv.Shutdown() }

func (a *adminServer) handle(ctx *fasthttp.RequestCtx) {
	if bytes.HasPrefix(ctx.Path(), []byte("/debug/pprof/")) {
		servePprof(ctx) // adminprofile.go: mutex and block profiles on demand
		return
	}
	switch string(ctx.Path()) {
	case "/metrics":
		ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
		writeMetrics(ctx) // metricshelp.go: every family with a # HELP text
	case "/healthz":
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.WriteString("ok\n")
	case "/readyz":
		a.readyz(ctx) // adminready.go: required routes, ?verbose
	case "/routes":
		cfg, _ := a.g.config()
		writeJSON(ctx, routesView(cfg)) // adminview.go
	case "/backends":
		cfg, _ := a.g.config()
		writeJSON(ctx, backendsView(cfg, a.g.pools.Stats(), a.g.pools.HTTPStats()))
	case "/reload":
		if !ctx.IsPost() {
			ctx.Response.Header.Set("Allow", "POST")
			ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
			return
		}
		if err := a.g.reload(); err != nil {
			a.g.log.Error("reload via admin failed; keeping the running configuration", zap.Error(err))
			ctx.SetStatusCode(fasthttp.StatusBadRequest)
			writeJSON(ctx, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(ctx, map[string]string{"status": "reloaded"})
	case "/debug/cut-clients":
		a.g.ingress.CutClientsHandler(ctx) // POST only: the guard refuses cross-site POSTs
	default:
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.WriteString("admin endpoints: /metrics /healthz /readyz /routes /backends /reload /debug/cut-clients /debug/pprof/\n")
	}
}

func writeJSON(ctx *fasthttp.RequestCtx, v any) {
	ctx.SetContentType("application/json")
	enc := json.NewEncoder(ctx)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		ctx.SetStatusCode(fasthttp.StatusInternalServerError)
	}
}
