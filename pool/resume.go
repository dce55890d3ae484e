package pool

import (
	"context"

	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/transport"
)

// Resumption (backend "resume" section). Each connection of a resumable backend is an RSocket session
// with its own random resume token. When the transport is cut, the session (rsocket.Conn) stays open and
// re-dials the same endpoint by itself (with back-off, for resume.session_duration), sends RESUME and
// continues: the pool sees no disconnect, and requests and streams in flight complete. Requests picked
// meanwhile are queued in the session and go out after the resume. When the backend refuses the resume
// (or the session duration passes), the session ends like any lost connection: its streams fail with an
// error matching rsocket.ErrResumeRejected or rsocket.ErrResumeExpired (and rsocket.ErrClosed), and the
// slot's reconnect loop opens a new session for new requests.

// dialTransport opens a transport to ep.
func (p *Pool) dialTransport(ctx context.Context, ep *endpoint) (transport.Conn, error) {
	switch {
	case p.opts.Dialer != nil:
		return p.opts.Dialer(ctx, ep.dialAddr)
	case p.websocket:
		return transport.DialWebSocket(ctx, ep.dialAddr, ep.tls, ep.header)
	default:
		return transport.DialTCP(ctx, ep.dialAddr, ep.tls)
	}
}

// sessionOptions returns the rsocket options for a new connection to ep: with resumption, a Dial that
// re-dials ep (each attempt bounded by dial_timeout).
func (p *Pool) sessionOptions(ep *endpoint) rsocket.Options {
	o := p.rsOpts
	r := p.backend.Resume
	if !r.Enabled {
		return o
	}
	timeout := p.backend.DialTimeout.D()
	o.Resume = rsocket.ResumeOptions{
		Enabled:         true,
		SessionDuration: r.SessionDuration.D(),
		BufferSize:      r.Buffer,
		Dial: func(ctx context.Context) (transport.Conn, error) {
			dctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			return p.dialTransport(dctx, ep)
		},
	}
	return o
}
