package rsocket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/rsgate/rsgate/rsocket/frame"
	"github.com/rsgate/rsgate/rsocket/transport"
)

// Conn is one RSocket connection, client or server side. Both sides can request and respond. Its
// methods are safe for concurrent use.
type Conn struct {
	tc      transport.Conn
	cfg     config
	server  bool
	handler Handler
	setup   *SetupInfo

	// Write queue (writer.go). wclosed: no more frames accepted (set by shutdown, under wmu). writing: a
	// writer goroutine is running (under wmu); it exits when the queue is empty and the next frame
	// queued starts one again.
	wmu          sync.Mutex
	wq           []wframe
	wbuf         []byte
	wclosed      bool
	writing      bool
	space        chan struct{} // 1 slot: queue space for a waiting Send
	spaceWaiters int
	// Writer-owned (one writer at a time; handed from one to the next under wmu): the spare batch
	// buffers swapped with wq and wbuf, and the run of small batches (see writeLoop).
	wqSpare   []wframe
	wbufSpare []byte
	smallRun  int
	writeFn   func() // c.writeLoop, bound once: "go c.writeFn()" does not allocate

	// Stream table. sclosed: teardown took the table; no more registrations.
	smu      sync.Mutex
	streams  map[uint32]*Stream
	nextID   uint32
	sclosed  bool
	inflight atomic.Int32
	// Draining (drain.go): drainErr != nil refuses new streams both ways; drainDone is closed once the
	// table is empty.
	drainErr    error
	drainPeer   bool // the peer sent CONNECTION_CLOSE: close ourselves when drained
	drainDone   chan struct{}
	drainClosed bool
	drainFlag   atomic.Bool // mirror of drainErr != nil for lock-free checks

	// Reader goroutine only.
	reasm       map[uint32]*reassembly
	reasmBytes  int  // bytes held by reasm, bounded by 4 x MaxReassembledSize
	established bool // client: the server accepted SETUP (any non-ERROR frame arrived)

	lease leaseState

	// Lifecycle. err is written once in shutdown before closing is closed (and before wclosed is set).
	closeOnce  sync.Once
	err        error
	closing    chan struct{}
	done       chan struct{}
	writerDone chan struct{}
	ka         keepalive
	gotFrame   atomic.Bool
	// inReader: the reader goroutine is dispatching a frame (Handler and Subscriber methods run then).
	// Close called meanwhile does not wait for the end: the caller may be that very callback.
	inReader    atomic.Bool
	tcCloseOnce sync.Once
	forceClose  *time.Timer
}

func newConn(tc transport.Conn, cfg config, server bool, handler Handler) *Conn {
	c := &Conn{
		tc:         tc,
		cfg:        cfg,
		server:     server,
		handler:    handler,
		space:      make(chan struct{}, 1),
		streams:    make(map[uint32]*Stream),
		closing:    make(chan struct{}),
		done:       make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	c.writeFn = c.writeLoop
	if server {
		c.nextID = 2
	} else {
		c.nextID = 1
	}
	return c
}

// Connect starts the client side of a connection over tc: it queues the SETUP frame and starts the
// connection's goroutines. RSocket has no SETUP acknowledgement: a rejection arrives later as an ERROR
// frame that closes the connection (Err then matches the *Error). ctx only bounds Connect itself.
func Connect(ctx context.Context, tc transport.Conn, opts Options) (*Conn, error) {
	if ctx != nil {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	cfg, err := normalize(opts.MTU, opts.MaxReassembledSize, opts.MaxQueuedBytes, opts.Logger)
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
	c := newConn(tc, cfg, false, opts.Handler)
	c.setup = &SetupInfo{
		Major: frame.MajorVersion, Minor: frame.MinorVersion,
		Keepalive: cfg.keepalive, MaxLifetime: cfg.lifetime,
		MetadataMIME: mdMIME, DataMIME: dataMIME, Lease: opts.Lease,
		Payload: copyPayload(opts.SetupPayload),
	}
	c.lease.required = opts.Lease
	c.lease.enforce = opts.Lease
	s := frame.Setup{
		Major: frame.MajorVersion, Minor: frame.MinorVersion,
		Keepalive: durationMillis(cfg.keepalive), Lifetime: durationMillis(cfg.lifetime),
		Lease: opts.Lease, MetadataMIME: mdMIME, DataMIME: dataMIME,
	}
	c.wbuf = frame.AppendSetup(c.wbuf, &s, opts.SetupPayload.Metadata, opts.SetupPayload.Data)
	c.push(0, nil, nil, nil)
	c.start(true)
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

// start launches the reader goroutine (and the writer, for frames queued before) and arms the keepalive
// timer.
func (c *Conn) start(sendKeepalive bool) {
	c.wmu.Lock()
	c.unlockQueue()
	go c.readLoop()
	c.startKeepalive(c.cfg.keepalive, c.cfg.lifetime, sendKeepalive)
}

// Setup returns the SETUP that opened the connection (the one sent, on the client side).
func (c *Conn) Setup() *SetupInfo { return c.setup }

// InFlight returns the number of streams currently open in either direction.
func (c *Conn) InFlight() int { return int(c.inflight.Load()) }

// Done is closed once the connection has ended and every goroutine and stream of it has finished.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended (nil while it is open). The error matches ErrClosed and its
// cause: a *Error received from the peer, ErrKeepaliveTimeout, ErrProtocol, io.EOF, ...
func (c *Conn) Err() error {
	select {
	case <-c.closing:
		return c.err
	default:
		return nil
	}
}

// LocalAddr and RemoteAddr return the transport's addresses.
func (c *Conn) LocalAddr() net.Addr  { return c.tc.LocalAddr() }
func (c *Conn) RemoteAddr() net.Addr { return c.tc.RemoteAddr() }

// Close ends the connection: it sends ERROR[CONNECTION_CLOSE], closes the transport once that frame is
// out (at most a short grace period later), fails every open stream with an error matching ErrClosed, and
// waits until every goroutine of the connection has returned. It returns nil, or the cause if the
// connection had already ended for another reason. While the reader goroutine is dispatching a frame
// (for example when Close is called from a Handler or Subscriber method) Close does not wait; use Done.
func (c *Conn) Close() error {
	return c.CloseWithError(frame.CodeConnectionClose, "")
}

// CloseWithError is Close with the code and message of the final ERROR frame (stream 0).
func (c *Conn) CloseWithError(code frame.ErrorCode, msg string) error {
	first := false
	c.closeOnce.Do(func() {
		first = true
		c.shutdownLocked(ErrClosed, code, msg, true)
	})
	if c.inReader.Load() {
		// Possibly called from a Handler or Subscriber method on the reader goroutine, which must
		// return before the connection can end: do not wait (Done reports the end).
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

// shutdown starts the end of the connection (once): it records the cause, optionally queues a final
// ERROR frame on stream 0, stops the queue and wakes the writer, which flushes and closes the transport;
// the reader then fails every stream (teardown).
func (c *Conn) shutdown(cause error, code frame.ErrorCode, msg string, send bool) {
	c.closeOnce.Do(func() { c.shutdownLocked(cause, code, msg, send) })
}

func (c *Conn) shutdownLocked(cause error, code frame.ErrorCode, msg string, send bool) {
	c.err = &closedError{cause: cause}
	c.forceClose = time.AfterFunc(closeFlushTimeout, c.closeTransport)
	c.wmu.Lock()
	if send {
		off := len(c.wbuf)
		c.wbuf = frame.AppendError(c.wbuf, 0, code, msg)
		c.push(off, nil, nil, nil)
	}
	c.wclosed = true
	startWriter := !c.writing // the writer flushes the final frames and closes the transport
	c.writing = true
	c.wmu.Unlock()
	close(c.closing)
	if startWriter {
		go c.writeFn()
	}
	if ce := c.cfg.log.Check(zap.DebugLevel, "rsocket: connection closing"); ce != nil {
		ce.Write(zap.Error(cause))
	}
}

func (c *Conn) closeTransport() {
	c.tcCloseOnce.Do(func() { _ = c.tc.Close() })
}

// readLoop is the connection's only reader; it owns the reassembly state and, at its end, the teardown.
func (c *Conn) readLoop() {
	for {
		b, err := c.tc.ReadFrame()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.EOF
			}
			c.shutdown(fmt.Errorf("read: %w", err), 0, "", false)
			break
		}
		if !c.gotFrame.Load() {
			c.gotFrame.Store(true)
		}
		c.inReader.Store(true)
		ok := c.handleFrame(b)
		c.inReader.Store(false)
		if !ok {
			break
		}
	}
	c.teardown()
}

// teardown runs on the reader goroutine after shutdown: it fails every stream, frees reassembly buffers,
// stops the keepalive timer, waits for the writer goroutine and closes done.
func (c *Conn) teardown() {
	<-c.closing
	// The reader may have stopped on a protocol error while the writer still flushes: it closes the
	// transport when done (or the force timer does).
	c.smu.Lock()
	streams := c.streams
	c.streams = nil
	c.sclosed = true
	c.smu.Unlock()
	c.inReader.Store(true)
	for _, s := range streams {
		c.inflight.Add(-1)
		s.connClosed(c.err)
	}
	c.inReader.Store(false)
	for id, r := range c.reasm {
		c.releaseReassembly(r)
		delete(c.reasm, id)
	}
	c.stopKeepalive()
	<-c.writerDone
	c.closeTransport()
	c.forceClose.Stop()
	close(c.done)
}

// register gives s a new stream id and enters it in the table.
func (c *Conn) register(s *Stream) error {
	c.smu.Lock()
	if c.sclosed {
		c.smu.Unlock()
		return c.err
	}
	if c.drainErr != nil {
		c.smu.Unlock()
		return c.drainErr
	}
	if c.nextID > frame.MaxStreamID {
		c.smu.Unlock()
		return ErrStreamIDsExhausted
	}
	s.id = c.nextID
	c.nextID += 2
	c.streams[s.id] = s
	c.smu.Unlock()
	c.inflight.Add(1)
	return nil
}

// nextStreamID allocates an id without a table entry (fire-and-forget).
func (c *Conn) nextStreamID() (uint32, error) {
	c.smu.Lock()
	defer c.smu.Unlock()
	if c.sclosed {
		return 0, c.err
	}
	if c.drainErr != nil {
		return 0, c.drainErr
	}
	if c.nextID > frame.MaxStreamID {
		return 0, ErrStreamIDsExhausted
	}
	id := c.nextID
	c.nextID += 2
	return id, nil
}

// insert enters a peer-initiated stream. It fails when the connection is ending or draining.
func (c *Conn) insert(s *Stream) bool {
	c.smu.Lock()
	if c.sclosed || c.drainErr != nil {
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
	if c.streams[id] != s || s == nil {
		c.smu.Unlock()
		return false
	}
	c.deleteUnlock(id)
	return true
}

// deleteUnlock removes id from the table (c.smu held; released here) and completes a drain it emptied.
func (c *Conn) deleteUnlock(id uint32) {
	delete(c.streams, id)
	drained := c.drainedLocked()
	c.smu.Unlock()
	c.inflight.Add(-1)
	if drained {
		c.onDrained()
	}
}

// lookup returns the stream with this id, except pooled request-response requester streams, which are
// only ever taken (see takeRR).
func (c *Conn) lookup(id uint32) *Stream {
	c.smu.Lock()
	s := c.streams[id]
	c.smu.Unlock()
	if s != nil && s.pooled {
		return nil
	}
	return s
}

// lookupOrTakeRR returns the stream with this id; a pooled request-response requester stream is removed
// from the table in the same critical section (taken == true): the caller then owns its delivery.
func (c *Conn) lookupOrTakeRR(id uint32) (s *Stream, taken bool) {
	c.smu.Lock()
	s = c.streams[id]
	if s != nil && s.pooled {
		c.deleteUnlock(id)
		return s, true
	}
	c.smu.Unlock()
	return s, false
}

// isPeerID reports whether id has the parity of ids the peer opens.
func (c *Conn) isPeerID(id uint32) bool {
	if c.server {
		return id&1 == 1
	}
	return id&1 == 0
}
