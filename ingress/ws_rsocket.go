package ingress

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/rsgate/rsgate/internal/auth"
	"github.com/rsgate/rsgate/pool"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/extension"
	"github.com/rsgate/rsgate/rsocket/frame"
	"github.com/rsgate/rsgate/rsocket/transport"
)

// Interaction rsocket: the client (rsocket-js in a browser) speaks RSocket over the WebSocket, one frame
// per binary message. The gateway accepts its SETUP and relays each of its streams onto the backend's
// pooled connections, one backend stream per client stream:
//
//   - request-response, fire-and-forget, request-stream, request-channel and metadata push are relayed;
//     payload metadata and data pass through byte for byte (the client should use the backend's
//     metadata and data MIME types; the gateway does not translate).
//   - Credit passes through: the client's initial N and REQUEST_N go to the backend, the backend's
//     REQUEST_N on a channel goes to the client, one to one for grants up to relayWindow (64) items
//     outstanding; larger grants (up to unbounded) are passed on in steps as items are forwarded and the
//     receiving connection's write queue has room. PAYLOADs are forwarded without waiting, so the gateway
//     holds at most what the client asked for, and never more than a window plus a write queue. CANCEL
//     and ERROR are relayed both ways.
//   - Backend: the route's backend, or the backend that rsocket.routes names for the request's first
//     routing tag (read from composite metadata, or from routing metadata when the client's SETUP says
//     message/x.rsocket.routing.v0). Metadata push goes to the route's backend.
//   - Limits per socket: rsocket.max_streams (else Options.RSocketMaxStreams) concurrent streams (ERROR[REJECTED] beyond), frames up
//     to websocket.max_message bytes (a larger frame closes the socket with 1009), the Origin allow-list,
//     ping every websocket.ping_interval. Liveness otherwise comes from RSocket KEEPALIVE and the
//     client's max lifetime; websocket.idle_timeout does not apply (keepalives are messages).
//   - A SETUP asking for leases (L flag) gets LEASEs sized from the backend's capacity (ws_lease.go).
//     Resumption (R flag) is refused with ERROR[REJECTED_SETUP] unless the route has rsocket.resume
//     (ws_rsocket_resume.go).
//   - Route auth (auth.go, ws_rsocket_trust.go): the token from the upgrade, or from the SETUP's bearer entry;
//     the route's allow list, reserved client metadata and the principal entry: ws_rsocket_trust.go.
//     Options.RSocketAuthenticate, when set, then sees every SETUP (its metadata and data) and may reject it
//     (ERROR[REJECTED_SETUP]); BearerTokens builds one that checks a bearer token in composite metadata.
//
// Errors the gateway makes itself: no backend connection -> ERROR[REJECTED] "rsgate: ..."; a backend
// connection lost mid-stream -> ERROR[APPLICATION_ERROR] "rsgate: backend connection lost".

// RSocketAuthenticator checks the SETUP of a client of an rsocket route. route is the route's name. A
// non-nil error rejects the connection with ERROR[REJECTED_SETUP] carrying the error's message (or the
// *rsocket.Error returned as is, when it has a setup code).
type RSocketAuthenticator func(route string, setup *rsocket.SetupInfo) error

// ErrUnauthenticated is returned by the authenticator BearerTokens builds.
var ErrUnauthenticated = errors.New("missing or unknown bearer token")

// BearerTokens returns an RSocketAuthenticator that accepts a SETUP whose composite metadata holds an
// authentication entry (message/x.rsocket.authentication.v0) with a bearer token from tokens.
func BearerTokens(tokens ...string) RSocketAuthenticator {
	set := make(map[string]struct{}, len(tokens))
	for _, t := range tokens {
		set[t] = struct{}{}
	}
	return func(_ string, setup *rsocket.SetupInfo) error {
		v, ok := extension.FindComposite(setup.Payload.Metadata, extension.MimeAuth)
		if !ok {
			return ErrUnauthenticated
		}
		a, err := extension.ParseAuth(v)
		if err != nil {
			return ErrUnauthenticated
		}
		tok, err := a.Bearer()
		if err != nil {
			return ErrUnauthenticated
		}
		if _, ok := set[string(tok)]; !ok {
			return ErrUnauthenticated
		}
		return nil
	}
}

// serveRSocket checks the Origin and upgrades; the RSocket session runs after the handler returns.
func (s *Server) serveRSocket(ctx *fasthttp.RequestCtx, rt *route) int {
	w := rt.ws
	if status, ok := w.checkUpgrade(ctx); !ok {
		return status
	}
	slot, ok := s.reserveSession(ctx, rt) // websocket.max_sessions (ws_sessions.go)
	if !ok {
		return fasthttp.StatusServiceUnavailable
	}
	// id: verified on the upgrade (auth.go), or nil
	sess := &rsSession{s: s, rt: rt, slot: slot, bucket: rt.wsLimit.bucket(), id: IdentityOf(ctx), cert: s.clientCertEntry(ctx)}
	if err := w.upgrader.Upgrade(ctx, sess.run); err != nil || ctx.Response.StatusCode() != fasthttp.StatusSwitchingProtocols {
		slot.release() // a failed upgrade has answered the request itself
	}
	return ctx.Response.StatusCode()
}

// rsSession is one client RSocket connection relayed to the backends. The upgrade handler (run) runs the
// handshake and returns once the connection is established: the RSocket connection's own goroutines carry
// the session from then on, and the server keeps hijacked connections, so the socket is ours to close.
// The session ends when the RSocket connection closes its transport (rsTransport.Close).
type rsSession struct {
	s             *Server
	rt            *route
	ws            *websocket.Conn
	tc            *transport.WebSocketConn
	conn          *rsocket.Conn  // the client connection (we are its server), once Accept returned
	client        *rsocket.Conn  // the same, set by the acceptor (for the handler methods)
	routing       bool           // the client's metadata is routing metadata, not composite
	leased        bool           // the client's SETUP set L: it gets leases (ws_lease.go)
	id            *auth.Identity // verified client identity (upgrade or SETUP); nil: none (ws_rsocket_trust.go)
	cert          []byte         // the connection's mTLS principal entry, used when id is nil (tls_principal.go)
	maxStreams    int32
	bucket        *sessionBucket // websocket.rate_limit: new requests of this session (ratelimit.go)
	active        atomic.Int32
	ping          *time.Timer
	endOnce       sync.Once
	mu            sync.Mutex
	closed        bool
	over          bool         // the session ended (the socket is closed); guarded by mu
	slot          *sessionSlot // websocket.max_sessions; released by end (ws_sessions.go)
	violationFlag              // a protocol violation is closing the connection (ws_rsocket_strict.go)
}

// shutdown implements wsSession.
func (ss *rsSession) shutdown() {
	ss.mu.Lock()
	if ss.over {
		ss.mu.Unlock()
		return
	}
	ss.closed = true
	c, tc := ss.conn, ss.tc
	ss.mu.Unlock()
	if c != nil {
		_ = c.CloseWithError(frame.CodeConnectionClose, "gateway shutting down")
	} else if tc != nil {
		_ = tc.Close()
	}
}

// run is the upgrade handler: the handshake, then it returns (the session goes on without it).
func (ss *rsSession) run(ws *websocket.Conn) {
	s, w := ss.s, ss.rt.ws
	ss.ws = ws
	ss.maxStreams = int32(s.opts.RSocketMaxStreams)
	if p := ss.rt.rsp; p != nil && p.maxStreams > 0 { // rsocket.max_streams
		ss.maxStreams = int32(p.maxStreams)
	}
	if ss.maxStreams <= 0 {
		ss.maxStreams = DefaultRSocketMaxStreams
	}
	tc := transport.NewWebSocketConnWith(ws, transport.Options{MaxFrameLen: w.maxMessage})
	ss.mu.Lock()
	ss.tc = tc // before the registry entry: shutdown closes it
	ss.mu.Unlock()
	if !s.wsRegistry().add(ss) {
		ss.slot.release()
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(closeGoingAway, "gateway shutting down"), time.Now().Add(wsWriteWait))
		_ = tc.Close()
		return
	}
	w.sessionStarted()
	ss.mu.Lock()
	if w.pingInterval > 0 {
		ss.ping = time.AfterFunc(w.pingInterval, ss.sendPing)
	}
	ss.mu.Unlock()
	c, err := rsocket.Accept(context.Background(), &rsTransport{WebSocketConn: tc, ss: ss}, w.resumeOptions(rsocket.ServerOptions{
		MaxReassembledSize: w.maxMessage,
		Logger:             s.log,
	}), ss.accept)
	if errors.Is(err, rsocket.ErrResumed) {
		err = nil // a resumed session (ws_rsocket_resume.go): this socket now carries it
	}
	if err != nil {
		if ce := s.log.Check(zap.DebugLevel, "rsocket client handshake failed"); ce != nil {
			ce.Write(zap.String("route", ss.rt.name), zap.Error(err))
		}
		return // Accept closed the transport: the session has ended
	}
	ss.mu.Lock()
	ss.conn = c
	closed := ss.closed
	ss.mu.Unlock()
	if ss.leased {
		ss.startLeases(c)
	}
	if closed {
		_ = c.CloseWithError(frame.CodeConnectionClose, "gateway shutting down")
	}
}

// sendPing is the ping timer's function (websocket.ping_interval).
func (ss *rsSession) sendPing() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if !ss.over && ss.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(wsWriteWait)) == nil {
		ss.ping.Reset(ss.rt.ws.pingInterval)
	}
}

// end runs once, when the transport is closed (the RSocket connection ended, or the handshake failed).
func (ss *rsSession) end() {
	ss.endOnce.Do(func() {
		ss.mu.Lock()
		ss.over = true
		if ss.ping != nil {
			ss.ping.Stop()
		}
		ss.mu.Unlock()
		ss.s.wsRegistry().remove(ss)
		ss.rt.ws.sessionEnded()
		ss.slot.release()
	})
}

// rsTransport is the client socket as the RSocket connection sees it. It notes why reading stopped, so that
// Close can send the matching close code (1003 for a text message, 1009 for a frame over
// websocket.max_message) before the normal closure, and it ends the session when the connection closes it.
type rsTransport struct {
	*transport.WebSocketConn
	ss        *rsSession
	closeCode atomic.Int32 // 0: normal closure
	closeMsg  atomic.Pointer[string]
}

func (t *rsTransport) ReadFrame() ([]byte, error) {
	b, err := t.WebSocketConn.ReadFrame()
	for err == nil && t.ss.screen(b) == frameDrop { // protocol strictness (ws_rsocket_strict.go)
		b, err = t.WebSocketConn.ReadFrame()
	}
	if err != nil && t.closeCode.Load() == 0 {
		code := 0
		switch {
		case errors.Is(err, transport.ErrTextMessage):
			code = closeUnsupported
		case isFrameSize(err):
			code = closeTooBig
		}
		if code != 0 {
			msg := closeReason(err.Error())
			t.closeMsg.Store(&msg)
			t.closeCode.Store(int32(code))
		}
	}
	return b, err
}

func (t *rsTransport) Close() error {
	if code := t.closeCode.Load(); code != 0 {
		_ = t.ss.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(int(code), *t.closeMsg.Load()), time.Now().Add(wsWriteWait))
	}
	err := t.WebSocketConn.Close()
	t.ss.end()
	return err
}

func isFrameSize(err error) bool {
	var fe *transport.FrameSizeError
	return errors.As(err, &fe)
}

// accept is the Acceptor of the client's SETUP.
func (ss *rsSession) accept(setup *rsocket.SetupInfo, c *rsocket.Conn) (rsocket.Handler, error) {
	ss.leased = setup.Lease                      // the gateway issues leases sized from the backend's capacity (ws_lease.go)
	if err := ss.checkSetup(setup); err != nil { // metadata MIME, reserved entries, auth (ws_rsocket_trust.go)
		return nil, err
	}
	if auth := ss.s.opts.RSocketAuthenticate; auth != nil {
		if err := auth(ss.rt.name, setup); err != nil {
			return nil, err
		}
	}
	ss.routing = setup.MetadataMIME == extension.MimeRouting
	ss.client = c // before any request: the reader starts after the acceptor returns
	return ss, nil
}

// pick chooses the backend connection for a request with metadata md.
// session: a relayed stream or channel (pool.PickSession, ended with DoneSession).
func (ss *rsSession) pick(md []byte, session bool) (*pool.Member, *rsocket.Conn, error) {
	name := ss.rt.ws.backendFor(firstRoutingTag(md, ss.routing), ss.rt.backend)
	p := ss.s.pools.Get(name)
	if p == nil {
		return nil, nil, &rsocket.Error{Code: frame.CodeRejected, Message: "rsgate: backend " + name + " has no connection pool"}
	}
	var m *pool.Member
	var err error
	if session {
		m, err = p.PickSession()
	} else {
		m, err = p.Pick()
	}
	if err != nil {
		return nil, nil, &rsocket.Error{Code: frame.CodeRejected, Message: "rsgate: " + err.Error()}
	}
	c := m.Conn()
	if c == nil {
		if session {
			m.DoneSession(time.Now(), rsocket.ErrClosed)
		} else {
			m.Done(time.Now(), rsocket.ErrClosed)
		}
		return nil, nil, &rsocket.Error{Code: frame.CodeRejected, Message: "rsgate: backend connection not ready"}
	}
	return m, c, nil
}

// begin checks the session's rate limit and the request's metadata (allow list, reserved entries, identity:
// ws_rsocket_trust.go; the metadata to relay replaces req.Metadata), reserves a stream slot and picks the
// backend. false: st was ended with the rejection and holds no slot.
func (ss *rsSession) begin(st *rsocket.Stream, req *rsocket.Payload, session bool) (*pool.Member, *rsocket.Conn, bool) {
	if !ss.bucket.allow() {
		_ = st.Error(frame.CodeRejected, msgSessionRateLimited)
		return nil, nil, false
	}
	md, err := ss.admit(req.Metadata, false)
	if err != nil {
		relayError(st, err)
		return nil, nil, false
	}
	req.Metadata = md
	if ss.active.Add(1) > ss.maxStreams {
		ss.active.Add(-1)
		_ = st.Error(frame.CodeRejected, "rsgate: too many concurrent streams on this connection")
		return nil, nil, false
	}
	m, bc, err := ss.pick(md, session)
	if err != nil {
		ss.active.Add(-1)
		relayError(st, err)
		return nil, nil, false
	}
	return m, bc, true
}

// relayError ends the client's stream st with the backend's error.
func relayError(st *rsocket.Stream, err error) {
	var re *rsocket.Error
	switch {
	case errors.As(err, &re) && !errors.Is(err, rsocket.ErrClosed):
		_ = st.Error(re.Code, re.Message)
	case errors.Is(err, rsocket.ErrCanceled):
		st.Cancel()
	case errors.Is(err, rsocket.ErrClosed):
		_ = st.Error(frame.CodeApplicationError, "rsgate: backend connection lost")
	default:
		_ = st.Error(frame.CodeApplicationError, "rsgate: "+err.Error())
	}
}

// FireAndForget implements rsocket.Handler.
func (ss *rsSession) FireAndForget(req rsocket.Payload) {
	if !ss.bucket.allow() {
		return // no stream to answer on: dropped (counted in rsgate_ws_rate_limited_total)
	}
	md, err := ss.admit(req.Metadata, false)
	if err != nil {
		return // refused: no stream to answer on
	}
	req.Metadata = md
	m, bc, err := ss.pick(req.Metadata, false)
	if err != nil {
		return
	}
	p := copyRSPayload(req)
	go func() {
		start := time.Now()
		_, err := bc.FireAndForget(context.Background(), p, rsocket.FireAndForgetOptions{})
		m.Done(start, err)
	}()
}

// MetadataPush implements rsocket.Handler: sent on one connection of the route's backend.
func (ss *rsSession) MetadataPush(md []byte) {
	md, err := ss.admit(md, true)
	if err != nil || md == nil {
		return // refused (client_metadata: reject, malformed), or nothing left to push
	}
	p := ss.s.pools.Get(ss.rt.backend)
	if p == nil {
		return
	}
	m, err := p.Pick()
	if err != nil {
		return
	}
	start := time.Now()
	var perr error = rsocket.ErrClosed
	if c := m.Conn(); c != nil {
		perr = c.MetadataPush(md)
	}
	m.Done(start, perr)
}

// RequestResponse implements rsocket.Handler.
func (ss *rsSession) RequestResponse(req rsocket.Payload, st *rsocket.Stream) {
	m, bc, ok := ss.begin(st, &req, false)
	if !ok {
		return
	}
	p := copyRSPayload(req)
	go func() {
		defer ss.active.Add(-1)
		start := time.Now()
		msg, _, err := bc.RequestResponse(streamContext{st}, p)
		m.Done(start, countsAgainstBackend(err))
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				relayError(st, err)
			}
			return
		}
		_ = st.Respond(msg.Payload)
		msg.Release()
	}()
}

// RequestStream implements rsocket.Handler.
func (ss *rsSession) RequestStream(req rsocket.Payload, initialN uint32, st *rsocket.Stream) {
	m, bc, ok := ss.begin(st, &req, true)
	if !ok {
		return
	}
	down := newValve(st, ss.client)
	start := time.Now()
	bs, err := bc.RequestStream(req, down.initial(), toClient{forwarder{down}})
	if err != nil {
		ss.active.Add(-1)
		m.DoneSession(start, err)
		relayError(st, err)
		return
	}
	down.requestOn = bs
	go ss.pump(st, bs, down, nil, m, start)
}

// RequestChannel implements rsocket.Handler.
func (ss *rsSession) RequestChannel(req rsocket.Payload, initialN uint32, complete bool, st *rsocket.Stream) rsocket.Subscriber {
	m, bc, ok := ss.begin(st, &req, true)
	if !ok {
		return nil
	}
	down := newValve(st, ss.client)
	start := time.Now()
	bs, err := bc.RequestChannel(req, down.initial(), complete, toClient{forwarder{down}})
	if err != nil {
		ss.active.Add(-1)
		m.DoneSession(start, err)
		relayError(st, err)
		return nil
	}
	down.requestOn = bs
	up := newValve(bs, bc)
	up.requestOn = st
	go ss.pump(st, bs, down, up, m, start)
	return toBackend{forwarder{up}, ss}
}

// relayWindow bounds the credit a relayed stream passes on beyond the items it has forwarded: a grant up to
// it passes on at once (1:1), a larger one (up to unbounded, which rsocket-js clients often ask for) in
// steps as items are forwarded and the receiving connection's write queue has room. So a client that asks
// for everything and stops reading holds at most relayWindow items plus one write queue (1 MiB) of its
// stream's data in the gateway.
const relayWindow = 64

// valve passes the credit a peer grants on stream grantOn to the other side's stream requestOn (where the
// items come from), within relayWindow. Only the pump goroutine uses it, except onForward.
type valve struct {
	grantOn   *rsocket.Stream // the peer grants credit here; items are forwarded on it
	requestOn *rsocket.Stream // we grant credit here
	queue     *rsocket.Conn   // grantOn's connection: forwarded items wait in its write queue
	pending   uint64          // granted by the peer, not passed on yet
	unbounded bool            // the peer granted 2^31-1 in total
	passed    uint64          // passed on to requestOn
	forwarded atomic.Uint64   // items forwarded on grantOn
	moved     chan struct{}   // 1 slot: an item was forwarded
}

func newValve(grantOn *rsocket.Stream, queue *rsocket.Conn) *valve {
	return &valve{grantOn: grantOn, queue: queue, moved: make(chan struct{}, 1)}
}

// take collects the credit the peer granted since the last call.
func (v *valve) take() {
	switch n := v.grantOn.Relay().TakeCredit(); {
	case n == frame.MaxRequestN:
		v.unbounded = true
	default:
		v.pending += uint64(n)
	}
}

// initial takes the peer's initial N and returns the part to send as the other side's initial N (> 0).
func (v *valve) initial() uint32 {
	v.take()
	n := v.next()
	if n == 0 {
		n = 1 // the initial N is at least 1 (a stream request always carries one)
	}
	v.commit(n)
	return n
}

// next is how much to pass on now: nothing while half a window is outstanding.
func (v *valve) next() uint32 {
	if !v.unbounded && v.pending == 0 {
		return 0
	}
	out := uint64(0)
	if f := v.forwarded.Load(); v.passed > f {
		out = v.passed - f
	}
	if out >= relayWindow/2 && out > 0 {
		return 0
	}
	n := relayWindow - out
	if !v.unbounded && v.pending < n {
		n = v.pending
	}
	return uint32(n)
}

func (v *valve) commit(n uint32) {
	v.passed += uint64(n)
	if !v.unbounded {
		v.pending -= min(uint64(n), v.pending)
	}
}

// passOn grants requestOn what next allows, once grantOn's connection has queue room (bounded by ctx).
func (v *valve) passOn(ctx context.Context) {
	n := v.next()
	if n == 0 {
		return
	}
	if err := v.queue.WaitQueueSpace(ctx); err != nil {
		return
	}
	v.commit(n)
	v.requestOn.Request(n)
}

// onForward counts a forwarded item (reader goroutine of the items' source).
func (v *valve) onForward() {
	v.forwarded.Add(1)
	select {
	case v.moved <- struct{}{}:
	default:
	}
}

// pump passes credit between the client's stream st and the backend's stream bs (down: client credit to
// the backend; up, for channels: backend credit to the client) until st ends, then cancels bs if it is
// still open and releases the pool slot.
func (ss *rsSession) pump(st, bs *rsocket.Stream, down, up *valve, m *pool.Member, start time.Time) {
	defer ss.active.Add(-1)
	ctx := streamContext{st}
	clientCredit := st.Relay().CreditNotify()
	var backendCredit, upMoved <-chan struct{}
	if up != nil {
		backendCredit, upMoved = bs.Relay().CreditNotify(), up.moved
	}
	stDone, bsDone := st.Done(), bs.Done()
	for {
		select {
		case <-clientCredit:
			down.take()
			down.passOn(ctx)
		case <-down.moved:
			down.passOn(ctx)
		case <-backendCredit:
			up.take()
			up.passOn(ctx)
		case <-upMoved:
			up.passOn(ctx)
		case <-bsDone:
			bsDone = nil
			if err := bs.Err(); err != nil && !errors.Is(err, rsocket.ErrCanceled) {
				relayError(st, err) // no-op when the subscriber already relayed it
			}
		case <-stDone:
			canceled := !isDone(bs)
			bs.Cancel()
			var merr error
			if canceled {
				merr = rsocket.ErrCanceled
			} else {
				merr = countsAgainstBackend(bs.Err())
			}
			m.DoneSession(start, merr)
			return
		}
	}
}

func isDone(s *rsocket.Stream) bool {
	select {
	case <-s.Done():
		return true
	default:
		return false
	}
}

// forwarder relays the items and the completion it receives onto v.grantOn (the stream whose peer granted
// the credit for them) and counts each forwarded item in v. toClient and toBackend add how an error is
// relayed.
type forwarder struct{ v *valve }

func (f forwarder) OnNext(p rsocket.Payload, complete bool) {
	if f.v.grantOn.Relay().Forward(p, complete) == nil {
		f.v.onForward()
	}
}
func (f forwarder) OnComplete() { _ = f.v.grantOn.Complete() }

// toClient forwards the backend's items and end to the client's stream (backend reader goroutine).
type toClient struct{ forwarder }

func (t toClient) OnError(err error) { relayError(t.v.grantOn, err) }

// toBackend forwards the client's channel items and end to the backend's stream (client reader goroutine).
type toBackend struct {
	forwarder
	ss *rsSession // its OnNext filters the items' metadata (ws_rsocket_trust.go)
}

func (t toBackend) OnError(err error) {
	var re *rsocket.Error
	if errors.As(err, &re) && !errors.Is(err, rsocket.ErrClosed) {
		_ = t.v.grantOn.Error(re.Code, re.Message)
		return
	}
	t.v.grantOn.Cancel()
}

// streamContext is a context.Context that ends when the client's stream ends (its CANCEL, or the end of
// its connection): the backend request-response is then canceled.
type streamContext struct{ st *rsocket.Stream }

func (c streamContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c streamContext) Done() <-chan struct{}       { return c.st.Done() }
func (c streamContext) Value(any) any               { return nil }
func (c streamContext) Err() error {
	if isDone(c.st) {
		return context.Canceled
	}
	return nil
}

// copyRSPayload copies p (handler payloads are valid only during the call).
func copyRSPayload(p rsocket.Payload) rsocket.Payload {
	var out rsocket.Payload
	if p.Metadata != nil {
		out.Metadata = append(make([]byte, 0, len(p.Metadata)), p.Metadata...)
	}
	out.Data = append([]byte(nil), p.Data...)
	return out
}
