package pool

// PickOther is Pick for a retry or a hedge: it chooses among the usable connections to other addresses
// than avoid's (another instance), with the pool's balancer over two random ones, and falls back to Pick
// when there is none (then the result may be avoid itself). avoid may be nil (plain Pick). The same rules
// as Pick apply: call Done exactly once on the result.
func (p *Pool) PickOther(avoid *Member) (*Member, error) {
	if avoid == nil || p.closed.Load() {
		return p.Pick()
	}
	if p.maxInflight > 0 && p.inflight.Add(1) > p.maxInflight {
		p.inflight.Add(-1)
		p.countPickError(ErrOverloaded)
		return nil, p.errOverloaded
	}
	m := p.chooseAway(avoid.ep)
	if m == nil {
		if p.maxInflight > 0 {
			p.inflight.Add(-1)
		}
		return p.Pick()
	}
	m.outstanding.Add(1)
	return m, nil
}

// chooseAway draws two members uniformly among the usable ones (not ejected) of addresses other than ep
// and returns the better one; nil when there is none.
func (p *Pool) chooseAway(ep *endpoint) *Member {
	ms := *p.members.Load()
	n := 0
	var only *Member
	for _, m := range ms {
		if m.ep != ep && m.usable() {
			n++
			only = m
		}
	}
	if n <= 1 {
		return only
	}
	x, y := drawTwo(n)
	var a, b *Member
	k := 0
	for _, m := range ms {
		if m.ep == ep || !m.usable() {
			continue
		}
		if k == x {
			a = m
		} else if k == y {
			b = m
		}
		k++
	}
	switch {
	case a != nil && b != nil:
		return p.compare(a, b)
	case a != nil:
		return a
	case b != nil:
		return b
	}
	return only // usability changed between the passes
}
