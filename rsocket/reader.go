package rsocket

import (
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/rsgate/rsgate/rsocket/frame"
	"github.com/rsgate/rsgate/rsocket/internal/bufpool"
)

// reassembly collects the fragments of one logical frame (reader goroutine only). Metadata always
// precedes data, so both live in one buffer: buf.B[:mdLen] is metadata, the rest data.
type reassembly struct {
	t        frame.Type
	flags    frame.Flags // C and N seen on any fragment (C is sticky, see onFragment)
	initialN uint32
	buf      *bufpool.Buffer
	mdLen    int
	hasMD    bool
	size     int // bytes counted in Conn.reasmBytes
}

// reassemblyTotalFactor: the bytes of all reassemblies in progress on a connection are bounded by this
// many times MaxReassembledSize.
const reassemblyTotalFactor = 4

// handleFrame processes one received frame. It returns false when the connection must stop reading.
func (c *Conn) handleFrame(b []byte) bool {
	f, err := frame.Parse(b)
	if err != nil {
		return c.badFrame(err)
	}
	id := f.StreamID()
	t := f.Type()
	if c.res != nil && frame.CountsForResume(t) {
		c.res.received(len(b))
	}
	if !c.established && !c.server && t != frame.TypeError {
		c.established = true
	}
	switch t {
	case frame.TypePayload:
		c.onPayloadFrame(f)
	case frame.TypeRequestResponse, frame.TypeRequestFNF, frame.TypeRequestStream, frame.TypeRequestChannel:
		c.onRequestFrame(f)
	case frame.TypeRequestN:
		if s := c.lookup(id); s != nil {
			s.addCredit(f.RequestN())
		}
	case frame.TypeCancel:
		c.dropReassembly(id)
		// CANCEL comes from the requester: only streams we respond to can be canceled by it.
		if s := c.lookup(id); s != nil && !s.requester {
			s.onTerminate(ErrCanceled, true)
		}
	case frame.TypeError:
		if id == 0 {
			return c.onConnectionError(f)
		}
		c.dropReassembly(id)
		e := &Error{Code: f.ErrorCode(), Message: string(f.ErrorMessage())}
		if rc, s := c.takeCallOrLookup(id); rc != nil {
			rc.deliver(nil, e)
		} else if s != nil {
			s.onTerminate(e, true)
		}
	case frame.TypeKeepalive:
		var pos uint64
		if c.res != nil {
			c.res.peerPosition(c, f.KeepalivePosition())
			pos = c.res.recvPos.Load()
		}
		if f.Has(frame.FlagRespond) {
			_ = c.sendControl(control{t: frame.TypeKeepalive, position: pos, data: f.Data()})
		}
	case frame.TypeLease:
		c.onLease(f.LeaseTTL(), f.LeaseRequests())
	case frame.TypeMetadataPush:
		if c.handler != nil {
			c.handler.MetadataPush(f.Metadata())
		}
	case frame.TypeExt:
		if !f.Has(frame.FlagIgnore) {
			return c.protocolError(fmt.Errorf("EXT frame (extended type %d) without the I flag is not supported", f.ExtendedType()))
		}
	default:
		// SETUP after the handshake (server: "MUST ignore a SETUP frame after it has accepted a previous
		// SETUP"; client: "MUST ignore a SETUP frame"), RESUME, RESUME_OK: ignored.
	}
	return true
}

// badFrame decides what a frame that Parse rejected means for the connection.
func (c *Conn) badFrame(err error) bool {
	var pe *frame.ParseError
	if errors.As(err, &pe) {
		if pe.Ignorable() {
			return true // unknown type with I set: "ignore frame if not understood"
		}
		if errors.Is(err, frame.ErrStreamID) {
			// "Receiving a METADATA_PUSH with a non-0 Stream ID MUST be ignored", "Receiving a CANCEL /
			// PAYLOAD on an unknown Stream ID (including 0) MUST be ignored": frames on the wrong stream
			// are ignored, like any frame that does not make sense in context.
			if ce := c.cfg.log.Check(zap.DebugLevel, "rsocket: ignoring frame on the wrong stream"); ce != nil {
				ce.Write(zap.Error(err))
			}
			return true
		}
	}
	return c.protocolError(err)
}

// protocolError sends ERROR[CONNECTION_ERROR] and closes the connection.
func (c *Conn) protocolError(err error) bool {
	if ce := c.cfg.log.Check(zap.WarnLevel, "rsocket: protocol error, closing connection"); ce != nil {
		ce.Write(zap.Error(err))
	}
	c.shutdown(fmt.Errorf("%w: %w", ErrProtocol, err), &control{t: frame.TypeError, code: frame.CodeConnectionError, msg: err.Error()})
	return false
}

// onConnectionError handles ERROR on stream 0.
func (c *Conn) onConnectionError(f frame.Frame) bool {
	code := f.ErrorCode()
	if code.IsSetupError() {
		// "A server MUST ignore an ERROR[INVALID_SETUP|UNSUPPORTED_SETUP|REJECTED_SETUP|REJECTED_RESUME]
		// frame." "A client MUST ignore [them] after it has completed connection establishment."
		if c.server || c.established {
			return true
		}
	}
	e := &Error{Code: code, Message: string(f.ErrorMessage())}
	if code == frame.CodeConnectionClose {
		// Graceful: finish the open streams, then close (drain.go). Keep reading their frames.
		c.startDrain(e, true)
		return true
	}
	c.shutdown(e, nil)
	return false
}

// onRequestFrame handles REQUEST_* frames: the first (or only) fragment of a new request.
func (c *Conn) onRequestFrame(f frame.Frame) {
	id := f.StreamID()
	if !c.isPeerID(id) {
		return // the peer must open streams with its own parity; ignore
	}
	if c.reasm[id] != nil || c.inUse(id) {
		return // "Receiving a Request frame on a Stream ID that is already in use MUST be ignored."
	}
	if f.Has(frame.FlagFollows) {
		c.startReassembly(f, id)
		return
	}
	c.dispatchRequest(f.Type(), id, f.Flags(), f.InitialRequestN(), Payload{Metadata: f.Metadata(), Data: f.Data()})
}

// dispatchRequest hands a whole request to the handler (reader goroutine).
func (c *Conn) dispatchRequest(t frame.Type, id uint32, flags frame.Flags, initialN uint32, p Payload) {
	if c.lease.enforce && !c.lease.takeIssued() {
		_ = c.sendError(id, frame.CodeRejected, "no lease")
		return
	}
	h := c.handler
	if c.loadState() != stateOpen {
		if t != frame.TypeRequestFNF {
			_ = c.sendError(id, frame.CodeRejected, "connection closing")
		}
		return
	}
	if h == nil {
		if t != frame.TypeRequestFNF {
			_ = c.sendError(id, frame.CodeRejected, "no handler")
		}
		return
	}
	switch t {
	case frame.TypeRequestFNF:
		h.FireAndForget(p)
	case frame.TypeRequestResponse:
		s := &Stream{c: c, id: id, kind: kindRequestResponse, inDone: true}
		if c.insert(s) {
			h.RequestResponse(p, s)
		}
	case frame.TypeRequestStream:
		s := &Stream{c: c, id: id, kind: kindStream, inDone: true}
		s.grantOut(initialN)
		if c.insert(s) {
			h.RequestStream(p, initialN, s)
		}
	case frame.TypeRequestChannel:
		complete := flags&frame.FlagComplete != 0
		s := &Stream{c: c, id: id, kind: kindChannel, inDone: complete}
		s.grantOut(initialN)
		if c.insert(s) {
			s.sub = h.RequestChannel(p, initialN, complete, s)
		}
	}
}

// grantOut sets the initial outbound credit (before the stream is shared).
func (s *Stream) grantOut(n uint32) {
	if n >= frame.MaxRequestN {
		s.outUnbounded = true
	} else {
		s.outCredit = n
	}
}

// onPayloadFrame handles PAYLOAD: a whole item, or a fragment.
func (c *Conn) onPayloadFrame(f frame.Frame) {
	id := f.StreamID()
	if len(c.reasm) > 0 {
		if r := c.reasm[id]; r != nil {
			c.onFragment(r, id, f)
			return
		}
	}
	if f.Has(frame.FlagFollows) {
		if c.inUse(id) {
			c.startReassembly(f, id)
		}
		return
	}
	c.deliverPayload(id, f.Flags(), Payload{Metadata: f.Metadata(), Data: f.Data()}, nil)
}

// deliverPayload delivers a whole PAYLOAD to its stream. r, when non-nil, owns the bytes of p (a
// reassembled payload) and is released here (or its buffer handed to a Message).
func (c *Conn) deliverPayload(id uint32, flags frame.Flags, p Payload, r *reassembly) {
	next, complete := flags&frame.FlagNext != 0, flags&frame.FlagComplete != 0
	if !next && !complete {
		c.releaseReassembly(r) // "PAYLOAD ... MUST NOT have both (C)omplete and (N)ext empty": ignore
		return
	}
	rc, s := c.takeCallOrLookup(id)
	if rc != nil {
		// Request-response answer: N (with or without C: "MUST assume it is set") or C alone (empty).
		var m *Message
		switch {
		case !next:
			m = newMessage(nil, 0, false)
			c.releaseReassembly(r)
		case r != nil:
			m = newMessage(r.buf, r.mdLen, r.hasMD)
			c.forgetReassembly(r)
			r.buf = nil
		default:
			m = copyMessage(p.Metadata, p.Data)
		}
		rc.deliver(m, nil)
		return
	}
	if s == nil {
		c.releaseReassembly(r) // unknown stream (or canceled by us): drop quietly
		return
	}
	// Only streams that receive items: requester stream/channel, responder channel.
	if s.requester || s.kind == kindChannel {
		s.onPayload(next, complete, p)
	}
	c.releaseReassembly(r)
}

// forgetReassembly stops counting r's bytes against the connection-wide limit.
func (c *Conn) forgetReassembly(r *reassembly) {
	c.reasmBytes -= r.size
	r.size = 0
}

func (c *Conn) releaseReassembly(r *reassembly) {
	if r != nil {
		c.forgetReassembly(r)
	}
	if r != nil && r.buf != nil {
		bufpool.Put(r.buf)
		r.buf = nil
	}
}

func (c *Conn) dropReassembly(id uint32) {
	if len(c.reasm) == 0 {
		return
	}
	if r := c.reasm[id]; r != nil {
		delete(c.reasm, id)
		c.releaseReassembly(r)
	}
}

// startReassembly begins collecting a fragmented REQUEST_* or PAYLOAD.
func (c *Conn) startReassembly(f frame.Frame, id uint32) {
	if c.reasm == nil {
		c.reasm = make(map[uint32]*reassembly)
	}
	r := &reassembly{t: f.Type(), initialN: f.InitialRequestN(), buf: bufpool.Get(0)}
	c.reasm[id] = r
	c.onFragment(r, id, f)
}

// onFragment appends one fragment. The sequence ends with the first fragment without F.
//
// Deviation, documented: the spec says "A PAYLOAD with both F and C flags set, implicitly ignores the F
// flag", but rsocket-go up to v0.8.12 sets C on the *first* fragment of a fragmented final item (fixed by
// rsocket-go PR #147) and then sends the remaining fragments. Honouring C there would truncate the item and
// misread the continuations, so we let F win: C seen on any fragment is remembered and applied when the
// sequence ends. Conforming peers never send F and C together, so they are not affected.
func (c *Conn) onFragment(r *reassembly, id uint32, f frame.Frame) {
	if r.t == frame.TypePayload && len(r.buf.B) > 0 && !c.inUse(id) {
		// The stream ended meanwhile (canceled by us, for example): drop what was collected.
		delete(c.reasm, id)
		c.releaseReassembly(r)
		return
	}
	md, data := f.Metadata(), f.Data()
	if md != nil {
		if len(r.buf.B) > r.mdLen && len(md) > 0 {
			c.abortReassembly(r, id, fmt.Errorf("%w: metadata fragment after data", ErrProtocol))
			return
		}
		r.hasMD = true
	}
	n := len(md) + len(data)
	if len(r.buf.B)+n > c.cfg.maxReassembled {
		c.abortReassembly(r, id, ErrTooLarge)
		return
	}
	if c.reasmBytes+n > c.cfg.maxReassembled*reassemblyTotalFactor {
		// Many streams reassembling at once: bound the connection's total, not only each stream's.
		c.abortReassembly(r, id, fmt.Errorf("%w: reassembly buffers of the connection full", ErrTooLarge))
		return
	}
	r.size += n
	c.reasmBytes += n
	r.buf = bufpool.Grow(r.buf, n)
	r.buf.B = append(r.buf.B, md...)
	r.mdLen += len(md)
	r.buf.B = append(r.buf.B, data...)
	fl := f.Flags()
	r.flags |= fl & (frame.FlagComplete | frame.FlagNext)
	if fl&frame.FlagFollows != 0 {
		return
	}
	delete(c.reasm, id)
	p := Payload{Data: r.buf.B[r.mdLen:]}
	if r.hasMD {
		p.Metadata = r.buf.B[:r.mdLen:r.mdLen]
	}
	if r.t != frame.TypePayload {
		c.dispatchRequest(r.t, id, r.flags, r.initialN, p)
		c.releaseReassembly(r)
		return
	}
	flags := r.flags
	if flags&(frame.FlagNext|frame.FlagComplete) == 0 {
		flags |= frame.FlagNext
	}
	c.deliverPayload(id, flags, p, r)
}

// abortReassembly ends a stream whose reassembly failed (too large, or malformed): a request is
// rejected; our own stream is canceled and fails locally; a channel we respond to gets ERROR[INVALID].
func (c *Conn) abortReassembly(r *reassembly, id uint32, err error) {
	delete(c.reasm, id)
	c.releaseReassembly(r)
	if c.cfg.log.Core().Enabled(zap.DebugLevel) {
		c.cfg.log.Debug("rsocket: reassembly aborted", zap.Uint32("stream", id), zap.Error(err))
	}
	if r.t != frame.TypePayload {
		_ = c.sendError(id, frame.CodeRejected, err.Error())
		return
	}
	if rc := c.takeCall(id, nil); rc != nil {
		_ = c.sendCancel(id)
		rc.deliver(nil, err)
		return
	}
	s := c.lookup(id)
	switch {
	case s == nil:
	case s.requester:
		_ = c.sendCancel(id)
		s.onTerminate(err, true)
	default:
		_ = c.sendError(id, frame.CodeInvalid, err.Error())
		s.onTerminate(err, true)
	}
}
