package pool

// PickOther is Pick for a retry or a hedge: it prefers a connection to another address than avoid's (a
// different instance), then another connection than avoid, and settles for whatever Pick returns after
// three tries. avoid may be nil (plain Pick). The same rules as Pick apply: call Done exactly once on the
// result.
func (p *Pool) PickOther(avoid *Member) (*Member, error) {
	m, err := p.Pick()
	if err != nil || avoid == nil {
		return m, err
	}
	var fallback *Member // a different connection to the same address
	for try := 0; try < 3 && m.ep == avoid.ep; try++ {
		if m != avoid && fallback == nil {
			fallback = m
		} else {
			m.release()
		}
		if m, err = p.Pick(); err != nil {
			if fallback != nil {
				return fallback, nil
			}
			return nil, err
		}
	}
	if fallback != nil {
		if m == avoid {
			m.release()
			return fallback, nil
		}
		fallback.release() // also when fallback == m: each Pick holds its own reservation
	}
	return m, nil
}

// release gives back a reservation made by Pick without a request (no latency sample, no outcome).
func (m *Member) release() {
	m.outstanding.Add(-1)
	if m.pool.maxInflight > 0 {
		m.pool.inflight.Add(-1)
	}
	if m.probe.Load() && m.probe.CompareAndSwap(true, false) {
		m.ep.out.state.Store(epProbe) // the probe was not sent: the next Pick takes it
		m.pool.probes.Add(1)
	}
}
