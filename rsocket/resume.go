package rsocket

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/rsgate/rsgate/rsocket/frame"
	"github.com/rsgate/rsgate/rsocket/transport"
)

// Resumption ("Resuming Operation" in the spec). A resumable session survives the loss of its
// transport: the client sends SETUP with the R flag and a resume token; both sides count the bytes of the
// frames that matter for resumption (frame.CountsForResume: REQUEST_*, REQUEST_N, CANCEL, ERROR, PAYLOAD,
// after fragmentation, without length prefix), keep what they sent in a bounded resume buffer until the
// peer confirms it (KEEPALIVE carries the last received position), and when the transport is lost the
// session detaches instead of ending. The client dials again (ResumeOptions.Dial) and sends RESUME with
// its token, its last received server position and its first available client position; the server
// finds the detached session by token (Sessions) and answers RESUME_OK with its last received client
// position, or ERROR[REJECTED_RESUME] when it cannot continue (unknown or expired token, a position no
// longer in its buffer). Then each side sends again what the other has not received, in the original
// order, and the session goes on: streams and request-response calls in flight complete, nothing is lost
// or duplicated. A session that stays detached for SessionDuration ends with ErrResumeExpired.
//
// rsocket-js 1.0 writes the version in RESUME with major and minor swapped (it sends 0.1): the server
// accepts 0.1 as 1.0.

// Defaults of ResumeOptions.
const (
	DefaultResumeSessionDuration = time.Minute
	DefaultResumeBufferSize      = 1 << 20
	DefaultResumeMaxSessions     = 10000
	// resumeHandshakeTimeout bounds the wait for RESUME_OK.
	resumeHandshakeTimeout = 10 * time.Second
)

// ResumeOptions configures resumption (Options.Resume on the client, ServerOptions.Resume on the
// server).
type ResumeOptions struct {
	// Enabled turns resumption on. Client: SETUP carries the R flag and Token. Server: SETUP with R is
	// accepted (without it, refused with REJECTED_SETUP) and RESUME is served from Sessions.
	Enabled bool
	// Token identifies the session (client; sent in SETUP). nil: 16 random bytes.
	Token []byte
	// SessionDuration is how long a detached session is kept for a resume. Default 1 minute.
	SessionDuration time.Duration
	// BufferSize bounds the bytes of sent, unconfirmed frames kept for retransmission. Default 1 MiB.
	BufferSize int
	// Dial opens a new transport to the same server (client; required with Enabled). It is called
	// after the transport was lost, with back-off, until a resume succeeds, is refused, or
	// SessionDuration passes.
	Dial func(ctx context.Context) (transport.Conn, error)
	// MaxSessions bounds the resumable sessions a server keeps (server). When full, the oldest detached
	// session is dropped for a new one; with none detached the SETUP is refused (REJECTED_SETUP).
	// Default 10000.
	MaxSessions int
}

func (o ResumeOptions) normalized() ResumeOptions {
	if o.SessionDuration <= 0 {
		o.SessionDuration = DefaultResumeSessionDuration
	}
	if o.BufferSize <= 0 {
		o.BufferSize = DefaultResumeBufferSize
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = DefaultResumeMaxSessions
	}
	return o
}

// resumeState is the resumption part of a session.
type resumeState struct {
	opts    ResumeOptions
	token   []byte
	store   *Sessions // server side
	recvPos atomic.Uint64
	buf     resumeBuffer
	asked   atomic.Bool // a KEEPALIVE(R) asking the peer's position is out

	handover   sync.Mutex // serializes server-side resumes of the session (resumeServer)
	mu         sync.Mutex // serializes resumes; guards the fields below
	stopped    bool
	expiry     *time.Timer
	cmu        sync.Mutex         // guards cancelDial alone: stop cancels a resume handshake in progress
	cancelDial context.CancelFunc // (which holds mu) without waiting for it
	detachedAt time.Time
}

func newClientResume(o ResumeOptions) (*resumeState, error) {
	o = o.normalized()
	if o.Dial == nil {
		return nil, errors.New("rsocket: ResumeOptions.Dial is required on the client")
	}
	tok := o.Token
	if tok == nil {
		tok = make([]byte, 16)
		if _, err := rand.Read(tok); err != nil {
			return nil, err
		}
	} else {
		tok = append([]byte{}, tok...)
	}
	if len(tok) > 0xFFFF {
		return nil, errors.New("rsocket: resume token longer than 65535 bytes")
	}
	return &resumeState{opts: o, token: tok}, nil
}

// enableResume attaches rs to c before it starts.
func (c *Conn) enableResume(rs *resumeState) {
	rs.buf.limit = rs.opts.BufferSize
	c.res = rs
	c.q.full = func() bool { return rs.buf.size.Load() >= int64(rs.buf.limit) }
}

// received counts an inbound frame of n bytes (reader goroutine).
func (r *resumeState) received(n int) { r.recvPos.Add(uint64(n)) }

// record copies the resumable frames of a batch into the resume buffer (writer), before they are written.
func (r *resumeState) record(c *Conn, q []wframe, buf []byte) {
	r.buf.mu.Lock()
	for i := range q {
		f := &q[i]
		head := buf[f.off:f.end]
		t := frame.Type(head[4] >> 2)
		if t == frame.TypeKeepalive && len(head) >= frame.HeaderLen+8 {
			// The position goes out as of now, not as of queueing: a KEEPALIVE queued before a cut
			// and written after the resume must not carry a position older than RESUME's (rsocket-js
			// fails the session on a position below what it already dropped).
			binary.BigEndian.PutUint64(head[frame.HeaderLen:], r.recvPos.Load())
			continue
		}
		if !frame.CountsForResume(t) {
			continue
		}
		r.buf.append(head, f.md, f.data)
	}
	r.buf.mu.Unlock()
	if r.buf.size.Load() > int64(r.buf.limit/2) && !r.asked.Swap(true) {
		// Half full: ask the peer for its position now rather than at its next keepalive.
		_ = c.sendControl(control{t: frame.TypeKeepalive, respond: true, position: r.recvPos.Load()})
	}
}

// peerPosition handles the peer's last received position from a KEEPALIVE.
func (r *resumeState) peerPosition(c *Conn, p uint64) {
	r.asked.Store(false)
	dropped, err := r.buf.trim(p)
	if err != nil {
		if ce := c.cfg.log.Check(zap.DebugLevel, "rsocket: KEEPALIVE position outside the resume buffer"); ce != nil {
			ce.Write(zap.Uint64("position", p))
		}
	}
	if dropped {
		c.q.spaceFreed()
	}
}

// detached starts the wait for a resume: the expiry timer, and on the client the redial loop.
func (r *resumeState) detached(c *Conn, cause error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.detachedLocked(c, cause)
}

// detachedLocked is detached with r.mu held.
func (r *resumeState) detachedLocked(c *Conn, cause error) {
	if r.stopped || c.b.Load() != nil {
		return // closed, or resumed already
	}
	if ce := c.cfg.log.Check(zap.DebugLevel, "rsocket: session detached, waiting for a resume"); ce != nil {
		ce.Write(zap.Error(cause))
	}
	r.detachedAt = time.Now()
	if r.expiry == nil {
		r.expiry = time.AfterFunc(r.opts.SessionDuration, func() {
			c.shutdown(fmt.Errorf("%w (%w)", ErrResumeExpired, cause), nil)
		})
	} else {
		r.expiry.Reset(r.opts.SessionDuration)
	}
	r.cmu.Lock()
	if !c.server && r.cancelDial == nil {
		ctx, cancel := context.WithCancel(context.Background())
		r.cancelDial = cancel
		go r.redial(ctx, c)
	}
	r.cmu.Unlock()
}

// stop ends resumption for a closing session (shutdown).
func (r *resumeState) stop(c *Conn) {
	r.cmu.Lock()
	if r.cancelDial != nil {
		r.cancelDial() // ends a redial and a RESUME handshake waiting for RESUME_OK
	}
	r.cmu.Unlock()
	r.mu.Lock()
	r.stopped = true
	if r.expiry != nil {
		r.expiry.Stop()
	}
	r.mu.Unlock()
	if r.store != nil {
		r.store.remove(r.token, c)
	}
}

// reattached ends the wait (the caller holds r.mu).
func (r *resumeState) reattachedLocked() {
	if r.expiry != nil {
		r.expiry.Stop()
	}
	r.cmu.Lock()
	if r.cancelDial != nil {
		r.cancelDial()
		r.cancelDial = nil
	}
	r.cmu.Unlock()
}

// redial is the client's reconnect loop: dial, RESUME, until resumed, refused or expired.
func (r *resumeState) redial(ctx context.Context, c *Conn) {
	backoff := 5 * time.Millisecond
	for ctx.Err() == nil {
		tc, err := r.opts.Dial(ctx)
		if err == nil {
			err = c.resumeClient(ctx, tc)
			if err == nil {
				return
			}
			_ = tc.Close()
			if errors.Is(err, ErrResumeRejected) {
				c.shutdown(err, nil)
				return
			}
		}
		if ce := c.cfg.log.Check(zap.DebugLevel, "rsocket: resume attempt failed"); ce != nil {
			ce.Write(zap.Error(err))
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if backoff *= 2; backoff > time.Second {
			backoff = time.Second
		}
	}
}

// quiesce waits until the old binding's reader and the writer have stopped, so that the session's
// reader-owned state and the transport can be handed to a new binding.
func (c *Conn) quiesce() {
	c.bmu.Lock()
	last := c.lastReader
	c.bmu.Unlock()
	if last != nil {
		<-last
	}
	c.q.waitIdle() // the paused writer may be finishing its last batch
}

// resumeClient runs the client side of a resume on tc.
func (c *Conn) resumeClient(ctx context.Context, tc transport.Conn) error {
	r := c.res
	c.quiesce()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return ErrClosed
	}
	r.buf.mu.Lock()
	first := r.buf.first
	r.buf.mu.Unlock()
	// The whole handshake is bounded by ctx (canceled when the session closes) and a timeout: either
	// closes tc under it, and every call below then fails.
	stop := context.AfterFunc(ctx, func() { _ = tc.Close() })
	defer stop()
	t := time.AfterFunc(resumeHandshakeTimeout, func() { _ = tc.Close() })
	defer t.Stop()
	b := frame.AppendResume(nil, frame.MajorVersion, frame.MinorVersion, r.token, r.recvPos.Load(), first)
	if err := tc.WriteFrame(b, nil, nil); err != nil {
		return err
	}
	if err := tc.Flush(); err != nil {
		return err
	}
	fb, err := tc.ReadFrame()
	if err != nil {
		return fmt.Errorf("waiting for RESUME_OK: %w", err)
	}
	f, err := frame.Parse(fb)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrResumeRejected, err)
	}
	switch f.Type() {
	case frame.TypeResumeOK:
	case frame.TypeError:
		e := &Error{Code: f.ErrorCode(), Message: string(f.ErrorMessage())}
		return fmt.Errorf("%w: %w", ErrResumeRejected, e)
	default:
		return fmt.Errorf("%w: server answered RESUME with %v", ErrResumeRejected, f.Type())
	}
	// Send again what the server has not received, then continue with the queue.
	r.buf.mu.Lock()
	err = r.buf.from(f.ResumeOKPosition(), func(fr []byte) error { return tc.WriteFrame(fr, nil, nil) })
	r.buf.mu.Unlock()
	if errors.Is(err, errPosition) {
		// "If the server's position is not available, the client MUST send an ERROR[CONNECTION_ERROR]."
		msg := fmt.Sprintf("RESUME_OK position %d is not available (%d..%d kept)", f.ResumeOKPosition(), r.buf.first, r.buf.pos)
		_ = tc.WriteFrame(frame.AppendError(nil, 0, frame.CodeConnectionError, msg), nil, nil)
		_ = tc.Flush()
		return fmt.Errorf("%w: %s", ErrResumeRejected, msg)
	}
	if err != nil {
		return err
	}
	if err := tc.Flush(); err != nil {
		return err
	}
	if !stop() || !t.Stop() {
		return errors.New("rsocket: resume handshake canceled or timed out")
	}
	return c.rebind(tc)
}

// rebind binds tc after a successful resume handshake (r.mu held).
func (c *Conn) rebind(tc transport.Conn) error {
	if c.loadState() == stateClosed {
		return ErrClosed
	}
	c.res.reattachedLocked()
	c.bind(newBinding(c, tc))
	if ce := c.cfg.log.Check(zap.DebugLevel, "rsocket: session resumed"); ce != nil {
		ce.Write(zap.Uint64("received", c.res.recvPos.Load()))
	}
	return nil
}

// resumeServer serves a RESUME for this session on tc (server side): it takes the session over from its
// old binding (if that one is still up), checks the positions and answers RESUME_OK, or
// ERROR[REJECTED_RESUME] and ends the session.
func (c *Conn) resumeServer(tc transport.Conn, f frame.Frame) error {
	r := c.res
	// Resumes of one session run one at a time (handover), and each takes the session over from whatever
	// binding it has, waiting for that binding's reader and writer (quiesce). Not under mu: a reader that
	// ends the session on its way out (a bad frame: shutdown -> stop) takes mu, and quiesce waits for it.
	r.handover.Lock()
	defer r.handover.Unlock()
	c.bmu.Lock()
	old := c.b.Load()
	if old != nil && c.b.CompareAndSwap(old, nil) {
		c.q.pause()
	}
	c.bmu.Unlock()
	if old != nil {
		old.close()
	}
	c.quiesce()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return rejectSetup(tc, &Error{Code: frame.CodeRejectedResume, Message: "session closed"})
	}
	serverPos, clientFirst := f.ResumeLastReceivedServerPosition(), f.ResumeFirstAvailableClientPosition()
	recv := r.recvPos.Load()
	var err error
	if clientFirst > recv {
		err = fmt.Errorf("client keeps frames from position %d, we received up to %d", clientFirst, recv)
	}
	r.buf.mu.Lock()
	if err == nil && (serverPos < r.buf.first || serverPos > r.buf.pos) {
		err = fmt.Errorf("server position %d is not available (%d..%d kept)", serverPos, r.buf.first, r.buf.pos)
	}
	if err == nil {
		if err = tc.WriteFrame(frame.AppendResumeOK(nil, recv), nil, nil); err == nil {
			err = r.buf.from(serverPos, func(fr []byte) error { return tc.WriteFrame(fr, nil, nil) })
		}
		if err != nil && !errors.Is(err, errPosition) {
			r.buf.mu.Unlock()
			_ = tc.Close()
			r.detachedLocked(c, err) // the new transport failed: the session stays detached
			return err
		}
	}
	r.buf.mu.Unlock()
	if err != nil {
		e := &Error{Code: frame.CodeRejectedResume, Message: err.Error()}
		rerr := rejectSetup(tc, e)
		r.mu.Unlock()
		c.shutdown(fmt.Errorf("%w: %w", ErrResumeRejected, e), nil)
		r.mu.Lock()
		return rerr
	}
	if err := tc.Flush(); err != nil {
		_ = tc.Close()
		r.detachedLocked(c, err)
		return err
	}
	return c.rebind(tc)
}

// Sessions is a server's table of resumable sessions by resume token. One Sessions serves every
// transport of a server (a resume may arrive on any new connection). The zero value is not usable: use
// NewSessions. Server creates one when its options enable resumption and have none.
type Sessions struct {
	opts ResumeOptions
	mu   sync.Mutex
	m    map[string]*Conn
}

// NewSessions returns an empty session table for servers with resumption opts.
func NewSessions(opts ResumeOptions) *Sessions {
	return &Sessions{opts: opts.normalized(), m: make(map[string]*Conn)}
}

// Len returns the number of sessions held (attached or detached).
func (s *Sessions) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// add enters c under token: false when the token is in use, or the table is full of attached sessions.
func (s *Sessions) add(token []byte, c *Conn) bool {
	s.mu.Lock()
	if _, dup := s.m[string(token)]; dup {
		s.mu.Unlock()
		return false
	}
	var evict *Conn
	if len(s.m) >= s.opts.MaxSessions {
		var oldest time.Time
		for _, o := range s.m {
			if o.b.Load() != nil {
				continue
			}
			o.res.mu.Lock()
			at := o.res.detachedAt
			o.res.mu.Unlock()
			if evict == nil || at.Before(oldest) {
				evict, oldest = o, at
			}
		}
		if evict == nil {
			s.mu.Unlock()
			return false
		}
		delete(s.m, string(evict.res.token))
	}
	s.m[string(token)] = c
	s.mu.Unlock()
	if evict != nil {
		evict.shutdown(fmt.Errorf("%w: evicted for a new session", ErrResumeExpired), nil)
	}
	return true
}

func (s *Sessions) get(token []byte) *Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[string(token)]
}

func (s *Sessions) remove(token []byte, c *Conn) {
	s.mu.Lock()
	if s.m[string(token)] == c {
		delete(s.m, string(token))
	}
	s.mu.Unlock()
}
