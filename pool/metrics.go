package pool

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
)

// Metrics registered per backend on Options.Metrics (label backend="<name>"):
//
//	rsgate_backend_connections            gauge    connections ready
//	rsgate_backend_inflight               gauge    requests picked and not yet Done
//	rsgate_backend_ewma_latency_seconds   gauge    mean decayed peak-EWMA latency of the ready connections
//	rsgate_backend_reconnects_total       counter  successful reconnects
//	rsgate_backend_dial_errors_total      counter  failed dials / SETUPs
//	rsgate_backend_pick_errors_total      counter  Pick failures, label reason=overloaded|no_connection|no_lease
//	rsgate_backend_ejections_total        counter  addresses ejected by outlier detection (outlier.go)
//	rsgate_backend_ejection_recoveries_total counter ejected addresses brought back by a successful probe
//	rsgate_backend_ejected                gauge    addresses currently ejected (or waiting for their probe)
//	rsgate_backend_lease_available        gauge    requests the backend's current leases still allow, summed
//	                                               over its ready connections (only for lease: true backends;
//	                                               registered when a pool with leases first takes the series)
//
// The names belong to the backend, not to one Pool: when Group.Update replaces a backend's pool, the new
// pool takes the series over (counters keep counting) and the old one leaves them alone when it closes.
// A pool that closes while it still owns its series unregisters them.
type metricsEntry struct {
	set          *metrics.Set
	label        string // backend="<name>"
	cur          atomic.Pointer[Pool]
	names        []string
	reconnects   *metrics.Counter
	dialErrors   *metrics.Counter
	overloaded   *metrics.Counter
	noConnection *metrics.Counter
	noLease      *metrics.Counter
	ejections    *metrics.Counter
	recoveries   *metrics.Counter
	lease        bool // rsgate_backend_lease_available is registered
}

type metricsKey struct {
	set     *metrics.Set
	backend string
}

var registry struct {
	mu      sync.Mutex
	entries map[metricsKey]*metricsEntry
}

func (p *Pool) registerMetrics() {
	set := p.opts.Metrics
	if set == nil {
		return
	}
	key := metricsKey{set, p.name}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	e := registry.entries[key]
	if e == nil {
		e = newMetricsEntry(set, p.name)
		if registry.entries == nil {
			registry.entries = map[metricsKey]*metricsEntry{}
		}
		registry.entries[key] = e
	}
	if p.backend.Lease && !e.lease {
		e.lease = true
		set.NewGauge(e.name("rsgate_backend_lease_available", ""), func() float64 {
			if p := e.cur.Load(); p != nil {
				return float64(p.leaseLeft())
			}
			return 0
		})
	}
	e.cur.Store(p)
	p.metrics.Store(e)
}

func (p *Pool) unregisterMetrics() {
	e := p.metrics.Load()
	if e == nil {
		return
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if e.cur.Load() != p {
		return // taken over by a newer pool of the same backend
	}
	for _, n := range e.names {
		e.set.UnregisterMetric(n)
	}
	delete(registry.entries, metricsKey{e.set, p.name})
}

func newMetricsEntry(set *metrics.Set, backend string) *metricsEntry {
	e := &metricsEntry{set: set, label: `backend=` + strconv.Quote(backend)}
	name := e.name
	gauge := func(metric string, f func(p *Pool) float64) {
		set.NewGauge(name(metric, ""), func() float64 {
			if p := e.cur.Load(); p != nil {
				return f(p)
			}
			return 0
		})
	}
	gauge("rsgate_backend_connections", func(p *Pool) float64 { return float64(p.readyCount()) })
	gauge("rsgate_backend_inflight", func(p *Pool) float64 { return float64(p.InFlight()) })
	gauge("rsgate_backend_ewma_latency_seconds", func(p *Pool) float64 { return p.meanEWMA().Seconds() })
	e.reconnects = set.NewCounter(name("rsgate_backend_reconnects_total", ""))
	e.dialErrors = set.NewCounter(name("rsgate_backend_dial_errors_total", ""))
	e.overloaded = set.NewCounter(name("rsgate_backend_pick_errors_total", `,reason="overloaded"`))
	e.noConnection = set.NewCounter(name("rsgate_backend_pick_errors_total", `,reason="no_connection"`))
	e.noLease = set.NewCounter(name("rsgate_backend_pick_errors_total", `,reason="no_lease"`))
	e.ejections = set.NewCounter(name("rsgate_backend_ejections_total", ""))
	e.recoveries = set.NewCounter(name("rsgate_backend_ejection_recoveries_total", ""))
	gauge("rsgate_backend_ejected", func(p *Pool) float64 { _, n := p.endpointCounts(); return float64(n) })
	return e
}

// name returns the series name of metric with the backend label (and extra labels, ",k=\"v\"") and
// records it for unregisterMetrics.
func (e *metricsEntry) name(metric, extra string) string {
	n := metric + "{" + e.label + extra + "}"
	e.names = append(e.names, n)
	return n
}

func (p *Pool) countReconnect() {
	if e := p.metrics.Load(); e != nil {
		e.reconnects.Inc()
	}
}

func (p *Pool) countEjection() {
	if e := p.metrics.Load(); e != nil {
		e.ejections.Inc()
	}
}

func (p *Pool) countRecovery() {
	if e := p.metrics.Load(); e != nil {
		e.recoveries.Inc()
	}
}

func (p *Pool) countDialFailure() {
	if e := p.metrics.Load(); e != nil {
		e.dialErrors.Inc()
	}
}

func (p *Pool) countPickError(kind error) {
	e := p.metrics.Load()
	if e == nil {
		return
	}
	switch {
	case errors.Is(kind, ErrOverloaded):
		e.overloaded.Inc()
	case errors.Is(kind, ErrNoConnection), errors.Is(kind, ErrSetupRefused):
		e.noConnection.Inc()
	case errors.Is(kind, ErrNoLease):
		e.noLease.Inc()
	}
}

// leaseLeft sums, over the ready connections, the requests their peers' current leases still allow.
func (p *Pool) leaseLeft() uint64 {
	var n uint64
	for _, m := range *p.members.Load() {
		if _, ready := m.available(); !ready {
			continue
		}
		if c := m.conn.Load(); c != nil {
			left, _ := c.LeaseLeft()
			n += uint64(left)
		}
	}
	return n
}

func (p *Pool) readyCount() int {
	n := 0
	for _, m := range *p.members.Load() {
		if _, ready := m.available(); ready {
			n++
		}
	}
	return n
}
