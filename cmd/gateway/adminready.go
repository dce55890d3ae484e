package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/rsgate/rsgate/mapping"
)

// /readyz: 200 "ready" when the configuration is loaded and every backend that serves a required route
// (route key "required", default true) has a healthy connection (RSocket) or an address up (http);
// otherwise 503 "not ready: no healthy connection to [names]". A backend serves a route as the route's
// backend, a split target, or an rsocket.routes target; a shadow backend never counts, and neither do
// backends that serve only routes of required: false. So one optional backend that is down no longer
// takes the whole gateway out of rotation.
//
// /readyz?verbose adds one line per configured backend, sorted by name, before the verdict:
//
//	[+] backend demo: ready (required by echo, ticks)
//	[-] backend reports: not ready (not required)

// backendReadiness is one backend as /readyz sees it.
type backendReadiness struct {
	name       string
	ready      bool
	requiredBy []string // required routes it serves
}

// readiness evaluates every configured backend.
func (a *adminServer) readiness() []backendReadiness {
	cfg, _ := a.g.config()
	requiredBy := map[string][]string{}
	for _, r := range cfg.Routes {
		if !r.IsRequired() {
			continue
		}
		for _, b := range servingBackends(r) {
			requiredBy[b] = append(requiredBy[b], r.Name)
		}
	}
	names := make([]string, 0, len(cfg.Backends))
	for name := range cfg.Backends {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]backendReadiness, 0, len(names))
	for _, name := range names {
		out = append(out, backendReadiness{name: name, ready: a.g.pools.BackendReady(name), requiredBy: requiredBy[name]})
	}
	return out
}

// servingBackends lists the backends that answer route r's requests, each once.
func servingBackends(r *mapping.Route) []string {
	seen := map[string]bool{}
	var out []string
	add := func(b string) {
		if !seen[b] {
			seen[b] = true
			out = append(out, b)
		}
	}
	add(r.Backend)
	for _, t := range r.Split {
		add(t.Backend)
	}
	if r.RSocket != nil {
		for _, b := range r.RSocket.Routes {
			add(b)
		}
	}
	return out
}

func (a *adminServer) readyz(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/plain; charset=utf-8")
	all := a.readiness()
	var missing []string
	for _, b := range all {
		if !b.ready && len(b.requiredBy) > 0 {
			missing = append(missing, b.name)
		}
	}
	if ctx.QueryArgs().Has("verbose") {
		for _, b := range all {
			mark, state := "[+]", "ready"
			if !b.ready {
				mark, state = "[-]", "not ready"
			}
			req := "not required"
			if len(b.requiredBy) > 0 {
				req = "required by " + strings.Join(b.requiredBy, ", ")
			}
			fmt.Fprintf(ctx, "%s backend %s: %s (%s)\n", mark, b.name, state, req)
		}
	}
	if len(missing) > 0 {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		fmt.Fprintf(ctx, "not ready: no healthy connection to %v\n", missing)
		return
	}
	ctx.WriteString("ready\n")
}
