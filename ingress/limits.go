package ingress

import (
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/rsgate/rsgate/mapping"
)

// Answers to requests over the size limits (413 body, 431 headers), and how their connections close.
//
//   - The status is counted under the matched route's label (rsgate_http_requests_total{route="users"}),
//     as any other answer of that route. For a 431, fasthttp keeps no parsed header (the block did not fit
//     its buffer); its error quotes the first 200 bytes of the buffer, and the request line is read from
//     there (requestLineOf). A longer line still counts under its route when its path ends within those
//     bytes (at a '?': a long query string); a path cut there, or a line that does not parse, counts under
//     route="_unmatched".
//   - Expect: 100-continue with a Content-Length over the route's limit is answered 413 at once, without
//     "100 Continue" first (expectContinue): the client never sends the body.
//   - A 413 or another parse error leaves unread request bytes on the socket. Closing a socket with unread
//     bytes makes the kernel send RST, and an RST that arrives before the client read the 413 destroys it.
//     So the connection is closed the way nginx's lingering close does it: after the answer is written,
//     the gateway half-closes (FIN) and reads and discards what the client still sends, until the client
//     closes, lingerTime passes or lingerMaxBytes were read. fasthttp closes its own file descriptor as
//     usual; a duplicate kept by lingerSet holds the socket open meanwhile. Over TLS the same happens on
//     the TCP socket, after the close_notify.
//   - Lingering is bounded so that it cannot run the process out of file descriptors: a lingering
//     connection keeps its slot of limits.max_connections (and max_connections_per_ip) until the drain
//     ends, as if it were still open, and at most max_connections/16 connections (at most 1,024; at least
//     1) linger at once. Beyond that a connection is closed at once with RST (SO_LINGER 0): the client may
//     miss the 413, the gateway keeps its descriptors. Refusals count in rsgate_linger_refused_total.

// CodeHeadersTooLarge is the error code of a 431 answer: the request line and headers exceed
// limits.max_header_size.
const CodeHeadersTooLarge = "HEADERS_TOO_LARGE"

const (
	lingerTime     = 5 * time.Second // nginx: lingering_timeout 5s
	lingerMaxBytes = 64 << 20
	lingerMaxConns = 1024 // lingering connections at most, whatever max_connections
	lingerShare    = 16   // at most max_connections/lingerShare connections linger at once
)

// lingerSet holds the duplicates of connections that will linger once fasthttp has closed them.
type lingerSet struct {
	mu      sync.Mutex
	files   map[net.Conn]lingering
	active  atomic.Int32     // registered or draining
	refused *metrics.Counter // rsgate_linger_refused_total (nil without metrics)
}

// lingering is a registered connection: the duplicate of its socket, and the slot it holds (nil: none).
type lingering struct {
	f    *os.File
	slot *limitedConn
}

// filer is a connection whose socket can be duplicated (*net.TCPConn, leanConn).
type filer interface {
	File() (*os.File, error)
}

// socketOf finds the socket under c: c itself when it can be duplicated, else what it wraps (*tls.Conn,
// listener wrappers), a few levels deep.
func socketOf(c net.Conn) filer {
	return under(c, func(c net.Conn) (filer, bool) { fc, ok := c.(filer); return fc, ok })
}

// add registers c to linger after its close. Over TLS the lingering is on the TCP socket, after the TLS
// close_notify fasthttp's close sends. Connections without a socket to duplicate close as usual.
func (l *lingerSet) add(c net.Conn) {
	fc := socketOf(c)
	if fc == nil {
		return
	}
	limit := int32(lingerMaxConns)
	slot := limitedOf(c)
	if slot != nil {
		limit = slot.lingerCap()
	}
	if l.active.Add(1) > limit {
		l.active.Add(-1)
		l.refuse(c)
		return
	}
	f, err := fc.File()
	if err != nil {
		l.active.Add(-1)
		return
	}
	l.mu.Lock()
	if l.files == nil {
		l.files = map[net.Conn]lingering{}
	}
	if old, ok := l.files[c]; ok { // registered twice (ExpectHandler, then a parse error)
		_ = old.f.Close()
		l.active.Add(-1)
	}
	if slot != nil {
		slot.keep() // the slot stays taken until the drain ends
	}
	l.files[c] = lingering{f: f, slot: slot}
	l.mu.Unlock()
}

// refuse makes c close at once with RST (SO_LINGER 0) instead of lingering.
func (l *lingerSet) refuse(c net.Conn) {
	if l.refused != nil {
		l.refused.Inc()
	}
	setLingerZero(c)
}

// closed starts the lingering of c, if registered; fasthttp has written the answer and closed c.
func (l *lingerSet) closed(c net.Conn) {
	if l.active.Load() == 0 { // the usual case: no lock per closed connection
		return
	}
	l.mu.Lock()
	e, ok := l.files[c]
	delete(l.files, c)
	l.mu.Unlock()
	if ok {
		go l.drain(e)
	}
}

// drain half-closes the socket and discards what the client still sends, then closes it and gives the
// connection's slot back.
func (l *lingerSet) drain(e lingering) {
	defer l.active.Add(-1)
	if e.slot != nil {
		defer e.slot.free()
	}
	f := e.f
	c, err := net.FileConn(f)
	_ = f.Close()
	if err != nil {
		return
	}
	defer c.Close()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	_ = c.SetReadDeadline(time.Now().Add(lingerTime))
	buf := make([]byte, 32<<10)
	for n := 0; n < lingerMaxBytes; {
		k, err := c.Read(buf)
		n += k
		if err != nil {
			return
		}
	}
}

// routeForLine matches the request line quoted in a fasthttp header error (a 431: ErrSmallBuffer) and
// returns the route's metrics, or the unmatched metrics when the line cannot be read or matches nothing.
func (st *state) routeForLine(err error) *routeMetrics {
	method, target, ok := requestLineOf(err.Error())
	if !ok {
		return st.unmatched
	}
	u := fasthttp.AcquireURI()
	defer fasthttp.ReleaseURI(u)
	if u.Parse(nil, target) != nil {
		return st.unmatched
	}
	var ps mapping.Params
	cr, res := st.table.Match(method, u.Path(), &ps) // u.Path: normalised as ctx.Path() is
	if res != mapping.MatchOK {
		return st.unmatched
	}
	return st.routes[cr.Index].m
}

// requestLineOf reads the method and request target from fasthttp's header error text, which ends with
// `contents: "<first 200 bytes, Go-quoted>"...`. A whole line there ("METHOD SP target SP HTTP/") gives
// its target. A line cut there gives its target only when the path ended before the cut (a '?' follows
// it: the query is cut, which routing does not read); a cut path could match the wrong route, so ok is
// false then.
func requestLineOf(msg string) (method, target []byte, ok bool) {
	i := strings.LastIndex(msg, "contents: ")
	if i < 0 {
		return nil, nil, false
	}
	q, err := strconv.QuotedPrefix(msg[i+len("contents: "):])
	if err != nil {
		return nil, nil, false
	}
	b, err := strconv.Unquote(q)
	if err != nil {
		return nil, nil, false
	}
	line, _, whole := strings.Cut(b, "\n")
	m, rest, ok1 := strings.Cut(line, " ")
	if !ok1 || m == "" {
		return nil, nil, false
	}
	if !whole {
		// The line is cut: "METHOD SP path?query-cut", no second space.
		if rest == "" || strings.IndexByte(rest, ' ') >= 0 || strings.IndexByte(rest, '?') <= 0 {
			return nil, nil, false
		}
		return []byte(m), []byte(rest), true
	}
	rest = strings.TrimSuffix(rest, "\r")
	t, proto, ok2 := strings.Cut(rest, " ")
	if !ok2 || t == "" || !strings.HasPrefix(proto, "HTTP/") {
		return nil, nil, false
	}
	return []byte(m), []byte(t), true
}

// routeFor matches the request of ctx (its header has been read) and returns the route's metrics and
// body limit, or the unmatched metrics and the largest limit.
func (st *state) routeFor(ctx *fasthttp.RequestCtx) (*routeMetrics, int) {
	var ps mapping.Params
	cr, res := st.table.Match(ctx.Method(), ctx.Path(), &ps)
	if res != mapping.MatchOK {
		return st.unmatched, st.maxBody
	}
	rt := st.routes[cr.Index]
	return rt.m, rt.maxBody
}

// expectContinue is fasthttp's ExpectHandler: a request with Expect: 100-continue whose Content-Length
// is over its route's body limit is answered 413 without "100 Continue" (the client sends no body).
func (s *Server) expectContinue(ctx *fasthttp.RequestCtx) int {
	st := s.state.Load()
	m, limit := st.routeFor(ctx)
	if cl := ctx.Request.Header.ContentLength(); cl > limit {
		writeJSONError(ctx, fasthttp.StatusRequestEntityTooLarge, "request body over the route's size limit", CodeBodyTooLarge, nil)
		m.count(fasthttp.StatusRequestEntityTooLarge, 0) // before the request time is set (as parse errors)
		s.lingers.add(ctx.Conn())
		return fasthttp.StatusRequestEntityTooLarge
	}
	return fasthttp.StatusContinue
}
