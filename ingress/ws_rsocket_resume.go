package ingress

import (
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket"
)

// Client resumption on rsocket routes (rsocket.resume). A client whose SETUP carries the R flag and a
// resume token (rsocket-js 1.0 with its resume option) gets a resumable session: when its WebSocket is cut,
// the session stays in the route's rsocket.Sessions for session_duration, with its streams to the backends
// still open (items the backend sends meanwhile wait in the session's queue, within the credit the client
// granted). When the client reconnects and sends RESUME with its token, the new socket carries the same
// session and both sides send again what the other missed. An unknown or expired token, or a position no
// longer held, gets ERROR[REJECTED_RESUME]. Sessions live in one gateway process and one configuration
// generation: behind several replicas, route the WebSocket by a sticky key (the README explains how); a
// RESUME reaching another replica, or arriving after a reload, is rejected cleanly and the client starts
// a new session. rsocket-js 1.0 sends RESUME with version 0.1 (major and minor swapped): accepted.

// clientResumeSessions returns the session table of an rsocket route with rsocket.resume, else nil.
func clientResumeSessions(cr *mapping.CompiledRoute) *rsocket.Sessions {
	if cr.RSocket == nil || cr.RSocket.Resume == nil {
		return nil
	}
	r := cr.RSocket.Resume.Defaulted()
	return rsocket.NewSessions(rsocket.ResumeOptions{
		Enabled:         true,
		SessionDuration: r.SessionDuration.D(),
		BufferSize:      r.Buffer,
	})
}

// resumeOptions adds the route's resumption to the client connection's server options.
func (w *wsRoute) resumeOptions(o rsocket.ServerOptions) rsocket.ServerOptions {
	if w.resume != nil {
		o.Resume = rsocket.ResumeOptions{Enabled: true}
		o.Sessions = w.resume
	}
	return o
}
