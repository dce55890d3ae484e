package pool

import (
	"context"
	"net"
	"slices"
	"sort"

	"go.uber.org/zap"
)

// resolveLoop re-resolves the host names of dynamic targets every resolve_interval and follows the record
// set: new IPs get `connections` slots, IPs that disappeared are drained. A failed lookup keeps the current
// set (a DNS outage must not empty the pool); an empty successful answer drains everything (the service
// says it has no instances). While a target has no address yet, failed lookups are retried with the
// reconnect backoff instead of waiting a whole interval.
func (p *Pool) resolveLoop(ctx context.Context) {
	defer p.wg.Done()
	interval := p.backend.ResolveInterval.D()
	failures := 0
	for {
		wait := interval
		if p.resolveOnce(ctx) {
			failures = 0
		} else {
			failures++
			wait = min(interval, p.backoff(failures))
		}
		if !sleep(ctx, wait) {
			return
		}
	}
}

// resolveOnce resolves every dynamic target once. It returns false when a target that has no address yet
// could not be resolved.
func (p *Pool) resolveOnce(ctx context.Context) bool {
	ok := true
	for _, t := range p.targets {
		if !t.dynamic {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, p.backend.DialTimeout.D())
		ips, err := p.opts.Resolver(rctx, t.host)
		cancel()
		if ctx.Err() != nil {
			return true
		}
		if err != nil {
			p.mu.Lock()
			empty := len(t.endpoints) == 0
			p.mu.Unlock()
			if empty {
				ok = false
			}
			p.log.Warn("backend address resolution failed, keeping the current addresses",
				zap.String("host", t.host), zap.Error(err))
			continue
		}
		p.applyResolved(t, ips)
	}
	return ok
}

// applyResolved makes t's endpoints follow ips.
func (p *Pool) applyResolved(t *target, ips []string) {
	want := wantedIPs(ips)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shut {
		return
	}
	var added, removed []string
	for ip := range want {
		if _, ok := t.endpoints[ip]; ok {
			continue
		}
		ep := p.newEndpoint(t, ip)
		t.endpoints[ip] = ep
		p.addMembersLocked(ep)
		added = append(added, ip)
	}
	for ip, ep := range t.endpoints {
		if want[ip] {
			continue
		}
		delete(t.endpoints, ip)
		for _, m := range ep.members {
			p.drainLocked(m)
		}
		removed = append(removed, ip)
	}
	if len(added)+len(removed) == 0 {
		return
	}
	slices.Sort(added)
	slices.Sort(removed)
	p.publishLocked()
	p.log.Info("backend addresses changed", zap.String("host", t.host),
		zap.Strings("added", added), zap.Strings("removed", removed))
}

// drainLocked takes m out of rotation (the caller publishes the new snapshot), waits for its in-flight
// requests (at most DrainTimeout) and then closes its connection.
func (p *Pool) drainLocked(m *Member) {
	p.draining[m] = struct{}{}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		ctx, cancel := context.WithTimeout(p.ctx, p.opts.DrainTimeout)
		_ = waitIdle(ctx, m.outstanding.Load)
		cancel()
		m.cancel()
		<-m.exited
		p.mu.Lock()
		delete(p.draining, m)
		p.mu.Unlock()
	}()
}

// sortedEndpoints returns t's endpoints ordered by IP (stable snapshots and Stats).
func sortedEndpoints(t *target) []*endpoint {
	eps := make([]*endpoint, 0, len(t.endpoints))
	for _, ep := range t.endpoints {
		eps = append(eps, ep)
	}
	sort.Slice(eps, func(i, j int) bool { return eps[i].ip < eps[j].ip })
	return eps
}

// wantedIPs normalises a DNS answer into the set of addresses to keep connections to. When the answer
// holds both IPv4 and IPv6 addresses only the IPv4 ones are kept: a dual-stack name lists every instance
// once per family ("localhost" -> 127.0.0.1 and ::1, a dual-stack headless service -> each pod twice), and
// connecting to both would double the connections to each instance (or leave the family the backend does
// not listen on failing forever).
func wantedIPs(ips []string) map[string]bool {
	want := make(map[string]bool, len(ips))
	v4 := false
	for _, ip := range ips {
		if parsed := net.ParseIP(ip); parsed != nil && parsed.To4() != nil {
			v4 = true
		}
	}
	for _, ip := range ips {
		parsed := net.ParseIP(ip)
		if parsed != nil {
			if v4 && parsed.To4() == nil {
				continue
			}
			ip = parsed.String()
		}
		if ip != "" {
			want[ip] = true
		}
	}
	return want
}
