package ingress

import (
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/rsgate/rsgate/mapping"
)

// Answers to requests over the size limits (413 body, 431 headers), and how their connections close.
//
//   - The status is counted under the matched route's label (rsgate_http_requests_total{route="users"}),
//     as any other answer of that route. A 431 is counted under route="_unmatched": fasthttp cannot read a
//     header block larger than its buffer and keeps nothing of it, so the path is unknown.
//   - Expect: 100-continue with a Content-Length over the route's limit is answered 413 at once, without
//     "100 Continue" first (expectContinue): the client never sends the body.
//   - A 413 or another parse error leaves unread request bytes on the socket. Closing a socket with unread
//     bytes makes the kernel send RST, and an RST that arrives before the client read the 413 destroys it.
//     So the connection is closed the way nginx's lingering close does it: after the answer is written,
//     the gateway half-closes (FIN) and reads and discards what the client still sends, until the client
//     closes, lingerTime passes or lingerMaxBytes were read. fasthttp closes its own file descriptor as
//     usual; a duplicate kept by lingerSet holds the socket open meanwhile. Over TLS the same happens on
//     the TCP socket, after the close_notify. At most lingerMaxConns connections linger at once; beyond
//     that they close at once (as before).

// CodeHeadersTooLarge is the error code of a 431 answer: the request line and headers exceed
// limits.max_header_size.
const CodeHeadersTooLarge = "HEADERS_TOO_LARGE"

const (
	lingerTime     = 5 * time.Second // nginx: lingering_timeout 5s
	lingerMaxBytes = 64 << 20
	lingerMaxConns = 1024
)

// lingerSet holds the duplicates of connections that will linger once fasthttp has closed them.
type lingerSet struct {
	mu     sync.Mutex
	files  map[net.Conn]*os.File
	active atomic.Int32 // registered or draining
}

// filer is a connection whose socket can be duplicated (*net.TCPConn, leanConn).
type filer interface {
	File() (*os.File, error)
}

// socketOf finds the socket under c: c itself when it can be duplicated, else what its NetConn method
// wraps (*tls.Conn, listener wrappers), a few levels deep.
func socketOf(c net.Conn) filer {
	for range 4 {
		if fc, ok := c.(filer); ok {
			return fc
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = u.NetConn()
	}
	return nil
}

// add registers c to linger after its close. Over TLS the lingering is on the TCP socket, after the TLS
// close_notify fasthttp's close sends. Connections without a socket to duplicate close as usual.
func (l *lingerSet) add(c net.Conn) {
	fc := socketOf(c)
	if fc == nil {
		return
	}
	if l.active.Add(1) > lingerMaxConns {
		l.active.Add(-1)
		return
	}
	f, err := fc.File()
	if err != nil {
		l.active.Add(-1)
		return
	}
	l.mu.Lock()
	if l.files == nil {
		l.files = map[net.Conn]*os.File{}
	}
	if old := l.files[c]; old != nil { // registered twice (ExpectHandler, then a parse error)
		_ = old.Close()
		l.active.Add(-1)
	}
	l.files[c] = f
	l.mu.Unlock()
}

// closed starts the lingering of c, if registered; fasthttp has written the answer and closed c.
func (l *lingerSet) closed(c net.Conn) {
	if l.active.Load() == 0 { // the usual case: no lock per closed connection
		return
	}
	l.mu.Lock()
	f := l.files[c]
	delete(l.files, c)
	l.mu.Unlock()
	if f != nil {
		go l.drain(f)
	}
}

// drain half-closes the socket and discards what the client still sends, then closes it.
func (l *lingerSet) drain(f *os.File) {
	defer l.active.Add(-1)
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
