package pool

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/rsgate/rsgate/mapping"
)

// HTTPPool is the client side of one backend with transport http (a legacy REST upstream): one
// fasthttp.HostClient per address with its own keep-alive connections, a round-robin choice that skips
// addresses marked down, an in-flight limit (max_inflight) and a TCP health check.
//
// Health: an address is marked down when a dial to it fails (while serving, or in the health check that
// runs every http.health_interval); it is skipped until the check succeeds or its reconnect backoff
// (reconnect.min_backoff doubling up to max_backoff) has passed, after which one request may try it
// again. Ready reports whether at least one address is not marked down, so a backend nobody checked yet
// counts as ready.
//
// Lifetime: Pick reserves an in-flight slot; the caller calls Done exactly once, when it has finished
// with the response (for a streamed body: after closing it). All methods are safe for concurrent use.
type HTTPPool struct {
	name         string
	backend      mapping.Backend
	scheme       string // "http" or "https"
	prefix       string // base path of the address URLs, decoded, without its trailing "/" ("" for none)
	preserveHost bool
	ups          []*Upstream
	rr           atomic.Uint32
	maxInflight  int64
	inflight     atomic.Int64
	closed       atomic.Bool
	dialTimeout  time.Duration
	minBackoff   time.Duration
	maxBackoff   time.Duration
	health       time.Duration
	log          *zap.Logger
	now          func() time.Time

	errNoConn, errOverloaded, errClosed *PickError

	mu      sync.Mutex
	started bool
	stop    chan struct{}
	wg      sync.WaitGroup
}

// Upstream is one address of an HTTPPool.
type Upstream struct {
	pool      *HTTPPool
	addr      string // host:port dialled
	host      string // Host header: the URL's host as written
	client    *fasthttp.HostClient
	downUntil atomic.Int64 // unix ns; 0 = up
	fails     atomic.Int32 // consecutive dial failures
}

// NewHTTP builds the pool of a backend with transport http. It does not dial: connections are made on
// demand; Start runs the health check. b is copied; zero values take mapping's defaults.
func NewHTTP(b *mapping.Backend, opts Options) (*HTTPPool, error) {
	if b == nil {
		return nil, &ConfigError{Field: "backend", Err: errors.New("nil backend")}
	}
	bk := *b
	cfgErr := func(field string, err error) error { return &ConfigError{Backend: bk.Name, Field: field, Err: err} }
	if bk.Transport != mapping.TransportHTTP {
		return nil, cfgErr("transport", fmt.Errorf("%w %q (NewHTTP serves http)", ErrUnsupportedTransport, bk.Transport))
	}
	if len(bk.Addresses) == 0 {
		return nil, cfgErr("addresses", errors.New("no address"))
	}
	h := bk.HTTP
	def := mapping.NewHTTPOptions()
	if h.IdleTimeout <= 0 {
		h.IdleTimeout = def.IdleTimeout
	}
	if h.MaxConnsPerAddress <= 0 {
		h.MaxConnsPerAddress = def.MaxConnsPerAddress
	}
	p := &HTTPPool{
		name:         bk.Name,
		backend:      bk,
		preserveHost: h.PreserveHost,
		maxInflight:  int64(bk.MaxInflight),
		dialTimeout:  orDefault(bk.DialTimeout.D(), mapping.DefaultDialTimeout),
		minBackoff:   orDefault(bk.Reconnect.MinBackoff.D(), mapping.DefaultMinBackoff),
		maxBackoff:   orDefault(bk.Reconnect.MaxBackoff.D(), mapping.DefaultMaxBackoff),
		health:       h.HealthInterval.D(),
		log:          opts.Logger,
		now:          opts.Now,
	}
	if p.log == nil {
		p.log = zap.NewNop()
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.maxBackoff < p.minBackoff {
		p.maxBackoff = p.minBackoff
	}
	var tlsCfg *tls.Config
	for i, a := range bk.Addresses {
		field := fmt.Sprintf("addresses[%d]", i)
		u, err := url.Parse(a)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, cfgErr(field, fmt.Errorf("invalid URL %q (want http://host:port or https://host:port)", a))
		}
		if i == 0 {
			p.scheme = u.Scheme
			p.prefix = strings.TrimSuffix(u.Path, "/")
			if u.Scheme == "https" {
				if tlsCfg, err = TLSConfig(bk.TLS); err != nil {
					return nil, cfgErr("tls", err)
				}
				if tlsCfg == nil {
					tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
				}
			}
		} else if u.Scheme != p.scheme || strings.TrimSuffix(u.Path, "/") != p.prefix {
			return nil, cfgErr(field, fmt.Errorf("%q: every address must have the same scheme and path as %q", a, bk.Addresses[0]))
		}
		if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, cfgErr(field, fmt.Errorf("%q: no query, fragment or user info allowed", a))
		}
		port := u.Port()
		if port == "" {
			port = "80"
			if u.Scheme == "https" {
				port = "443"
			}
		}
		up := &Upstream{pool: p, addr: net.JoinHostPort(u.Hostname(), port), host: u.Host}
		up.client = &fasthttp.HostClient{
			Addr:                      up.addr,
			Name:                      "",
			NoDefaultUserAgentHeader:  true, // the client's User-Agent is forwarded as is
			DialTimeout:               p.dial,
			IsTLS:                     u.Scheme == "https",
			TLSConfig:                 tlsCfg,
			MaxConns:                  h.MaxConnsPerAddress,
			MaxConnDuration:           bk.ResolveInterval.D(), // new connections resolve DNS again
			MaxIdleConnDuration:       h.IdleTimeout.D(),
			MaxIdemponentCallAttempts: 2, // one retry of an idempotent request on a stale keep-alive connection
			RetryIfErr:                retryStale,
			ReadTimeout:               h.ReadTimeout.D(),
			ReadBufferSize:            httpReadBufferSize, // bounds the upstream's status line + headers
			StreamResponseBody:        true,
		}
		p.ups = append(p.ups, up)
	}
	p.errNoConn = newPickError(p.name, ErrNoConnection)
	p.errOverloaded = newPickError(p.name, ErrOverloaded)
	p.errClosed = newPickError(p.name, ErrClosed)
	return p, nil
}

// httpReadBufferSize is the per-connection read buffer of upstream connections; an upstream response
// whose headers do not fit is answered 502. fasthttp's default (4 KiB) is too small for some legacy
// services' cookies.
const httpReadBufferSize = 16 << 10

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// retryStale retries an idempotent request that failed on a connection the upstream closed (a stale
// keep-alive connection), never one that failed to dial: the address is down and the next request goes
// elsewhere.
func retryStale(req *fasthttp.Request, _ int, err error) (resetTimeout, retry bool) {
	var de *DialError
	if errors.As(err, &de) || errors.Is(err, fasthttp.ErrTimeout) {
		return false, false
	}
	return false, req.Header.IsGet() || req.Header.IsHead() || req.Header.IsPut() || req.Header.IsDelete() ||
		req.Header.IsOptions() || req.Header.IsTrace()
}

// dial opens a TCP connection (errors are *DialError: the request was not sent) with the backend's dial_timeout (or less when the request has less time
// left). The name is resolved on every dial, so new connections follow DNS changes.
func (p *HTTPPool) dial(addr string, timeout time.Duration) (net.Conn, error) {
	if timeout <= 0 || timeout > p.dialTimeout {
		timeout = p.dialTimeout
	}
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, &DialError{Addr: addr, Err: err}
	}
	return c, nil
}

// Name returns the backend name.
func (p *HTTPPool) Name() string { return p.name }

// Backend returns the pool's copy of its backend configuration.
func (p *HTTPPool) Backend() *mapping.Backend { return &p.backend }

// PathPrefix returns the path of the address URLs without its trailing "/" ("" when they have none),
// decoded (as fasthttp.URI.SetPath takes it): the upstream path of a request is PathPrefix followed by the
// route's upstream path.
func (p *HTTPPool) PathPrefix() string { return p.prefix }

// Scheme returns "http" or "https".
func (p *HTTPPool) Scheme() string { return p.scheme }

// PreserveHost reports http.preserve_host: the client's Host header goes upstream.
func (p *HTTPPool) PreserveHost() bool { return p.preserveHost }

// Pick chooses an address that is not marked down (round robin) and reserves an in-flight slot. Errors
// (PickError, match with errors.Is): ErrOverloaded when max_inflight requests are running,
// ErrNoConnection when every address is down (RetryAfter: until the first may be tried again),
// ErrClosed after Close. Pick does not allocate.
func (p *HTTPPool) Pick() (*Upstream, error) {
	if p.closed.Load() {
		return nil, p.errClosed
	}
	if p.maxInflight > 0 {
		if p.inflight.Add(1) > p.maxInflight {
			p.inflight.Add(-1)
			return nil, p.errOverloaded
		}
	}
	n := uint32(len(p.ups))
	start := p.rr.Add(1)
	now := p.now().UnixNano()
	soonest := int64(0)
	for i := uint32(0); i < n; i++ {
		u := p.ups[(start+i)%n]
		d := u.downUntil.Load()
		if d == 0 || now >= d {
			return u, nil
		}
		if soonest == 0 || d < soonest {
			soonest = d
		}
	}
	if p.maxInflight > 0 {
		p.inflight.Add(-1)
	}
	p.errNoConn.setRetry(time.Duration(soonest - now))
	return nil, p.errNoConn
}

// Done releases the slot Pick reserved for u and records the outcome: a DialError marks u down.
func (p *HTTPPool) Done(u *Upstream, err error) {
	if p.maxInflight > 0 {
		p.inflight.Add(-1)
	}
	if err == nil {
		if u.fails.Load() != 0 {
			u.markUp()
		}
		return
	}
	if de := (*DialError)(nil); errors.As(err, &de) {
		u.markDown(err)
	}
}

// InFlight returns the number of requests holding a slot.
func (p *HTTPPool) InFlight() int { return int(p.inflight.Load()) }

// Ready reports whether at least one address is not marked down.
func (p *HTTPPool) Ready() bool {
	if p.closed.Load() {
		return false
	}
	now := p.now().UnixNano()
	for _, u := range p.ups {
		if d := u.downUntil.Load(); d == 0 || now >= d {
			return true
		}
	}
	return false
}

// Do sends req to u and reads the response headers into resp; with a streamed body (always, for this
// pool's clients) resp.BodyStream must be closed by the caller. req's path and query must be set
// (req.URI().SetPathBytes, SetQueryStringBytes); Do sets the scheme and, unless http.preserve_host, the
// Host. deadline (zero: none) bounds the whole exchange, reading the body included. Errors: *DialError,
// fasthttp.ErrTimeout, fasthttp.ErrNoFreeConns, fasthttp.ErrConnectionClosed and I/O errors.
func (u *Upstream) Do(req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) error {
	uri := req.URI()
	uri.SetScheme(u.pool.scheme)
	if u.pool.preserveHost && len(req.Header.Host()) > 0 {
		req.UseHostHeader = true
	} else {
		req.UseHostHeader = false
		uri.SetHost(u.host)
		req.Header.SetHost(u.host)
	}
	if deadline.IsZero() {
		return u.client.Do(req, resp)
	}
	return u.client.DoDeadline(req, resp, deadline)
}

// Addr returns the dialled host:port.
func (u *Upstream) Addr() string { return u.addr }

func (u *Upstream) markDown(err error) {
	n := u.fails.Add(1)
	backoff := u.pool.minBackoff
	for i := int32(1); i < n && backoff < u.pool.maxBackoff; i++ {
		backoff *= 2
	}
	backoff = min(backoff, u.pool.maxBackoff)
	u.downUntil.Store(u.pool.now().Add(backoff).UnixNano())
	if n == 1 {
		u.pool.log.Warn("http upstream down", zap.String("backend", u.pool.name), zap.String("addr", u.addr),
			zap.Duration("retry_in", backoff), zap.Error(err))
	}
}

func (u *Upstream) markUp() {
	if u.fails.Swap(0) != 0 {
		u.pool.log.Info("http upstream up", zap.String("backend", u.pool.name), zap.String("addr", u.addr))
	}
	u.downUntil.Store(0)
}

// Start runs the TCP health check every http.health_interval (nothing when it is 0).
func (p *HTTPPool) Start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started || p.closed.Load() || p.health <= 0 {
		p.started = true
		return
	}
	p.started = true
	p.stop = make(chan struct{})
	p.wg.Add(1)
	go p.healthLoop(p.stop)
}

func (p *HTTPPool) healthLoop(stop <-chan struct{}) {
	defer p.wg.Done()
	t := time.NewTicker(p.health)
	defer t.Stop()
	for {
		p.checkAll()
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// checkAll TCP-connects to every address (in parallel) and marks it up or down.
func (p *HTTPPool) checkAll() {
	var wg sync.WaitGroup
	for _, u := range p.ups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := p.dial(u.addr, p.dialTimeout)
			if err != nil {
				u.markDown(err)
				return
			}
			_ = c.Close()
			u.markUp()
		}()
	}
	wg.Wait()
}

// Close stops the health check and closes idle connections; requests in flight finish on theirs. Pick
// fails with ErrClosed from now on.
func (p *HTTPPool) Close() error {
	p.closed.Store(true)
	p.mu.Lock()
	if p.stop != nil {
		close(p.stop)
		p.stop = nil
	}
	p.mu.Unlock()
	p.wg.Wait()
	for _, u := range p.ups {
		u.client.CloseIdleConnections()
	}
	return nil
}

// HTTPStats is the /backends view of an http backend.
type HTTPStats struct {
	Backend   string              `json:"backend"`
	Transport string              `json:"transport"`
	Ready     bool                `json:"ready"`
	InFlight  int                 `json:"inflight"`
	Upstreams []HTTPUpstreamStats `json:"upstreams"`
}

// HTTPUpstreamStats describes one address of an http backend.
type HTTPUpstreamStats struct {
	Addr    string `json:"addr"`
	State   string `json:"state"` // "up" or "down"
	Conns   int    `json:"conns"`
	Pending int    `json:"pending"`
	Fails   int    `json:"consecutive_dial_failures"`
}

// Stats returns the pool's state.
func (p *HTTPPool) Stats() HTTPStats {
	s := HTTPStats{Backend: p.name, Transport: mapping.TransportHTTP, Ready: p.Ready(), InFlight: p.InFlight()}
	now := p.now().UnixNano()
	for _, u := range p.ups {
		st := "up"
		if d := u.downUntil.Load(); d != 0 && now < d {
			st = "down"
		}
		s.Upstreams = append(s.Upstreams, HTTPUpstreamStats{Addr: u.addr, State: st, Conns: u.client.ConnsCount(),
			Pending: u.client.PendingRequests(), Fails: int(u.fails.Load())})
	}
	return s
}
