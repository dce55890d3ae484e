package ingress

import (
	"sync"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

// websocket.max_sessions: the WebSocket sessions of one route are counted from the upgrade check until
// the session ends; an upgrade beyond the route's limit gets 503 TOO_MANY_SESSIONS with Retry-After: 1
// before any upgrade. The count is kept per server and route name, so it survives reloads (sessions keep
// running across them); a reload that lowers the limit refuses new upgrades until enough sessions end.

// CodeTooManySessions is the JSON error code of an upgrade refused by websocket.max_sessions (503).
const CodeTooManySessions = "TOO_MANY_SESSIONS"

// sessionCounts maps sessionKey to *atomic.Int64.
var sessionCounts sync.Map

type sessionKey struct {
	s     *Server
	route string
}

func (s *Server) sessionCounter(route string) *atomic.Int64 {
	k := sessionKey{s, route}
	if v, ok := sessionCounts.Load(k); ok {
		return v.(*atomic.Int64)
	}
	v, _ := sessionCounts.LoadOrStore(k, new(atomic.Int64))
	return v.(*atomic.Int64)
}

// sessionSlot is one counted session; release is idempotent and nil-safe.
type sessionSlot struct {
	n    *atomic.Int64
	done atomic.Bool
}

func (sl *sessionSlot) release() {
	if sl != nil && sl.done.CompareAndSwap(false, true) {
		sl.n.Add(-1)
	}
}

// reserveSession counts a new session of rt, or answers 503 when the route is at websocket.max_sessions.
func (s *Server) reserveSession(ctx *fasthttp.RequestCtx, rt *route) (*sessionSlot, bool) {
	n := s.sessionCounter(rt.name)
	if v := n.Add(1); rt.ws.maxSessions > 0 && v > int64(rt.ws.maxSessions) {
		n.Add(-1)
		ctx.Response.Header.SetBytesKV(strRetryAfter, []byte("1"))
		writeJSONError(ctx, fasthttp.StatusServiceUnavailable, "too many WebSocket sessions on this route", CodeTooManySessions, nil)
		return nil, false
	}
	return &sessionSlot{n: n}, true
}

// routeSessions is the number of sessions counted for the route (tests).
func (s *Server) routeSessions(route string) int64 { return s.sessionCounter(route).Load() }
