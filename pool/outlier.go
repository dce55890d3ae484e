package pool

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/frame"
)

// Outlier ejection (a backend's "outlier" section). Requests finished through Member.Done are counted per
// address (endpoint): a failure that says the instance is broken (the connection was lost, a transport
// error, a timeout; not an ERROR answer such as APPLICATION_ERROR, which Done gets as nil from the
// ingress, nor REJECTED, which is the backend shedding load, nor a cancellation) increments the address's
// run of consecutive failures, and any answered request ends the run. When the run reaches
// consecutive_failures, the address is ejected: Pick skips all its connections for ejection_time x n (n
// = the ejections in a row, at most 10), unless that would eject more than max_ejected_percent of the
// addresses. When the time is up, the address is half-open: the next Pick sends exactly one request there
// (the probe); an answer brings the address back, a failure ejects it again for longer.
//
// If every connection Pick could use is ejected, Pick uses ejected ones anyway (better a doubtful
// instance than none).

// Ejection states of an endpoint.
const (
	epHealthy int32 = iota
	epEjected       // skipped until its timer moves it to epProbe
	epProbe         // half-open: the next Pick takes one probe here
	epProbing       // the probe is in flight
)

// outlier is the ejection state of one endpoint (address).
type outlier struct {
	state     atomic.Int32
	fails     atomic.Int32 // consecutive failures
	ejections atomic.Int32 // ejections in a row (reset by a successful probe)
	total     atomic.Uint64
}

// maxEjectionFactor caps the growth of the ejection time.
const maxEjectionFactor = 10

// ejected reports whether Pick must skip the member's address (ejected, probing, or waiting for a probe).
func (m *Member) ejected() bool { return m.ep.out.state.Load() != epHealthy }

// healthFailure reports whether a request error counts against the instance for outlier ejection.
func healthFailure(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, rsocket.ErrCanceled) || errors.Is(err, rsocket.ErrNoLease) {
		return false
	}
	var re *rsocket.Error
	if errors.As(err, &re) && !errors.Is(err, rsocket.ErrClosed) {
		switch re.Code {
		case frame.CodeRejected, frame.CodeCanceled:
			return false // load shedding and cancellation say nothing about the instance's health
		}
	}
	return true
}

// recordOutcome updates the member's address after a request finished with err (as given to Done).
func (m *Member) recordOutcome(err error) {
	p := m.pool
	if p.outlierFailures <= 0 || m.ep == nil { // nil: a bare Member of a test
		return
	}
	o := &m.ep.out
	if m.probe.Load() && m.probe.CompareAndSwap(true, false) {
		switch {
		case err == nil:
			o.fails.Store(0)
			o.ejections.Store(0)
			o.state.Store(epHealthy)
			p.countRecovery()
		case healthFailure(err):
			p.eject(m.ep, true)
		default: // canceled, rejected: no verdict, probe again
			o.state.Store(epProbe)
			p.probes.Add(1)
		}
		return
	}
	if err == nil {
		if o.fails.Load() != 0 {
			o.fails.Store(0)
		}
		return
	}
	if !healthFailure(err) {
		return
	}
	if o.fails.Add(1) >= int32(p.outlierFailures) && o.state.Load() == epHealthy {
		p.eject(m.ep, false)
	}
}

// eject takes ep out of rotation unless the max_ejected_percent cap forbids it (a first ejection only: a
// failed probe always re-ejects its own address).
func (p *Pool) eject(ep *endpoint, again bool) {
	o := &ep.out
	if !again {
		n, ejected := p.endpointCounts()
		allowed := n * p.outlierMaxPercent / 100
		if allowed == 0 && n >= 2 && p.outlierMaxPercent > 0 {
			allowed = 1
		}
		if ejected >= allowed || !o.state.CompareAndSwap(epHealthy, epEjected) {
			return
		}
	} else {
		o.state.Store(epEjected)
	}
	o.fails.Store(0)
	k := min(o.ejections.Add(1), maxEjectionFactor)
	o.total.Add(1)
	p.countEjection()
	d := time.Duration(k) * p.outlierTime
	time.AfterFunc(d, func() {
		if o.state.CompareAndSwap(epEjected, epProbe) {
			p.probes.Add(1)
		}
	})
}

// endpointCounts counts the distinct endpoints of the current members and how many are not healthy.
func (p *Pool) endpointCounts() (n, ejected int) {
	var last *endpoint
	for _, m := range *p.members.Load() {
		if m.ep == last {
			continue
		}
		last = m.ep
		n++
		if last.out.state.Load() != epHealthy {
			ejected++
		}
	}
	return n, ejected
}

// pickProbe returns a ready member of an address waiting for its probe, with the probe claimed, or nil.
// It runs only while some address waits (p.probes > 0).
func (p *Pool) pickProbe() *Member {
	for _, m := range *p.members.Load() {
		o := &m.ep.out
		if o.state.Load() != epProbe {
			continue
		}
		if ok, _ := m.available(); !ok {
			continue
		}
		if o.state.CompareAndSwap(epProbe, epProbing) {
			p.probes.Add(-1)
			m.probe.Store(true)
			return m
		}
	}
	return nil
}
