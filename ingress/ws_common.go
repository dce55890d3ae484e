package ingress

import (
	"bytes"
	"errors"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/VictoriaMetrics/metrics"
	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"

	"github.com/rsgate/rsgate/internal/httpmeta"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/extension"
)

// WebSocket routes (interaction request-channel and rsocket) share this: the upgrader, the Origin check,
// the per-route settings and the sessions gauge.
//
// Origin policy (websocket.origins): an upgrade without an Origin header (a non-browser client) is
// accepted; a browser's Origin is accepted when it is same-origin (its host[:port] equals the request's
// Host), when it equals an entry of the list (scheme://host[:port], compared case-insensitively), or when
// the list holds "*". Everything else gets 403 FORBIDDEN_ORIGIN before the upgrade. Same-origin is always
// allowed, so the default (no list) is same-origin only, and a list only adds origins.

// Close codes the gateway sends (RFC 6455 section 7.4.1).
const (
	closeNormal      = websocket.CloseNormalClosure     // 1000: the backend completed, idle timeout
	closeGoingAway   = websocket.CloseGoingAway         // 1001: the gateway is shutting down
	closeUnsupported = websocket.CloseUnsupportedData   // 1003
	closeTooBig      = websocket.CloseMessageTooBig     // 1009: message over websocket.max_message
	closeInternal    = websocket.CloseInternalServerErr // 1011: backend ERROR, backend lost, route timeout
	// maxCloseReason is the largest close reason: a control frame payload is at most 125 bytes, two of
	// which are the code.
	maxCloseReason = 123
)

// CodeForbiddenOrigin is the JSON error code of an upgrade refused by the Origin allow-list (403).
const CodeForbiddenOrigin = "FORBIDDEN_ORIGIN"

// CodeUpgradeRequired is the JSON error code of a plain request on a WebSocket route (426).
const CodeUpgradeRequired = "UPGRADE_REQUIRED"

// Defaults of the WebSocket routes that have no configuration key.
const (
	// DefaultRSocketMaxStreams bounds the concurrent streams one rsocket-route socket may have open;
	// requests beyond it get ERROR[REJECTED].
	DefaultRSocketMaxStreams = 256
	// wsReadBufferSize is the read buffer every WebSocket keeps for its whole life (idle ones too): small,
	// since larger messages are simply read in several steps. wsWriteBufferSize is the write buffer, taken
	// from wsWritePool only while a message is written.
	wsReadBufferSize  = 1 << 10
	wsWriteBufferSize = 4 << 10
	// wsCloseWait bounds how long a session waits for the client's close reply after sending its close.
	wsCloseWait = time.Second
	// wsWriteWait bounds control frame writes (ping, close).
	wsWriteWait = 5 * time.Second
)

// wsWritePool shares WebSocket write buffers between all sessions (idle sessions hold none).
var wsWritePool sync.Pool

// wsRoute is what a WebSocket route needs beyond the HTTP route fields.
type wsRoute struct {
	maxMessage   int
	maxSessions  int // websocket.max_sessions (ws_sessions.go); 0: no limit
	idleTimeout  time.Duration
	pingInterval time.Duration
	anyOrigin    bool
	origins      []string // lower-cased
	text         bool     // request-channel: backend items are sent as text messages
	upgrader     *websocket.FastHTTPUpgrader
	sessions     *metrics.Gauge // rsgate_websocket_sessions{route}; nil without metrics

	// rsocket.routes: exact tags, then prefixes (longest first).
	exact    map[string]string
	prefixes []tagPrefix
	// rsocket.resume: the route's resumable client sessions (nil: resumption off); ws_rsocket_resume.go.
	resume *rsocket.Sessions
}

type tagPrefix struct{ prefix, backend string }

// newWSRoute derives the WebSocket settings of route cr whose backend has data MIME dataMIME.
func newWSRoute(cr *mapping.CompiledRoute, dataMIME string, set *metrics.Set) *wsRoute {
	c := cr.WebSocket
	w := &wsRoute{
		maxMessage:   c.MaxMessage,
		maxSessions:  c.MaxSessions,
		idleTimeout:  c.IdleTimeout.D(),
		pingInterval: c.PingInterval.D(),
		text:         textMIME(dataMIME),
	}
	if w.maxMessage <= 0 {
		w.maxMessage = mapping.DefaultWSMaxMessage
	}
	w.resume = clientResumeSessions(cr)
	for _, o := range c.Origins {
		if o == "*" {
			w.anyOrigin = true
		}
		w.origins = append(w.origins, strings.ToLower(strings.TrimRight(o, "/")))
	}
	if cr.RSocket != nil && len(cr.RSocket.Routes) > 0 {
		w.exact = map[string]string{}
		for pat, b := range cr.RSocket.Routes {
			if p, ok := strings.CutSuffix(pat, "*"); ok {
				w.prefixes = append(w.prefixes, tagPrefix{p, b})
			} else {
				w.exact[pat] = b
			}
		}
		sort.Slice(w.prefixes, func(i, j int) bool { return len(w.prefixes[i].prefix) > len(w.prefixes[j].prefix) })
	}
	w.upgrader = &websocket.FastHTTPUpgrader{
		ReadBufferSize:  wsReadBufferSize,
		WriteBufferSize: wsWriteBufferSize,
		WriteBufferPool: &wsWritePool,
		// The Origin policy runs before Upgrade (JSON 403); the library's own check would refuse the
		// configured cross origins.
		CheckOrigin: func(*fasthttp.RequestCtx) bool { return true },
		Error: func(ctx *fasthttp.RequestCtx, status int, reason error) {
			writeJSONError(ctx, status, reason.Error(), CodeBadRequest, nil)
		},
	}
	if set != nil {
		w.sessions = set.GetOrCreateGauge(`rsgate_websocket_sessions{route="`+cr.Name+`"}`, nil)
	}
	return w
}

// textMIME reports whether items of this MIME type are sent as WebSocket text messages (JSON and text/*).
func textMIME(m string) bool {
	m = strings.ToLower(strings.TrimSpace(m))
	if i := strings.IndexByte(m, ';'); i >= 0 {
		m = strings.TrimSpace(m[:i])
	}
	return strings.HasPrefix(m, "text/") || m == "application/json" || strings.HasSuffix(m, "+json") ||
		m == "application/x-ndjson"
}

// backendFor returns the backend for a request whose first routing tag is tag (rsocket.routes), or def.
func (w *wsRoute) backendFor(tag []byte, def string) string {
	if tag == nil || (w.exact == nil && len(w.prefixes) == 0) {
		return def
	}
	if b, ok := w.exact[string(tag)]; ok {
		return b
	}
	for _, p := range w.prefixes {
		if bytes.HasPrefix(tag, unsafeBytes(p.prefix)) {
			return p.backend
		}
	}
	return def
}

func (w *wsRoute) sessionStarted() {
	if w.sessions != nil {
		w.sessions.Inc()
	}
}

func (w *wsRoute) sessionEnded() {
	if w.sessions != nil {
		w.sessions.Dec()
	}
}

// checkUpgrade refuses a request the route cannot upgrade: a disallowed Origin (403) or no WebSocket
// upgrade (426). It answers the error and returns its status and false.
func (w *wsRoute) checkUpgrade(ctx *fasthttp.RequestCtx) (int, bool) {
	if !w.originAllowed(ctx) {
		writeJSONError(ctx, fasthttp.StatusForbidden, "origin not allowed", CodeForbiddenOrigin, nil)
		return fasthttp.StatusForbidden, false
	}
	if !websocket.FastHTTPIsWebSocketUpgrade(ctx) {
		writeJSONError(ctx, fasthttp.StatusUpgradeRequired, "this route needs a WebSocket upgrade", CodeUpgradeRequired, nil)
		return fasthttp.StatusUpgradeRequired, false
	}
	return 0, true
}

// originAllowed applies the route's Origin policy (see the top of this file).
func (w *wsRoute) originAllowed(ctx *fasthttp.RequestCtx) bool {
	origin := ctx.Request.Header.Peek(fasthttp.HeaderOrigin)
	if len(origin) == 0 || w.anyOrigin {
		return true
	}
	for _, o := range w.origins {
		if httpmeta.EqualFold(bytes.TrimRight(origin, "/"), o) {
			return true
		}
	}
	u, err := url.Parse(string(origin))
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, string(ctx.Host()))
}

// closeReason truncates msg to what a close frame can carry, at a UTF-8 boundary.
func closeReason(msg string) string {
	if len(msg) <= maxCloseReason {
		return msg
	}
	msg = msg[:maxCloseReason]
	for len(msg) > 0 && !utf8.ValidString(msg) {
		msg = msg[:len(msg)-1]
	}
	return msg
}

// errorClose maps the error that ended a backend stream onto a close code and reason.
func errorClose(err error) (int, string) {
	var re *rsocket.Error
	switch {
	case errors.Is(err, ErrShutdown):
		return closeGoingAway, "gateway shutting down"
	case errors.Is(err, ErrRouteTimeout):
		return closeInternal, "route timeout"
	case errors.As(err, &re) && !errors.Is(err, rsocket.ErrClosed):
		return closeInternal, closeReason(re.Message)
	case errors.Is(err, rsocket.ErrClosed):
		return closeInternal, "backend connection lost"
	case errors.Is(err, rsocket.ErrTooLarge):
		return closeTooBig, "backend item too large"
	}
	return closeInternal, closeReason(err.Error())
}

// firstRoutingTag returns the first routing tag of request metadata in the given metadata MIME (composite
// or routing), or nil.
func firstRoutingTag(md []byte, routingOnly bool) []byte {
	if md == nil {
		return nil
	}
	if !routingOnly {
		v, ok := extension.FindComposite(md, extension.MimeRouting)
		if !ok {
			return nil
		}
		md = v
	}
	t, err := extension.FirstRoutingTag(md)
	if err != nil {
		return nil
	}
	return t
}

// wsSession is a running WebSocket session, closed by Shutdown.
type wsSession interface {
	shutdown()
}

// wsRegistry tracks one Server's WebSocket sessions: fasthttp forgets hijacked connections, so its
// Shutdown neither waits for them nor closes them. Server.Shutdown calls closeWebSockets, which closes
// every session with 1001 (their backend streams are canceled) and refuses new ones.
type wsRegistry struct {
	mu       sync.Mutex
	sessions map[wsSession]struct{}
	stopped  bool
}

// wsRegistries maps *Server to its *wsRegistry (kept out of Server so that WebSocket support stays in
// the ws_ files).
var wsRegistries sync.Map

func (s *Server) wsRegistry() *wsRegistry {
	if r, ok := wsRegistries.Load(s); ok {
		return r.(*wsRegistry)
	}
	r, _ := wsRegistries.LoadOrStore(s, &wsRegistry{sessions: map[wsSession]struct{}{}})
	return r.(*wsRegistry)
}

// closeWebSockets ends every WebSocket session (Shutdown): long-lived sessions never drain by themselves,
// so they are closed at the start of the grace period with 1001 "going away" and clients reconnect.
func (s *Server) closeWebSockets() {
	reg := s.wsRegistry()
	reg.mu.Lock()
	reg.stopped = true
	all := make([]wsSession, 0, len(reg.sessions))
	for ss := range reg.sessions {
		all = append(all, ss)
	}
	reg.mu.Unlock()
	// In parallel: each waits for its close frame or connection end (bounded by wsWriteWait and the
	// rsocket core's close flush timeout).
	var wg sync.WaitGroup
	for _, ss := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ss.shutdown()
		}()
	}
	wg.Wait()
}

// add registers ss; it reports false when the server is shutting down (ss must end at once).
func (r *wsRegistry) add(ss wsSession) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return false
	}
	r.sessions[ss] = struct{}{}
	return true
}

func (r *wsRegistry) remove(ss wsSession) {
	r.mu.Lock()
	delete(r.sessions, ss)
	r.mu.Unlock()
}

// wsSessionCount is the number of WebSocket sessions running on s.
func (s *Server) wsSessionCount() int {
	r := s.wsRegistry()
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sessions)
}
