package pool

import "time"

// Long-lived sessions (request-stream, request-channel, streams relayed for /rsocket clients) hold a
// connection for as long as they run, often idle. They are accounted apart from request-response in
// flight: they never count against max_inflight, so idle sessions cannot exhaust the slots short requests
// need. They still count as outstanding on their member (for P2C) and in InFlight (for drains).

// PickSession chooses a connection like Pick for a long-lived session, without taking a max_inflight
// slot. The caller must call DoneSession (not Done) on the returned Member exactly once.
func (p *Pool) PickSession() (*Member, error) {
	if p.closed.Load() {
		return nil, p.errClosed
	}
	m, err := p.choose()
	if err != nil {
		p.countPickError(err.(*PickError).Err)
		return nil, err
	}
	m.outstanding.Add(1)
	p.sessions.Add(1)
	return m, nil
}

// DoneSession ends a session picked with PickSession; start and err as for Done.
func (m *Member) DoneSession(start time.Time, err error) {
	m.pool.sessions.Add(-1)
	m.done(start, err)
}

// Sessions returns the number of sessions picked with PickSession and not yet done.
func (p *Pool) Sessions() int64 { return p.sessions.Load() }
