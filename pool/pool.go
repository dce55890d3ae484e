package pool

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/frame"
	"github.com/rsgate/rsgate/rsocket/transport"
	"go.uber.org/zap"
)

// Options are the process-wide settings shared by pools. Every field is optional.
type Options struct {
	// Logger receives connection life-cycle events (connected, lost, dial failures, DNS changes).
	// Default: no logging.
	Logger *zap.Logger
	// Dialer replaces the transport dial (tests). addr is the slot's dial address: "ip:port"/"host:port"
	// for tcp, a ws:// or wss:// URL for websocket. Default: transport.DialTCP / transport.DialWebSocket
	// with the backend's TLS settings.
	Dialer func(ctx context.Context, addr string) (transport.Conn, error)
	// Resolver looks up the addresses of a host name (re-resolution every resolve_interval). It returns
	// IP addresses. Default: net.DefaultResolver.LookupHost.
	Resolver func(ctx context.Context, host string) ([]string, error)
	// Now is the clock (tests): latency decay, and lease expiry on the connections. Default: time.Now.
	Now func() time.Time
	// Metrics is the set the per-backend metrics are registered on (rsgate_backend_*{backend="name"}).
	// Default: no metrics.
	Metrics *metrics.Set
	// Handler serves requests the backend sends to the gateway over a pool connection. Default: nil,
	// the rsocket core answers them REJECTED.
	Handler rsocket.Handler
	// DecayTime is the time constant tau of the peak EWMA: a sample's weight falls to 1/e after tau
	// (half-life tau x ln 2). Default 10s (Finagle's default).
	DecayTime time.Duration
	// DrainTimeout bounds how long a slot removed by DNS re-resolution (or a pool replaced by
	// Group.Update) waits for its in-flight requests before its connection is closed. Default 30s.
	DrainTimeout time.Duration
}

// Defaults for Options and for backends built in Go without mapping's defaults.
const (
	DefaultDecayTime    = 10 * time.Second
	DefaultDrainTimeout = 30 * time.Second
)

// Pool is the set of connections to one backend. All methods are safe for concurrent use.
type Pool struct {
	// Hot, read-only after New.
	name        string
	maxInflight int64
	tau         float64 // ns
	now         func() time.Time
	epoch       time.Time

	weighted          bool          // balancer: weighted (weighted.go); else p2c
	outlierFailures   int           // outlier.consecutive_failures; 0 = no ejection (outlier.go)
	outlierMaxPercent int           // outlier.max_ejected_percent
	outlierTime       time.Duration // outlier.ejection_time
	probes            atomic.Int32  // addresses waiting for their outlier probe

	members atomic.Pointer[[]*Member]
	closed  atomic.Bool // Pick refuses (Close or Shutdown began)
	metrics atomic.Pointer[metricsEntry]

	// Written by every Pick and Done (inflight) or session pick: on cache lines of their own, so that
	// these writes do not evict the read-only fields above from the other cores' caches.
	_        [64]byte
	inflight atomic.Int64 // only maintained when maxInflight > 0
	sessions atomic.Int64 // PickSession picks not yet done (session.go)
	_        [64]byte

	errNoConn, errOverloaded, errNoLease, errClosed *PickError
	errRefused                                      [3]*PickError // INVALID_SETUP, UNSUPPORTED_SETUP, REJECTED_SETUP

	backend    mapping.Backend // private copy
	opts       Options
	log        *zap.Logger
	websocket  bool
	tls        *tls.Config // base client TLS config, nil = plain
	minBackoff time.Duration
	maxBackoff time.Duration
	rsOpts     rsocket.Options

	mu       sync.Mutex // guards the fields below
	started  bool
	shut     bool // Close ran
	ctx      context.Context
	cancel   context.CancelFunc
	targets  []*target
	draining map[*Member]struct{}
	wg       sync.WaitGroup
}

// target is one configured address.
type target struct {
	address   string   // as configured
	host      string   // host name or IP literal
	port      string   // port (websocket: explicit or the scheme's default)
	url       *url.URL // websocket only
	dynamic   bool     // host is a name, re-resolved every resolve_interval
	endpoints map[string]*endpoint
}

// endpoint is one dial address of a target: the target itself, or one resolved IP of it.
type endpoint struct {
	target   *target
	ip       string // "" when the target is dialled as configured
	dialAddr string
	tls      *tls.Config
	header   http.Header // websocket: Host header when dialling a resolved IP
	members  []*Member
	out      outlier // ejection state (outlier.go)
}

// New validates b and builds its pool. It does not dial: call Start. b is copied. b holds its effective
// values, as mapping's Parse and Validate leave them (backends built in Go start from mapping.NewBackend);
// New checks it with mapping.CheckBackend, the rules `gateway -check` applies, and does not fill defaults
// of its own. Backends with transport "http" are rejected with an error matching ErrUnsupportedTransport
// (the legacy-REST kind is served elsewhere).
func New(b *mapping.Backend, opts Options) (*Pool, error) {
	if b == nil {
		return nil, &ConfigError{Field: "backend", Err: errors.New("nil backend")}
	}
	bk := *b
	cfgErr := func(field string, err error) error { return &ConfigError{Backend: bk.Name, Field: field, Err: err} }
	if bk.Transport == mapping.TransportHTTP {
		return nil, cfgErr("transport", fmt.Errorf("%w %q", ErrUnsupportedTransport, bk.Transport))
	}
	if err := mapping.CheckBackend(bk.Name, &bk); err != nil {
		field := "backend"
		var ce *mapping.ConfigError
		if errors.As(err, &ce) && len(ce.Errors) > 0 {
			field = strings.TrimPrefix(ce.Errors[0].Field, "backends."+bk.Name+".")
		}
		return nil, cfgErr(field, err)
	}
	bk.Addresses = append([]string(nil), bk.Addresses...)

	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Resolver == nil {
		opts.Resolver = net.DefaultResolver.LookupHost
	}
	if opts.DecayTime <= 0 {
		opts.DecayTime = DefaultDecayTime
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = DefaultDrainTimeout
	}
	tlsCfg, err := TLSConfig(bk.TLS)
	if err != nil {
		return nil, cfgErr("tls", err)
	}
	p := &Pool{
		name:        bk.Name,
		maxInflight: int64(bk.MaxInflight),
		tau:         float64(opts.DecayTime),
		now:         opts.Now,
		epoch:       opts.Now(),
		backend:     bk,
		opts:        opts,
		log:         opts.Logger.With(zap.String("backend", bk.Name)),
		websocket:   bk.Transport == mapping.TransportWebSocket,
		tls:         tlsCfg,
		minBackoff:  bk.Reconnect.MinBackoff.D(),
		maxBackoff:  bk.Reconnect.MaxBackoff.D(),
		draining:    map[*Member]struct{}{},

		weighted:          bk.Balancer != mapping.BalancerP2C,
		outlierFailures:   bk.Outlier.ConsecutiveFailures,
		outlierMaxPercent: bk.Outlier.MaxEjectedPercent,
		outlierTime:       bk.Outlier.EjectionTime.D(),
	}
	p.errNoConn = newPickError(bk.Name, ErrNoConnection)
	p.errRefused = [3]*PickError{
		newRefusedError(bk.Name, frame.CodeInvalidSetup),
		newRefusedError(bk.Name, frame.CodeUnsupportedSetup),
		newRefusedError(bk.Name, frame.CodeRejectedSetup),
	}
	p.errOverloaded = newPickError(bk.Name, ErrOverloaded)
	p.errNoLease = newPickError(bk.Name, ErrNoLease)
	p.errClosed = newPickError(bk.Name, ErrClosed)
	p.rsOpts = rsocket.Options{
		KeepaliveInterval: bk.Keepalive.D(),
		MaxLifetime:       bk.MaxLifetime.D(),
		MetadataMIME:      bk.MetadataMIME,
		DataMIME:          bk.DataMIME,
		Lease:             bk.Lease,
		MTU:               bk.MTU,
		Handler:           opts.Handler,
		Logger:            p.log,
		Now:               opts.Now, // lease expiry on the pool's clock (nil: time.Now)
	}
	if s := bk.Setup; s != nil {
		if s.Metadata != "" {
			p.rsOpts.SetupPayload.Metadata = []byte(s.Metadata)
		}
		p.rsOpts.SetupPayload.Data = []byte(s.Data)
	}
	for _, a := range bk.Addresses {
		t, err := p.parseAddress(a)
		if err != nil {
			return nil, cfgErr("addresses", err)
		}
		p.targets = append(p.targets, t)
	}
	empty := []*Member{}
	p.members.Store(&empty)
	return p, nil
}

func (p *Pool) parseAddress(a string) (*target, error) {
	t := &target{address: a, endpoints: map[string]*endpoint{}}
	if p.websocket {
		u, err := url.Parse(a)
		if err != nil {
			return nil, fmt.Errorf("address %q: %w", a, err)
		}
		switch u.Scheme {
		case "ws":
		case "wss":
			if p.tls == nil {
				p.tls = &tls.Config{MinVersion: tls.VersionTLS12}
			}
		default:
			return nil, fmt.Errorf("address %q: websocket addresses are ws:// or wss:// URLs", a)
		}
		if u.Host == "" {
			return nil, fmt.Errorf("address %q: no host", a)
		}
		t.url, t.host, t.port = u, u.Hostname(), u.Port()
		if t.port == "" {
			t.port = map[string]string{"ws": "80", "wss": "443"}[u.Scheme]
		}
	} else {
		if strings.Contains(a, "://") {
			return nil, fmt.Errorf("address %q: tcp addresses are host:port", a)
		}
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			return nil, fmt.Errorf("address %q: %w", a, err)
		}
		t.host, t.port = host, port
	}
	if t.host == "" {
		return nil, fmt.Errorf("address %q: no host", a)
	}
	t.dynamic = net.ParseIP(t.host) == nil && p.backend.ResolveInterval > 0
	return t, nil
}

// newEndpoint builds the dial address of target t, dialled at ip ("" = as configured).
func (p *Pool) newEndpoint(t *target, ip string) *endpoint {
	ep := &endpoint{target: t, ip: ip, dialAddr: t.address, tls: p.tls}
	if ip == "" {
		return ep
	}
	hostport := net.JoinHostPort(ip, t.port)
	if t.url != nil {
		u := *t.url
		u.Host = hostport
		ep.dialAddr = u.String()
		ep.header = http.Header{"Host": []string{t.url.Host}}
	} else {
		ep.dialAddr = hostport
	}
	if p.tls != nil && p.tls.ServerName == "" {
		// Verify the certificate against the configured name, not the IP we dial.
		c := p.tls.Clone()
		c.ServerName = t.host
		ep.tls = c
	}
	return ep
}

// Name returns the backend name.
func (p *Pool) Name() string { return p.name }

// Backend returns the (defaulted) configuration the pool was built from. Do not modify it.
func (p *Pool) Backend() *mapping.Backend { return &p.backend }

// Start dials `connections` connections per address in the background and keeps them up until Close.
// Calling it again, or after Close, does nothing.
func (p *Pool) Start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started || p.shut {
		return
	}
	p.started = true
	p.ctx, p.cancel = context.WithCancel(context.Background())
	dynamic := false
	for _, t := range p.targets {
		if t.dynamic {
			dynamic = true
			continue
		}
		ep := p.newEndpoint(t, "")
		t.endpoints[""] = ep
		p.addMembersLocked(ep)
	}
	p.publishLocked()
	p.registerMetrics()
	if dynamic {
		p.wg.Add(1)
		go p.resolveLoop(p.ctx)
	}
}

func (p *Pool) addMembersLocked(ep *endpoint) {
	for i := 0; i < p.backend.Connections; i++ {
		ctx, cancel := context.WithCancel(p.ctx)
		m := &Member{pool: p, ep: ep, slot: i, cancel: cancel, exited: make(chan struct{}), since: p.now()}
		ep.members = append(ep.members, m)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			m.run(ctx)
		}()
	}
}

// publishLocked stores a fresh snapshot of the members Pick may choose from.
func (p *Pool) publishLocked() {
	var list []*Member
	for _, t := range p.targets {
		for _, ep := range sortedEndpoints(t) {
			list = append(list, ep.members...)
		}
	}
	if list == nil {
		list = []*Member{}
	}
	p.members.Store(&list)
}

// Close stops reconnecting and closes every connection; their in-flight streams fail. It waits for the
// slot goroutines to finish. Pick returns ErrClosed afterwards.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed.Store(true)
	if p.shut {
		p.mu.Unlock()
		return nil
	}
	p.shut = true
	if p.cancel != nil {
		p.cancel()
	}
	p.mu.Unlock()
	p.wg.Wait()
	p.unregisterMetrics()
	return nil
}

// Shutdown stops new picks (they get ErrClosed), waits until the requests in flight are Done or ctx ends,
// then closes the pool. It returns ctx.Err() when it had to cut requests off.
func (p *Pool) Shutdown(ctx context.Context) error {
	p.closed.Store(true)
	err := waitIdle(ctx, p.InFlight)
	_ = p.Close()
	return err
}

// InFlight returns the number of requests picked and not yet Done (including on drained slots).
func (p *Pool) InFlight() int64 {
	if p.maxInflight > 0 {
		return p.inflight.Load() + p.sessions.Load()
	}
	var n int64
	for _, m := range *p.members.Load() {
		n += m.outstanding.Load()
	}
	p.mu.Lock()
	for m := range p.draining {
		n += m.outstanding.Load()
	}
	p.mu.Unlock()
	return n
}

// Pick chooses a connection by power of two choices over EWMA latency x (outstanding + 1), skipping slots
// that are not ready or whose connection has no lease, and reserves one in-flight slot on it. The caller
// must call Done on the returned Member exactly once. Errors (all *PickError, no allocation) match
// ErrOverloaded (max_inflight reached), ErrNoConnection (nothing ready), ErrNoLease (ready connections
// without lease) or ErrClosed; RetryAfter gives the hint for the Retry-After header.
func (p *Pool) Pick() (*Member, error) {
	// The slot is counted before closed is read: a Shutdown that sets closed and then finds no request in
	// flight cannot miss this one (reload drains, group.go).
	if p.maxInflight > 0 && p.inflight.Add(1) > p.maxInflight {
		p.inflight.Add(-1)
		p.countPickError(ErrOverloaded)
		return nil, p.errOverloaded
	}
	if p.closed.Load() {
		if p.maxInflight > 0 {
			p.inflight.Add(-1)
		}
		return nil, p.errClosed
	}
	var (
		m   *Member
		err error
	)
	if p.probes.Load() > 0 {
		m = p.pickProbe()
	}
	if m == nil {
		m, err = p.choose()
	}
	if err != nil {
		if p.maxInflight > 0 {
			p.inflight.Add(-1)
		}
		p.countPickError(err.(*PickError).Err)
		return nil, err
	}
	m.outstanding.Add(1)
	return m, nil
}

func (p *Pool) choose() (*Member, error) {
	ms := *p.members.Load()
	n := len(ms)
	if n == 0 {
		return nil, p.noConnection(ms)
	}
	if n == 1 {
		m := ms[0]
		if ok, ready := m.available(); !ok {
			if ready {
				return nil, p.errNoLease
			}
			return nil, p.noConnection(ms)
		}
		return m, nil
	}
	i, j := drawTwo(n)
	a, b := ms[i], ms[j]
	if a.usable() && b.usable() {
		w := p.compare(a, b)
		if p.weighted && a.ep == b.ep && n > p.backend.Connections {
			// Both draws hit one address: the winner also meets a slot of the next address, so that a
			// slow instance does not win just because it was the only one drawn (members are grouped by
			// address, `connections` each).
			if c := ms[(j+p.backend.Connections)%n]; c.usable() {
				w = p.compare(w, c)
			}
		}
		return w, nil
	}
	return p.chooseSlow(ms)
}

// cheaper returns the member with the lower load; a is already a random one of the two, so ties go to a.
//
// Both estimates are decayed to the same instant, the newer of the two samples' times, instead of the
// current time: decaying both further by a common factor would not change which is smaller, and this way
// Pick needs no clock read (time.Now costs more than the rest of Pick on some virtual machines).
func cheaper(a, b *Member) *Member {
	ref := max(a.stamp.Load(), b.stamp.Load())
	if b.load(ref) < a.load(ref) {
		return b
	}
	return a
}

// usable reports whether Pick may choose the member on the fast path: available and its address not
// ejected.
func (m *Member) usable() bool {
	ok, _ := m.available()
	return ok && !m.ejected()
}

// chooseSlow runs when a random pair hit an unusable member: it draws a pair uniformly among the usable
// members (two passes over the snapshot, no allocation). When every available member is ejected, the
// ejected ones are used.
func (p *Pool) chooseSlow(ms []*Member) (*Member, error) {
	avail, ready, healthy := 0, 0, 0
	var only, onlyHealthy *Member
	for _, m := range ms {
		ok, rd := m.available()
		if rd {
			ready++
		}
		if ok {
			avail++
			only = m
			if !m.ejected() {
				healthy++
				onlyHealthy = m
			}
		}
	}
	switch {
	case avail == 0 && ready > 0:
		return nil, p.errNoLease
	case avail == 0:
		return nil, p.noConnection(ms)
	}
	withEjected := healthy == 0 // every available member is ejected: use them rather than none
	if !withEjected {
		avail, only = healthy, onlyHealthy
	}
	if avail == 1 {
		return only, nil
	}
	x, y := drawTwo(avail)
	var a, b *Member
	k := 0
	for _, m := range ms {
		if ok, _ := m.available(); !ok || !withEjected && m.ejected() {
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
		return p.compare(a, b), nil
	case a != nil:
		return a, nil
	case b != nil:
		return b, nil
	}
	return only, nil // availability changed between the passes; only was available a moment ago
}

// noConnection returns errNoConn with its hint set to the time until the next reconnect attempt, or the
// SETUP-refused error when every member's last connection was refused by the backend.
func (p *Pool) noConnection(ms []*Member) error {
	if code := allRefused(ms); code != 0 {
		return p.refusedError(code)
	}
	now := int64(p.now().Sub(p.epoch))
	var soonest int64 = -1
	for _, m := range ms {
		if m.State() != StateDown {
			continue
		}
		d := m.nextAttempt.Load() - now
		if soonest < 0 || d < soonest {
			soonest = d
		}
	}
	if soonest < 0 {
		p.errNoConn.setRetry(DefaultRetryAfter)
	} else {
		// Round up to whole seconds: the header carries seconds.
		d := (time.Duration(soonest) + time.Second - 1).Truncate(time.Second)
		p.errNoConn.setRetry(d)
	}
	return p.errNoConn
}

// allRefused returns the SETUP refusal code when the last connection of every member ended with the
// backend refusing SETUP, else 0.
func allRefused(ms []*Member) frame.ErrorCode {
	var code frame.ErrorCode
	for _, m := range ms {
		c := frame.ErrorCode(m.refused.Load())
		if c == 0 {
			return 0
		}
		code = c
	}
	return code
}

// refusedError returns the pool's PickError for a SETUP refused with code (one value per code).
func (p *Pool) refusedError(code frame.ErrorCode) *PickError {
	switch code {
	case frame.CodeInvalidSetup:
		return p.errRefused[0]
	case frame.CodeUnsupportedSetup:
		return p.errRefused[1]
	default:
		return p.errRefused[2]
	}
}

// Ready reports whether at least one connection is ready (leases aside).
func (p *Pool) Ready() bool {
	if p.closed.Load() {
		return false
	}
	for _, m := range *p.members.Load() {
		if m.State() == StateReady {
			return true
		}
	}
	return false
}

// connect dials one endpoint and sends SETUP. DialTimeout bounds the dial; the rsocket connection lives
// until ctx ends (or it is lost).
func (p *Pool) connect(ctx context.Context, ep *endpoint) (*rsocket.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, p.backend.DialTimeout.D())
	defer cancel()
	var (
		tc  transport.Conn
		err error
	)
	tc, err = p.dialTransport(dctx, ep)
	if err != nil {
		return nil, &DialError{Addr: ep.dialAddr, Err: err}
	}
	c, err := rsocket.Connect(dctx, tc, p.sessionOptions(ep))
	if err != nil {
		_ = tc.Close()
		return nil, &DialError{Addr: ep.dialAddr, Setup: true, Err: err}
	}
	return c, nil
}

// DialError is a failed dial or SETUP of one slot (logged, and shown in Stats as the slot's last error).
type DialError struct {
	Addr  string
	Setup bool // the transport connected but rsocket.Connect failed
	Err   error
}

func (e *DialError) Error() string {
	if e.Setup {
		return "pool: setup " + e.Addr + ": " + e.Err.Error()
	}
	return "pool: dial " + e.Addr + ": " + e.Err.Error()
}

func (e *DialError) Unwrap() error { return e.Err }

// backoff returns the jittered delay before attempt n (n >= 1): min x 2^(n-1), capped at max, drawn
// uniformly from [d/2, d].
func (p *Pool) backoff(n int) time.Duration {
	d := p.minBackoff
	for i := 1; i < n && d < p.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.maxBackoff)
	half := d / 2
	return half + rand.N(d-half+1)
}

// waitIdle polls inflight until it is 0 or ctx ends (then it returns ctx.Err()).
func waitIdle(ctx context.Context, inflight func() int64) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for inflight() > 0 {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// drawTwo returns two different indices below n (n >= 2), uniformly, from one random number: the two
// draws of power-of-two-choices selection.
func drawTwo(n int) (x, y int) {
	r := rand.Uint64()
	x = int(uint32(r) % uint32(n))
	y = int(uint32(r>>32) % uint32(n-1))
	if y >= x {
		y++
	}
	return x, y
}
