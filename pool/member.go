package pool

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rsgate/rsgate/rsocket"
	"go.uber.org/zap"
)

// State is the life-cycle state of one connection slot.
type State int32

// Slot states. A slot cycles Connecting -> Ready -> Down -> Connecting ... until it is drained (its DNS
// record went away) or its pool closes.
const (
	StateIdle       State = iota // created, Start not called yet
	StateConnecting              // dialling and sending SETUP
	StateReady                   // connected; Pick may choose it (if it has a lease when leases are on)
	StateDown                    // the last dial failed or the connection was lost; waiting to retry
	StateDraining                // removed from the pool; closes when its in-flight requests are done
	StateClosed                  // finished
)

var stateNames = [...]string{"idle", "connecting", "ready", "down", "draining", "closed"}

func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// MarshalText writes the state's name (for /backends JSON).
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Member is one connection slot of a pool. Pick returns it with one in-flight slot reserved; Done releases
// the slot. A Member is long-lived and shared by all requests that go through its slot.
type Member struct {
	// Hot fields, touched by Pick and Done.
	state       atomic.Int32
	outstanding atomic.Int64
	costBits    atomic.Uint64 // peak EWMA latency in nanoseconds (float64 bits), as of stamp
	stamp       atomic.Int64  // pool clock (ns since the pool's epoch) of the last observation
	conn        atomic.Pointer[rsocket.Conn]
	pool        *Pool
	quant       quantiles   // weighted balancer's latency sketch and success average (weighted.go)
	probe       atomic.Bool // this member carries its address's outlier probe (outlier.go)

	mu sync.Mutex // serialises EWMA updates; also guards lastErr and since

	ep   *endpoint
	slot int

	reconnects   atomic.Uint64 // successful connects after the first one
	dialFailures atomic.Uint64
	errors       atomic.Uint64 // requests finished with a non-nil error
	nextAttempt  atomic.Int64  // pool clock of the next dial attempt while down
	refused      atomic.Uint32 // frame.ErrorCode of the SETUP refusal that ended the last connection; 0: none
	lastErr      string
	since        time.Time // last state change

	cancel context.CancelFunc
	exited chan struct{}
	_      [64]byte // keep the next member's hot fields off this member's cache lines
}

// Conn returns the slot's RSocket connection: the one that was ready when Pick chose this member (or the one
// that replaced it after a reconnect). Requests on a connection that has since been lost fail with the
// rsocket core's connection error.
func (m *Member) Conn() *rsocket.Conn { return m.conn.Load() }

// Addr returns the address the slot dials: "ip:port" or "host:port" for tcp, a ws:// or wss:// URL for
// websocket.
func (m *Member) Addr() string { return m.ep.dialAddr }

// Slot returns the member's index among the connections to its address (the "slot" of /backends).
func (m *Member) Slot() int { return m.slot }

// Backend returns the name of the member's pool.
func (m *Member) Backend() string { return m.pool.name }

// Pool is the pool m belongs to (the one to pick another member from, e.g. for a retry).
func (m *Member) Pool() *Pool { return m.pool }

// State returns the slot's current state.
func (m *Member) State() State { return State(m.state.Load()) }

// InFlight returns the requests picked on this member and not yet Done.
func (m *Member) InFlight() int64 { return m.outstanding.Load() }

// Done releases the in-flight slot reserved by Pick and feeds the latency since start into the member's
// EWMA. Call it exactly once per successful Pick, with the time the request was started and its outcome.
// Cancellations (context.Canceled, rsocket.ErrCanceled) say nothing about the backend's speed and are not
// measured; other errors count as at least the current cost, so a backend that fails fast does not attract
// more traffic. Done does not allocate.
func (m *Member) Done(start time.Time, err error) {
	if m.pool.maxInflight > 0 {
		m.pool.inflight.Add(-1)
	}
	m.done(start, err)
}

// done is Done without the max_inflight slot (shared with DoneSession, session.go).
func (m *Member) done(start time.Time, err error) {
	m.outstanding.Add(-1)
	p := m.pool
	if err != nil {
		m.errors.Add(1)
		if errors.Is(err, context.Canceled) || errors.Is(err, rsocket.ErrCanceled) {
			m.recordOutcome(err)
			return
		}
	}
	t := p.now()
	rtt := float64(t.Sub(start))
	if rtt < 0 {
		rtt = 0
	}
	m.observe(int64(t.Sub(p.epoch)), rtt, err != nil)
	m.recordOutcome(err)
}

// observe folds one latency sample into the peak EWMA: a sample above the current cost replaces it at once
// (peak sensitivity), lower samples are averaged in with weight 1-exp(-dt/tau), dt being the time since the
// previous sample. A failed request faster than the estimate leaves the estimate where it is.
//
// Every request of a member ends here, from whatever core served it, so the lock is contended when many
// cores serve one connection. A sample that finds the lock taken is dropped unless it is a new peak:
// another sample is being folded in at this instant, so dt is about 0 and a lower sample's weight 1-w (in
// the estimate and in the success average) is about 0 as well; only a peak would change the estimate, and
// a peak waits for the lock. Whether a sample is dropped does not depend on its outcome, so the success
// average stays unbiased (outlier ejection counts outcomes apart, in recordOutcome).
func (m *Member) observe(now int64, rtt float64, failed bool) {
	tau := m.pool.tau
	if !m.mu.TryLock() {
		if rtt <= math.Float64frombits(m.costBits.Load()) {
			return
		}
		m.mu.Lock()
	}
	cost := math.Float64frombits(m.costBits.Load())
	dt := now - m.stamp.Load()
	if dt < 0 {
		dt = 0
	}
	w := math.Exp(-float64(dt) / tau)
	switch {
	case failed && rtt <= cost*w:
		cost *= w // a fast failure keeps the (decayed) estimate instead of lowering it
	case rtt > cost:
		cost = rtt
	default:
		cost = cost*w + rtt*(1-w)
	}
	m.costBits.Store(math.Float64bits(cost))
	m.quant.observe(rtt, failed, w)
	m.stamp.Store(now)
	m.mu.Unlock()
}

// penalty is the base load of a member that has requests outstanding but no latency sample yet (Finagle's
// convention): we do not know how slow it is, so prefer members we know about. 2^46 ns (about 19.5 hours)
// is above any real latency x outstanding product, and small enough that penalty + outstanding is exact in
// a float64 (so busy unmeasured members still compare by their outstanding count).
const penalty = 1 << 46

// ewma returns the latency estimate decayed to pool clock now, in nanoseconds. For a now before the
// member's last sample the estimate is returned undecayed.
func (m *Member) ewma(now int64) float64 {
	c := math.Float64frombits(m.costBits.Load())
	if c == 0 {
		return 0
	}
	if dt := now - m.stamp.Load(); dt > 0 {
		c *= math.Exp(-float64(dt) / m.pool.tau)
	}
	return c
}

// load is the balancing cost at pool clock now: EWMA latency x (outstanding + 1).
func (m *Member) load(now int64) float64 {
	out := m.outstanding.Load()
	c := m.ewma(now)
	if c == 0 && out > 0 {
		return penalty + float64(out)
	}
	return c * float64(out+1)
}

// available reports whether Pick may choose the member: ready and, when the backend uses leases, holding
// one. ready is true when the member is connected (whatever its lease).
func (m *Member) available() (ok, ready bool) {
	if State(m.state.Load()) != StateReady {
		return false, false
	}
	c := m.conn.Load()
	if c == nil {
		return false, false
	}
	return c.LeaseAvailable(), true
}

func (m *Member) setState(s State, err error) {
	m.mu.Lock()
	m.state.Store(int32(s))
	m.since = m.pool.now()
	if err != nil {
		m.lastErr = err.Error()
	}
	m.mu.Unlock()
}

// run keeps the slot connected until ctx ends.
func (m *Member) run(ctx context.Context) {
	defer close(m.exited)
	p := m.pool
	log := p.log.With(zap.String("addr", m.ep.dialAddr), zap.Int("slot", m.slot))
	var (
		attempt   int
		delay     time.Duration
		connected bool
	)
	for {
		if delay > 0 {
			if !sleep(ctx, delay) {
				break
			}
		}
		if ctx.Err() != nil {
			break
		}
		m.setState(StateConnecting, nil)
		conn, err := p.connect(ctx, m.ep)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			m.dialFailures.Add(1)
			m.refused.Store(0) // not reachable: a plain "no connection"
			p.countDialFailure()
			attempt++
			delay = p.backoff(attempt)
			m.nextAttempt.Store(int64(p.now().Sub(p.epoch) + delay))
			m.setState(StateDown, err)
			log.Warn("backend connect failed", zap.Error(err), zap.Int("attempt", attempt), zap.Duration("retry_in", delay))
			continue
		}
		m.mu.Lock()
		m.quant.reset() // a new connection starts with the startup penalty
		m.mu.Unlock()
		m.conn.Store(conn)
		if connected {
			m.reconnects.Add(1)
			p.countReconnect()
		}
		connected = true
		up := p.now()
		m.setState(StateReady, nil)
		log.Info("backend connected")
		select {
		case <-conn.Done():
		case <-ctx.Done():
			_ = conn.Close()
			<-conn.Done()
		}
		if ctx.Err() != nil {
			break
		}
		// A connection that stayed up for a while resets the backoff; one that dies right after SETUP (a
		// rejecting or crashing backend) keeps growing it.
		if p.now().Sub(up) >= p.maxBackoff {
			attempt = 0
		}
		attempt++
		delay = p.backoff(attempt)
		m.nextAttempt.Store(int64(p.now().Sub(p.epoch) + delay))
		cerr := conn.Err()
		if cerr == nil {
			cerr = errConnectionEnded
		}
		m.refused.Store(uint32(setupRefusal(cerr)))
		m.setState(StateDown, cerr)
		log.Warn("backend connection lost", zap.Error(cerr), zap.Duration("retry_in", delay))
	}
	m.setState(StateClosed, nil)
}

var errConnectionEnded = errors.New("connection ended")

// sleep waits d or until ctx ends; it reports whether the whole d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
