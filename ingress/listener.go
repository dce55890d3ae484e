package ingress

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"go.uber.org/zap"
)

// The edge listener sits between the kernel's listening socket and fasthttp. It does three things a
// hostile client would otherwise exploit:
//
//   - Accept errors never end the server. fasthttp returns every accept error but a timeout as fatal, so
//     one EMFILE ("too many open files") used to stop the gateway. Temporary errors (EMFILE, ENFILE,
//     ENOBUFS, ENOMEM, ECONNABORTED, EINTR, EAGAIN, and timeouts) are retried after a pause that starts at
//     5 ms and doubles up to 1 s, as net/http's Server.Serve does; the pause resets after the next
//     successful accept. Each error counts in rsgate_accept_errors_total; the log gets one warning at the
//     start of a burst and one line with the burst's count when accepting works again.
//   - limits.max_connections bounds the client connections open at once, counted from accept until the
//     connection is closed, WebSocket sessions included (fasthttp's own Concurrency does not see hijacked
//     connections). A connection beyond it is closed at once.
//   - limits.max_connections_per_ip bounds the connections of one client address (IPv6 addresses count
//     per address, not per prefix). A connection beyond it is closed at once.
//
// Refused connections count in rsgate_connections_refused_total{reason="max_connections"|"per_ip"}; the
// gauge rsgate_client_connections is the number open (counted while a limit is set, which the gateway
// always does). Accept errors count in rsgate_accept_errors_total{listener="ingress"|"admin"}.

// Accept retry pauses (net/http's values).
const (
	acceptMinBackoff = 5 * time.Millisecond
	acceptMaxBackoff = time.Second
)

// edgeListener wraps the listener fasthttp serves (see the top of this file).
type edgeListener struct {
	net.Listener
	log      *zap.Logger
	maxConns int64 // 0: no limit
	maxPerIP int32 // 0: no limit

	open  atomic.Int64
	mu    sync.Mutex
	perIP map[netip.Addr]int32

	acceptErrors *metrics.Counter // nil without metrics
	refusedMax   *metrics.Counter
	refusedIP    *metrics.Counter

	// sleep is time.Sleep; tests replace it.
	sleep func(time.Duration)
}

// RetryAccept wraps ln so that temporary accept errors are retried with backoff (as the ingress listener
// does) instead of ending the server; errors count in rsgate_accept_errors_total{listener=name} on set
// (nil: not counted). The admin listener uses it.
func RetryAccept(ln net.Listener, name string, log *zap.Logger, set *metrics.Set) net.Listener {
	return newEdgeListener(ln, name, log, set, 0, 0)
}

func newEdgeListener(ln net.Listener, name string, log *zap.Logger, set *metrics.Set, maxConns, maxPerIP int) *edgeListener {
	if log == nil {
		log = zap.NewNop()
	}
	l := &edgeListener{Listener: ln, log: log.With(zap.String("listener", name)), maxConns: int64(max(maxConns, 0)), maxPerIP: int32(max(maxPerIP, 0)), sleep: time.Sleep}
	if l.maxPerIP > 0 {
		l.perIP = map[netip.Addr]int32{}
	}
	if set != nil {
		l.acceptErrors = set.GetOrCreateCounter(`rsgate_accept_errors_total{listener="` + name + `"}`)
		if name != "ingress" {
			return l
		}
		l.refusedMax = set.GetOrCreateCounter(`rsgate_connections_refused_total{reason="max_connections"}`)
		l.refusedIP = set.GetOrCreateCounter(`rsgate_connections_refused_total{reason="per_ip"}`)
		set.GetOrCreateGauge(`rsgate_client_connections`, func() float64 { return float64(l.open.Load()) })
	}
	return l
}

// Accept returns the next connection within the limits; it returns an error only when the listener is
// closed or fails for good.
func (l *edgeListener) Accept() (net.Conn, error) {
	var (
		pause  time.Duration
		burst  int
		burstT time.Time
	)
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !temporaryAcceptError(err) {
				return nil, err
			}
			if l.acceptErrors != nil {
				l.acceptErrors.Inc()
			}
			if burst == 0 {
				burstT = time.Now()
				l.log.Warn("accept failed; retrying with backoff (logged once per burst)", zap.Error(err))
			}
			burst++
			if pause == 0 {
				pause = acceptMinBackoff
			} else {
				pause = min(2*pause, acceptMaxBackoff)
			}
			l.sleep(pause)
			continue
		}
		if burst > 0 {
			l.log.Warn("accepting again after accept errors", zap.Int("errors", burst), zap.Duration("for", time.Since(burstT)))
			burst, pause = 0, 0
		}
		if tc, ok := l.admit(c); ok {
			return tc, nil
		}
	}
}

// admit applies the connection limits to c: the tracked connection and true, or false (c is closed).
func (l *edgeListener) admit(c net.Conn) (net.Conn, bool) {
	if l.maxConns == 0 && l.maxPerIP == 0 {
		return c, true
	}
	if n := l.open.Add(1); l.maxConns > 0 && n > l.maxConns {
		l.open.Add(-1)
		if l.refusedMax != nil {
			l.refusedMax.Inc()
		}
		_ = c.Close()
		return nil, false
	}
	tc := &limitedConn{Conn: c, l: l}
	var out net.Conn = tc
	if tlsc, ok := c.(tlsConnection); ok { // *tls.Conn, or the certConn around one (tls_principal.go)
		out = &limitedTLSConn{limitedConn: tc, tls: tlsc} // fasthttp's IsTLS and TLSConnectionState see it
	}
	if l.maxPerIP > 0 {
		ip, ok := remoteIP(c)
		if ok {
			l.mu.Lock()
			n := l.perIP[ip]
			if n >= l.maxPerIP {
				l.mu.Unlock()
				l.open.Add(-1)
				if l.refusedIP != nil {
					l.refusedIP.Inc()
				}
				_ = c.Close()
				return nil, false
			}
			l.perIP[ip] = n + 1
			l.mu.Unlock()
			tc.ip, tc.hasIP = ip, true
		}
	}
	return out, true
}

func (l *edgeListener) release(c *limitedConn) {
	l.open.Add(-1)
	if !c.hasIP {
		return
	}
	l.mu.Lock()
	if n := l.perIP[c.ip] - 1; n > 0 {
		l.perIP[c.ip] = n
	} else {
		delete(l.perIP, c.ip)
	}
	l.mu.Unlock()
}

// remoteIP is c's peer address without the port, IPv4-mapped IPv6 addresses unmapped.
func remoteIP(c net.Conn) (netip.Addr, bool) {
	switch a := c.RemoteAddr().(type) {
	case *net.TCPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), ok
	default:
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return netip.Addr{}, false
		}
		return ap.Addr().Unmap(), true
	}
}

// temporaryAcceptError reports whether an Accept error is worth retrying: running out of descriptors or
// memory, a connection aborted before it was accepted, an interrupted call, or a timeout.
func temporaryAcceptError(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	for _, e := range [...]syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.EINTR, syscall.EAGAIN, syscall.ECONNRESET, syscall.EPROTO} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// limitedConn is a client connection counted by an edgeListener until it is closed.
type limitedConn struct {
	net.Conn
	l     *edgeListener
	ip    netip.Addr
	hasIP bool
	kept  atomic.Bool // the lingering close holds the slot past Close (keep)
	freed atomic.Bool // the slot was given back
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	if !c.kept.Load() {
		c.free()
	}
	return err
}

// free gives the connection's slot (max_connections, per IP) back, once.
func (c *limitedConn) free() {
	if c.freed.CompareAndSwap(false, true) {
		c.l.release(c)
	}
}

// keep makes the connection's slot outlive Close: the lingering close (limits.go) holds it while it
// drains the socket's duplicate, and calls free when done.
func (c *limitedConn) keep() { c.kept.Store(true) }

// lingerCap is how many connections of this listener may linger at once: a small share of
// max_connections (lingerShare), at most lingerMaxConns (lingerMaxConns when there is no connection limit).
func (c *limitedConn) lingerCap() int32 {
	if c.l.maxConns == 0 {
		return lingerMaxConns
	}
	return int32(min(max(c.l.maxConns/lingerShare, 1), lingerMaxConns))
}

// limitedOf finds the limitedConn under c (fasthttp may hand out c itself, a limitedTLSConn, or a wrapper
// around one), or nil.
func limitedOf(c net.Conn) *limitedConn {
	return under(c, func(c net.Conn) (*limitedConn, bool) {
		switch lc := c.(type) {
		case *limitedConn:
			return lc, true
		case *limitedTLSConn:
			return lc.limitedConn, true
		}
		return nil, false
	})
}

// SyscallConn exposes the socket of the wrapped connection (the slow-call watch uses it).
func (c *limitedConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errNoSyscallConn
}

// File duplicates the socket of the wrapped connection (the lingering close after a 413 uses it,
// limits.go), under a TLS connection too. The duplicate is counted through keep, not here.
func (c *limitedConn) File() (*os.File, error) {
	if fc := socketOf(c.Conn); fc != nil {
		return fc.File()
	}
	return nil, errNoSyscallConn
}

// NetConn returns the wrapped connection.
func (c *limitedConn) NetConn() net.Conn { return c.Conn }

// limitedTLSConn is a limitedConn over a TLS connection: it keeps the TLS methods fasthttp looks for.
type limitedTLSConn struct {
	*limitedConn
	tls tlsConnection
}

// tlsConnection is what fasthttp looks for on a TLS connection.
type tlsConnection interface {
	Handshake() error
	ConnectionState() tls.ConnectionState
}

func (c *limitedTLSConn) Handshake() error                     { return c.tls.Handshake() }
func (c *limitedTLSConn) ConnectionState() tls.ConnectionState { return c.tls.ConnectionState() }

var errNoSyscallConn = errors.New("ingress: connection has no system socket")
