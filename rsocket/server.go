package rsocket

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/rsgate/rsgate/rsocket/frame"
	"github.com/rsgate/rsgate/rsocket/transport"
)

// Acceptor decides on a client's SETUP. It returns the Handler for the client's requests (nil: reject
// them with ERROR[REJECTED]) or an error: a *Error with a setup code (INVALID_SETUP, UNSUPPORTED_SETUP,
// REJECTED_SETUP) is sent as is; any other error is sent as REJECTED_SETUP with its message. c is the new
// connection; the acceptor may keep it to send requests to the client once Accept returns.
type Acceptor func(setup *SetupInfo, c *Conn) (Handler, error)

// Accept runs the server side of the handshake on tc: it waits (at most SetupTimeout, and while ctx is
// not done) for the first frame, which must be SETUP, validates it, asks the acceptor, and starts the
// connection. On every failure it answers with the spec's ERROR frame when there is one, closes tc and
// returns an error (wrapping the *Error sent). A nil acceptor accepts every valid SETUP with no Handler.
//
//   - first frame not SETUP or RESUME: ERROR[INVALID_SETUP];
//   - RESUME: the detached session with its token continues on tc (resume.go; Accept then returns that
//     session and ErrResumed), or ERROR[REJECTED_RESUME] without ServerOptions.Resume, for an
//     unknown token or positions that cannot be honoured;
//   - malformed SETUP, or keepalive/lifetime of 0: ERROR[INVALID_SETUP];
//   - major version other than 1: ERROR[UNSUPPORTED_SETUP];
//   - R (resume) flag without ServerOptions.Resume: ERROR[REJECTED_SETUP] ("A server that receives a
//     SETUP frame that has (R)esume Enabled set, but does not support resuming operation, MUST reject
//     the SETUP with an ERROR[REJECTED_SETUP]");
//   - acceptor error: as described on Acceptor.
func Accept(ctx context.Context, tc transport.Conn, opts ServerOptions, acceptor Acceptor) (*Conn, error) {
	cfg, err := normalize(opts.MTU, opts.MaxReassembledSize, opts.MaxQueuedBytes, opts.Logger, opts.Now)
	if err != nil {
		_ = tc.Close()
		return nil, err
	}
	timeout := opts.SetupTimeout
	if timeout <= 0 {
		timeout = DefaultSetupTimeout
	}
	var (
		mu       sync.Mutex
		timedOut error
	)
	abort := func(why error) {
		mu.Lock()
		if timedOut == nil {
			timedOut = why
		}
		mu.Unlock()
		_ = tc.Close()
	}
	timer := time.AfterFunc(timeout, func() { abort(ErrSetupTimeout) })
	stopCtx := context.AfterFunc(ctx, func() { abort(ctx.Err()) })
	b, rerr := tc.ReadFrame()
	timer.Stop()
	stopCtx()
	mu.Lock()
	why := timedOut
	mu.Unlock()
	if why != nil {
		_ = tc.Close()
		return nil, why
	}
	if rerr != nil {
		_ = tc.Close()
		return nil, fmt.Errorf("rsocket: reading SETUP: %w", rerr)
	}

	if len(b) >= frame.HeaderLen && frame.Frame(b).Type() == frame.TypeResume {
		return acceptResume(tc, b, opts)
	}
	resumable := opts.Resume.Enabled && opts.Sessions != nil
	info, rej := parseSetup(b, resumable)
	if rej != nil {
		return nil, rejectSetup(tc, rej)
	}
	c := newConn(cfg, true, nil)
	c.cfg.keepalive, c.cfg.lifetime = info.Keepalive, info.MaxLifetime
	c.setup = info
	c.lease.required = info.Lease
	c.lease.enforce = info.Lease
	if info.Resume {
		c.enableResume(&resumeState{opts: opts.Sessions.opts, token: info.Token, store: opts.Sessions})
	}
	var (
		h    Handler
		aerr error
	)
	if acceptor != nil {
		h, aerr = acceptor(info, c)
	}
	if aerr != nil {
		var e *Error
		if !errors.As(aerr, &e) || !e.Code.IsSetupError() {
			e = &Error{Code: frame.CodeRejectedSetup, Message: aerr.Error()}
		}
		return nil, rejectSetup(tc, e)
	}
	if info.Resume && !opts.Sessions.add(info.Token, c) {
		return nil, rejectSetup(tc, &Error{Code: frame.CodeRejectedSetup, Message: "resume token in use, or too many resumable sessions"})
	}
	c.handler = h
	if info.Lease && opts.Lease != nil {
		// Queued before the goroutines start: the LEASE is the first frame the client sees.
		_ = c.SendLease(opts.Lease.TTL, opts.Lease.Requests, opts.Lease.Metadata)
	}
	c.start(tc, false)
	return c, nil
}

// ErrResumed is what Accept returns, with the existing session, after it served a RESUME: the transport
// now carries that session (the Acceptor was not called). It is not a failure.
var ErrResumed = errors.New("rsocket: transport resumed an existing session")

// acceptResume serves a RESUME as the first frame: the session with its token continues on tc, or the
// client gets ERROR[REJECTED_RESUME]. On success it returns the session and ErrResumed.
func acceptResume(tc transport.Conn, b []byte, opts ServerOptions) (*Conn, error) {
	f, err := frame.Parse(b)
	if err != nil {
		return nil, rejectSetup(tc, &Error{Code: frame.CodeRejectedResume, Message: err.Error()})
	}
	if !opts.Resume.Enabled || opts.Sessions == nil {
		return nil, rejectSetup(tc, &Error{Code: frame.CodeRejectedResume, Message: "resumption is not supported"})
	}
	// rsocket-js 1.0 swaps major and minor in RESUME (it sends 0.1): take that as 1.0.
	if major, minor := f.ResumeVersion(); major != frame.MajorVersion && !(major == 0 && minor == 1) {
		return nil, rejectSetup(tc, &Error{Code: frame.CodeRejectedResume, Message: fmt.Sprintf("unsupported version %d.%d", major, minor)})
	}
	c := opts.Sessions.get(f.ResumeToken())
	if c == nil {
		return nil, rejectSetup(tc, &Error{Code: frame.CodeRejectedResume, Message: "unknown resume token"})
	}
	if err := c.resumeServer(tc, f); err != nil {
		return nil, err
	}
	return c, ErrResumed
}

// parseSetup validates the first frame and copies the SETUP into a SetupInfo.
func parseSetup(b []byte, resumable bool) (*SetupInfo, *Error) {
	f, err := frame.Parse(b)
	if err != nil {
		if len(b) >= frame.HeaderLen {
			switch frame.Frame(b).Type() {
			case frame.TypeResume:
				return nil, &Error{Code: frame.CodeRejectedResume, Message: "resumption is not supported"}
			case frame.TypeSetup:
				return nil, &Error{Code: frame.CodeInvalidSetup, Message: err.Error()}
			}
		}
		return nil, &Error{Code: frame.CodeInvalidSetup, Message: "first frame must be SETUP"}
	}
	switch f.Type() {
	case frame.TypeSetup:
	case frame.TypeResume:
		return nil, &Error{Code: frame.CodeRejectedResume, Message: "resumption is not supported"}
	default:
		return nil, &Error{Code: frame.CodeInvalidSetup, Message: "first frame must be SETUP, got " + f.Type().String()}
	}
	major, minor := f.SetupVersion()
	if major != frame.MajorVersion {
		return nil, &Error{Code: frame.CodeUnsupportedSetup, Message: fmt.Sprintf("unsupported version %d.%d", major, minor)}
	}
	if f.Has(frame.FlagResume) && !resumable {
		return nil, &Error{Code: frame.CodeRejectedSetup, Message: "resumption is not supported"}
	}
	if f.Has(frame.FlagResume) && len(f.SetupToken()) == 0 {
		return nil, &Error{Code: frame.CodeInvalidSetup, Message: "empty resume token"}
	}
	ka, lt := f.SetupKeepalive(), f.SetupLifetime()
	if ka == 0 || lt == 0 {
		return nil, &Error{Code: frame.CodeInvalidSetup, Message: "keepalive interval and max lifetime must be > 0"}
	}
	info := &SetupInfo{
		Major: major, Minor: minor,
		Keepalive:    time.Duration(ka) * time.Millisecond,
		MaxLifetime:  time.Duration(lt) * time.Millisecond,
		MetadataMIME: string(f.SetupMetadataMIME()),
		DataMIME:     string(f.SetupDataMIME()),
		Lease:        f.Has(frame.FlagLease),
		Resume:       f.Has(frame.FlagResume),
		Token:        append([]byte(nil), f.SetupToken()...),
		Payload:      copyPayload(Payload{Metadata: f.Metadata(), Data: f.Data()}),
	}
	return info, nil
}

// rejectSetup sends ERROR(stream 0) directly on the transport (no goroutines exist yet) and closes it.
func rejectSetup(tc transport.Conn, e *Error) error {
	b := frame.AppendError(nil, 0, e.Code, e.Message)
	if err := tc.WriteFrame(b, nil, nil); err == nil {
		_ = tc.Flush()
	}
	_ = tc.Close()
	return fmt.Errorf("rsocket: setup rejected: %w", e)
}

// Server accepts connections from a transport.Listener and runs the handshake for each.
type Server struct {
	Acceptor Acceptor
	Options  ServerOptions

	mu     sync.Mutex
	ln     transport.Listener
	conns  map[*Conn]struct{}
	closed bool
	wg     sync.WaitGroup
	cancel context.CancelFunc
}

// Serve accepts connections on l until Close; it returns ErrServerClosed after Close, or the listener's
// error. Handshakes run in their own goroutines; failed handshakes are logged at debug level.
func (s *Server) Serve(l transport.Listener) error {
	ctx, cancel := context.WithCancel(context.Background())
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		cancel()
		_ = l.Close()
		return ErrServerClosed
	}
	s.ln = l
	s.cancel = cancel
	if s.conns == nil {
		s.conns = make(map[*Conn]struct{})
	}
	if s.Options.Resume.Enabled && s.Options.Sessions == nil {
		s.Options.Sessions = NewSessions(s.Options.Resume)
	}
	s.mu.Unlock()
	log := s.Options.Logger
	if log == nil {
		log = zap.NewNop()
	}
	backoff := time.Duration(0)
	for {
		tc, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			if errors.Is(err, transport.ErrClosed) {
				return err
			}
			// Transient accept errors (EMFILE, ...): back off like net/http.
			if backoff == 0 {
				backoff = 5 * time.Millisecond
			} else if backoff *= 2; backoff > time.Second {
				backoff = time.Second
			}
			log.Warn("rsocket: accept failed", zap.Error(err), zap.Duration("retry_in", backoff))
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.wg.Add(1)
		go s.handshake(ctx, tc, log)
	}
}

func (s *Server) handshake(ctx context.Context, tc transport.Conn, log *zap.Logger) {
	defer s.wg.Done()
	c, err := Accept(ctx, tc, s.Options, s.Acceptor)
	if errors.Is(err, ErrResumed) {
		return // an existing session continues on tc; it is tracked already
	}
	if err != nil {
		if ce := log.Check(zap.DebugLevel, "rsocket: handshake failed"); ce != nil {
			ce.Write(zap.Error(err))
		}
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = c.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	<-c.Done()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Close stops accepting, closes every connection (see Conn.Close) and waits for them to end.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ln, cancel := s.ln, s.cancel
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	var err error
	if ln != nil {
		err = ln.Close()
	}
	if cancel != nil {
		cancel()
	}
	for _, c := range conns {
		_ = c.Close()
	}
	s.wg.Wait()
	return err
}
