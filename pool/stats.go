package pool

import (
	"sort"
	"time"
)

// Stats is a point-in-time view of a pool for /readyz, /backends and logs.
type Stats struct {
	Backend     string      `json:"backend"`
	Transport   string      `json:"transport"`
	Ready       bool        `json:"ready"`             // at least one connection ready
	ReadyConns  int         `json:"ready_connections"` // connections ready (leases aside)
	InFlight    int64       `json:"inflight"`          // requests picked and not yet Done
	MaxInflight int         `json:"max_inflight"`      // 0 = unlimited
	Reconnects  uint64      `json:"reconnects"`        // sum over the slots
	Conns       []ConnStats `json:"connections"`
}

// ConnStats describes one connection slot.
type ConnStats struct {
	Address      string        `json:"address"` // the configured address
	Addr         string        `json:"addr"`    // what the slot dials (a resolved IP for DNS names)
	Slot         int           `json:"slot"`
	State        State         `json:"state"`
	Since        time.Time     `json:"since"` // last state change
	InFlight     int64         `json:"inflight"`
	EWMA         time.Duration `json:"ewma_ns"`    // decayed peak-EWMA latency; 0 = no sample yet
	Lease        bool          `json:"lease"`      // ready and a request may be sent under the lease rules
	Ejected      bool          `json:"ejected"`    // its address is ejected by outlier detection (or half-open)
	Reconnects   uint64        `json:"reconnects"` // connections made after the first (also ones refused at SETUP)
	DialFailures uint64        `json:"dial_failures"`
	Errors       uint64        `json:"errors"` // requests that finished with an error
	LastError    string        `json:"last_error,omitempty"`
}

// Stats returns the pool's current state. It allocates; do not call it per request.
func (p *Pool) Stats() Stats {
	now := int64(p.now().Sub(p.epoch))
	s := Stats{
		Backend:     p.name,
		Transport:   p.backend.Transport,
		MaxInflight: p.backend.MaxInflight,
		InFlight:    p.InFlight(),
	}
	add := func(m *Member, draining bool) {
		ok, ready := m.available()
		m.mu.Lock()
		cs := ConnStats{
			Address:      m.ep.target.address,
			Addr:         m.ep.dialAddr,
			Slot:         m.slot,
			State:        m.State(),
			Since:        m.since,
			InFlight:     m.outstanding.Load(),
			EWMA:         time.Duration(m.ewma(now)),
			Lease:        ok,
			Ejected:      m.ejected(),
			Reconnects:   m.reconnects.Load(),
			DialFailures: m.dialFailures.Load(),
			Errors:       m.errors.Load(),
			LastError:    m.lastErr,
		}
		m.mu.Unlock()
		if draining && cs.State != StateClosed {
			cs.State = StateDraining
		} else if ready && !p.closed.Load() {
			s.ReadyConns++
		}
		s.Reconnects += cs.Reconnects
		s.Conns = append(s.Conns, cs)
	}
	for _, m := range *p.members.Load() {
		add(m, false)
	}
	p.mu.Lock()
	var draining []*Member
	for m := range p.draining {
		draining = append(draining, m)
	}
	p.mu.Unlock()
	sort.Slice(draining, func(i, j int) bool {
		a, b := draining[i], draining[j]
		return a.ep.dialAddr < b.ep.dialAddr || a.ep.dialAddr == b.ep.dialAddr && a.slot < b.slot
	})
	for _, m := range draining {
		add(m, true)
	}
	s.Ready = s.ReadyConns > 0
	return s
}

// meanEWMA is the mean decayed latency estimate over the ready connections (0 when none is ready).
func (p *Pool) meanEWMA() time.Duration {
	now := int64(p.now().Sub(p.epoch))
	var sum float64
	n := 0
	for _, m := range *p.members.Load() {
		if _, ready := m.available(); ready {
			sum += m.ewma(now)
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return time.Duration(sum / float64(n))
}
