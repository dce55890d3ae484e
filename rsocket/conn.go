package rsocket

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/rsgate/rsgate/rsocket/frame"
	"github.com/rsgate/rsgate/rsocket/transport"
)

// Conn is one RSocket session, client or server side: its streams and request-response calls, their
// credit, the write queue, leases, keepalive, the implied positions and resume buffer (with resumption)
// and its lifecycle. Both sides can request and respond. Its methods are safe for concurrent use.
//
// A Conn is bound to one transport.Conn at a time (binding.go: the reader goroutine and the writer's
// target). Without resumption the session ends with its binding. With resumption (Options.Resume,
// ServerOptions.Resume) a lost binding only detaches the session: streams stay open, frames keep being
// queued, and the session continues on a new transport once the client resumes (resume.go).
type Conn struct {
	cfg     config
	server  bool
	handler Handler
	setup   *SetupInfo

	q writeQueue

	// The current binding (nil while detached) and the reader-done channel of the newest binding ever
	// started: teardown waits for that reader (only one reader runs at a time).
	b          atomic.Pointer[binding]
	bmu        sync.Mutex // serializes bind/detach
	lastReader chan struct{}

	// Stream table: streams (Stream: request-stream, request-channel, responder request-response) and
	// calls (our request-response requests), both under smu. Lifecycle state transitions also happen
	// under smu.
	smu      sync.Mutex
	streams  map[uint32]*Stream
	calls    map[uint32]*rrCall
	nextID   uint32
	inflight atomic.Int32
	// Draining (drain.go): drainErr != nil refuses new streams both ways; drainDone is closed once the
	// table is empty.
	drainErr    error
	drainPeer   bool // the peer sent CONNECTION_CLOSE: close ourselves when drained
	drainDone   chan struct{}
	drainClosed bool

	// Reader-owned (one reader goroutine at a time, handed from binding to binding).
	reasm       map[uint32]*reassembly
	reasmBytes  int  // bytes held by reasm, bounded by 4 x MaxReassembledSize
	established bool // client: the server accepted SETUP (any non-ERROR frame arrived)

	lease leaseState
	res   *resumeState // nil without resumption

	// Lifecycle: state (connState) changes under smu; err is written before state becomes stateClosed.
	state     atomic.Int32
	err       error
	done      chan struct{}
	ka        keepalive
	gotFrame  atomic.Bool
	inReader  atomic.Bool   // the reader is dispatching a frame (Close called then does not wait)
	writerEnd chan struct{} // closed by the writer's finish after close
}

// connState is the lifecycle of a session. It only moves forward: open -> draining -> closed. Whether a
// transport is bound is separate (Conn.b): a session may be open and detached while it waits to resume.
type connState int32

const (
	stateOpen     connState = iota
	stateDraining           // no new streams either way; closes once the last one ended (drain.go)
	stateClosed             // shutdown began: err is set, the queue is closed, teardown runs
)

func (c *Conn) loadState() connState { return connState(c.state.Load()) }

func newConn(cfg config, server bool, handler Handler) *Conn {
	c := &Conn{
		lease:     leaseState{now: cfg.now},
		cfg:       cfg,
		server:    server,
		handler:   handler,
		streams:   make(map[uint32]*Stream),
		calls:     make(map[uint32]*rrCall),
		done:      make(chan struct{}),
		writerEnd: make(chan struct{}),
	}
	c.q.init(c, cfg.maxQueued)
	c.q.paused = true // nothing to write to until the first bind (frames queued before it wait: SETUP, LEASE)
	if server {
		c.nextID = 2
	} else {
		c.nextID = 1
	}
	return c
}

// Connect starts the client side of a session over tc: it queues the SETUP frame and starts the
// session's goroutines. RSocket has no SETUP acknowledgement: a rejection arrives later as an ERROR
// frame that closes the session (Err then matches the *Error). ctx only bounds Connect itself.
func Connect(ctx context.Context, tc transport.Conn, opts Options) (*Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg, err := normalize(opts.MTU, opts.MaxReassembledSize, opts.MaxQueuedBytes, opts.Logger, opts.Now)
	if err != nil {
		return nil, err
	}
	cfg.keepalive, cfg.lifetime = opts.KeepaliveInterval, opts.MaxLifetime
	if cfg.keepalive <= 0 {
		cfg.keepalive = DefaultKeepaliveInterval
	}
	if cfg.lifetime <= 0 {
		cfg.lifetime = DefaultMaxLifetime
	}
	mdMIME, dataMIME := opts.MetadataMIME, opts.DataMIME
	if mdMIME == "" {
		mdMIME = DefaultMetadataMIME
	}
	if dataMIME == "" {
		dataMIME = DefaultDataMIME
	}
	if len(mdMIME) > 255 || len(dataMIME) > 255 {
		return nil, errors.New("rsocket: MIME type longer than 255 bytes")
	}
	c := newConn(cfg, false, opts.Handler)
	var token []byte
	if opts.Resume.Enabled {
		rs, err := newClientResume(opts.Resume)
		if err != nil {
			return nil, err
		}
		c.enableResume(rs)
		token = rs.token
	}
	c.setup = &SetupInfo{
		Major: frame.MajorVersion, Minor: frame.MinorVersion,
		Keepalive: cfg.keepalive, MaxLifetime: cfg.lifetime,
		MetadataMIME: mdMIME, DataMIME: dataMIME, Lease: opts.Lease,
		Resume: token != nil, Token: token,
		Payload: copyPayload(opts.SetupPayload),
	}
	c.lease.required = opts.Lease
	c.lease.enforce = opts.Lease
	s := frame.Setup{
		Major: frame.MajorVersion, Minor: frame.MinorVersion,
		Keepalive: durationMillis(cfg.keepalive), Lifetime: durationMillis(cfg.lifetime),
		Lease: opts.Lease, MetadataMIME: mdMIME, DataMIME: dataMIME, Token: token,
	}
	c.q.mu.Lock()
	off := len(c.q.buf)
	c.q.buf = frame.AppendSetup(c.q.buf, &s, opts.SetupPayload.Metadata, opts.SetupPayload.Data)
	c.q.push(off, nil, nil, nil)
	c.q.mu.Unlock()
	c.start(tc, true)
	return c, nil
}

func copyPayload(p Payload) Payload {
	var q Payload
	if p.Metadata != nil {
		q.Metadata = append([]byte{}, p.Metadata...)
	}
	if p.Data != nil {
		q.Data = append([]byte{}, p.Data...)
	}
	return q
}

// start binds tc (the reader starts, and the writer for frames queued before) and arms the keepalive
// timer.
func (c *Conn) start(tc transport.Conn, sendKeepalive bool) {
	c.bind(newBinding(c, tc))
	c.startKeepalive(c.cfg.keepalive, c.cfg.lifetime, sendKeepalive)
}

// Setup returns the SETUP that opened the session (the one sent, on the client side).
func (c *Conn) Setup() *SetupInfo { return c.setup }

// InFlight returns the number of streams and request-response calls currently open in either direction.
func (c *Conn) InFlight() int { return int(c.inflight.Load()) }

// Done is closed once the session has ended and every goroutine and stream of it has finished.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the session ended (nil while it is open). The error matches ErrClosed and its cause: a
// *Error received from the peer, ErrKeepaliveTimeout, ErrProtocol, ErrResumeExpired, io.EOF, ...
func (c *Conn) Err() error {
	if c.loadState() != stateClosed {
		return nil
	}
	return c.err
}

// Bound reports whether a transport is bound now (false while a resumable session is detached).
func (c *Conn) Bound() bool { return c.b.Load() != nil }

// LocalAddr and RemoteAddr return the current transport's addresses (nil while detached).
func (c *Conn) LocalAddr() net.Addr {
	if b := c.b.Load(); b != nil {
		return b.tc.LocalAddr()
	}
	return nil
}

func (c *Conn) RemoteAddr() net.Addr {
	if b := c.b.Load(); b != nil {
		return b.tc.RemoteAddr()
	}
	return nil
}

// Close ends the session: it sends ERROR[CONNECTION_CLOSE] after the frames queued before it, as far as
// the transport takes them without waiting, closes the transport, fails every open stream with an error
// matching ErrClosed, and waits until every goroutine of the session has returned. It never waits for
// the peer: when the peer does not read (the writer is blocked in a write, or the final frames would
// block) the transport is closed at once and the final frames are lost (transport.WaitStopper); no
// timer is involved. It returns nil, or the cause if the session had already ended for another reason.
// While the reader goroutine is dispatching a frame (for example when Close is called from a Handler or
// Subscriber method) Close does not wait; use Done.
func (c *Conn) Close() error {
	return c.CloseWithError(frame.CodeConnectionClose, "")
}

// CloseWithError is Close with the code and message of the final ERROR frame (stream 0).
func (c *Conn) CloseWithError(code frame.ErrorCode, msg string) error {
	first := c.shutdown(ErrClosed, &control{t: frame.TypeError, code: code, msg: msg})
	if c.inReader.Load() {
		// Possibly called from a Handler or Subscriber method on the reader goroutine, which must
		// return before the session can end: do not wait (Done reports the end).
		return nil
	}
	<-c.done
	if first {
		return nil
	}
	var ce *closedError
	if errors.As(c.err, &ce) && ce.cause == ErrClosed {
		return nil
	}
	return c.err
}

// shutdown ends the session (the first call wins; it returns true): it records the cause, moves to
// stateClosed, stops the binding's waiting (binding.stopWaiting), queues final (an ERROR on stream 0)
// when non-nil and closes the queue: a write blocked on the peer fails at once, and the writer
// writes what is left only as far as the transport takes it without waiting, then closes the
// transport. teardown fails every stream once the writer and the reader have stopped. Nothing here
// waits for the peer or for a timer.
func (c *Conn) shutdown(cause error, final *control) bool {
	c.smu.Lock()
	if c.loadState() == stateClosed {
		c.smu.Unlock()
		return false
	}
	c.err = &closedError{cause: cause}
	c.state.Store(int32(stateClosed))
	c.closeDrainLocked()
	c.smu.Unlock()
	if c.res != nil {
		c.res.stop(c)
	}
	b := c.b.Load()
	if b == nil {
		final = nil // detached: nobody to tell
	} else {
		// Before the final frame is queued, so that the writer writes it (and what is left before it)
		// only as far as the transport takes it at once; a write blocked now fails. A binding that
		// replaces b later is closed by bind (stateClosed).
		b.stopWaiting()
	}
	c.q.close(c.err, final)
	if ce := c.cfg.log.Check(zap.DebugLevel, "rsocket: session closing"); ce != nil {
		ce.Write(zap.Error(cause))
	}
	go c.teardown()
	return true
}

// closeBinding closes the current transport, if any.
func (c *Conn) closeBinding() {
	if b := c.b.Load(); b != nil {
		b.close()
	}
}

// teardown runs after shutdown, once the writer has finished: it closes the transport, waits for the
// reader, fails every stream and call, frees reassembly buffers, stops the keepalive timer and closes
// done.
func (c *Conn) teardown() {
	<-c.writerEnd
	// Under bmu: a bind racing the shutdown either stored its binding before (closed here) or sees
	// the closed state and closes its transport itself.
	c.bmu.Lock()
	last, b := c.lastReader, c.b.Load()
	c.bmu.Unlock()
	if b != nil {
		b.close()
	}
	if last != nil {
		<-last
	}
	c.smu.Lock()
	streams, calls := c.streams, c.calls
	c.streams, c.calls = nil, nil
	c.smu.Unlock()
	c.inReader.Store(true)
	for _, s := range streams {
		c.inflight.Add(-1)
		s.onTerminate(c.err, false)
	}
	c.inReader.Store(false)
	for _, rc := range calls {
		c.inflight.Add(-1)
		rc.deliver(nil, c.err)
	}
	for id, r := range c.reasm {
		c.releaseReassembly(r)
		delete(c.reasm, id)
	}
	c.stopKeepalive()
	close(c.done)
}

// openErrLocked is the error for a new stream when the session does not take one (nil: it does).
func (c *Conn) openErrLocked() error {
	switch c.loadState() {
	case stateClosed:
		return c.err
	case stateDraining:
		return c.drainErr
	}
	if c.nextID > frame.MaxStreamID {
		return ErrStreamIDsExhausted
	}
	return nil
}

// register gives s a new stream id and enters it in the table.
func (c *Conn) register(s *Stream) error {
	c.smu.Lock()
	if err := c.openErrLocked(); err != nil {
		c.smu.Unlock()
		return err
	}
	s.id = c.nextID
	c.nextID += 2
	c.streams[s.id] = s
	c.smu.Unlock()
	c.inflight.Add(1)
	return nil
}

// registerCall gives rc a new stream id and enters it in the call table.
func (c *Conn) registerCall(rc *rrCall) error {
	c.smu.Lock()
	if err := c.openErrLocked(); err != nil {
		c.smu.Unlock()
		return err
	}
	rc.id = c.nextID
	c.nextID += 2
	c.calls[rc.id] = rc
	c.smu.Unlock()
	c.inflight.Add(1)
	return nil
}

// nextStreamID allocates an id without a table entry (fire-and-forget).
func (c *Conn) nextStreamID() (uint32, error) {
	c.smu.Lock()
	defer c.smu.Unlock()
	if err := c.openErrLocked(); err != nil {
		return 0, err
	}
	id := c.nextID
	c.nextID += 2
	return id, nil
}

// insert enters a peer-initiated stream. It fails when the session is ending or draining.
func (c *Conn) insert(s *Stream) bool {
	c.smu.Lock()
	if c.loadState() != stateOpen {
		c.smu.Unlock()
		return false
	}
	c.streams[s.id] = s
	c.smu.Unlock()
	c.inflight.Add(1)
	return true
}

// take removes s from the table if it is still there; true means the caller now owns its termination.
func (c *Conn) take(id uint32, s *Stream) bool {
	c.smu.Lock()
	if s == nil || c.streams[id] != s {
		c.smu.Unlock()
		return false
	}
	delete(c.streams, id)
	c.deletedUnlock()
	return true
}

// takeCall removes the call with this id (rc, or any when rc is nil) from the table; the caller then owns
// its delivery.
func (c *Conn) takeCall(id uint32, rc *rrCall) *rrCall {
	c.smu.Lock()
	got := c.calls[id]
	if got == nil || (rc != nil && got != rc) {
		c.smu.Unlock()
		return nil
	}
	delete(c.calls, id)
	c.deletedUnlock()
	return got
}

// takeCallOrLookup is takeCall(id, nil) and, when id is no call, lookup(id), in one critical section (the
// reader does this for every PAYLOAD and ERROR).
func (c *Conn) takeCallOrLookup(id uint32) (*rrCall, *Stream) {
	c.smu.Lock()
	if rc := c.calls[id]; rc != nil {
		delete(c.calls, id)
		c.deletedUnlock()
		return rc, nil
	}
	s := c.streams[id]
	c.smu.Unlock()
	return nil, s
}

// deletedUnlock follows a removal from the table (smu held; released here): it completes a drain that
// the removal emptied.
func (c *Conn) deletedUnlock() {
	drained := c.drainedLocked()
	c.smu.Unlock()
	c.inflight.Add(-1)
	if drained {
		c.onDrained()
	}
}

// lookup returns the stream with this id.
func (c *Conn) lookup(id uint32) *Stream {
	c.smu.Lock()
	s := c.streams[id]
	c.smu.Unlock()
	return s
}

// inUse reports whether id is in the table (stream or call).
func (c *Conn) inUse(id uint32) bool {
	c.smu.Lock()
	_, ok := c.streams[id]
	if !ok {
		_, ok = c.calls[id]
	}
	c.smu.Unlock()
	return ok
}

// isPeerID reports whether id has the parity of ids the peer opens.
func (c *Conn) isPeerID(id uint32) bool {
	if c.server {
		return id&1 == 1
	}
	return id&1 == 0
}
