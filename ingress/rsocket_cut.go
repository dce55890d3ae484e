package ingress

import (
	"strconv"

	"github.com/valyala/fasthttp"
)

// Server-side cuts of /rsocket clients, for demonstrating and testing client resumption (rsocket.resume):
// the admin listener's POST /debug/cut-clients and, with `gateway -demo` only, the demo page's
// "cut connection" button call CutRSocketClients. A cut closes the client's TCP connection at once (reset,
// no WebSocket close frame, no RSocket ERROR): to the client and to the session it looks like a network
// failure. A resumable session (the client's SETUP set R on a route with rsocket.resume) is left detached
// with its upstream streams open, waiting for the client's RESUME for session_duration; any other session
// ends as on a lost connection (its backend streams are canceled). Each cut counts in
// rsgate_rsocket_clients_cut_total{route}.

// CutRSocketClients abruptly closes the WebSocket connection of every client of an `interaction: rsocket`
// route, or of the route named route when it is not empty, and returns how many it closed. Sessions whose
// socket is already gone (a resumable session waiting for its client) have nothing to cut.
func (s *Server) CutRSocketClients(route string) int {
	reg := s.wsRegistry()
	reg.mu.Lock()
	var cut []*rsSession
	for ws := range reg.sessions {
		if ss, ok := ws.(*rsSession); ok && (route == "" || ss.rt.name == route) {
			cut = append(cut, ss)
		}
	}
	reg.mu.Unlock()
	n := 0
	for _, ss := range cut {
		if ss.cut() {
			n++
			if s.set != nil {
				s.set.GetOrCreateCounter(`rsgate_rsocket_clients_cut_total{route="` + ss.rt.name + `"}`).Inc()
			}
		}
	}
	return n
}

// cut closes the session's socket without a close handshake (a TCP reset where the connection allows it);
// the RSocket reader and writer then fail as on a network cut. false: the session had already ended.
func (ss *rsSession) cut() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.over || ss.ws == nil {
		return false
	}
	nc := ss.ws.NetConn()
	setLingerZero(nc)
	_ = nc.Close() // the outermost wrapper: it also frees the max_connections slot
	return true
}

// CutClientsHandler answers POST with CutRSocketClients(the "route" query argument, empty: every rsocket
// route) and the JSON object {"cut": N}; other methods get 405 with Allow: POST. It carries no access
// control of its own: the admin listener mounts it at /debug/cut-clients behind its guard (token, Host,
// Origin), and the demo page's button reaches it only in `gateway -demo` (internal/webdemo).
func (s *Server) CutClientsHandler(ctx *fasthttp.RequestCtx) {
	if !ctx.IsPost() {
		ctx.Response.Header.Set(fasthttp.HeaderAllow, fasthttp.MethodPost)
		writeJSONError(ctx, fasthttp.StatusMethodNotAllowed, "use POST", CodeMethodNotAllowed, nil)
		return
	}
	n := s.CutRSocketClients(string(ctx.QueryArgs().Peek("route")))
	ctx.SetContentType("application/json")
	ctx.SetBodyString(`{"cut": ` + strconv.Itoa(n) + "}\n")
}
