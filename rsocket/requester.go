package rsocket

import (
	"context"
	"errors"

	"github.com/rsgate/rsgate/rsocket/frame"
)

// ErrInvalidRequestN: RequestStream and RequestChannel need an initial request n > 0 (the spec forbids 0).
var ErrInvalidRequestN = errors.New("rsocket: initial request n must be greater than 0")

// RequestResponse sends p as REQUEST_RESPONSE and waits for the answer, the peer's ERROR (*Error), the
// end of the connection (ErrClosed) or ctx (nil allowed; on ctx end a CANCEL is sent).
//
// p's slices are written to the transport in place (zero copy); they are free again when
// RequestResponse returns, which it does only once the writer is done with them. The *Message answer
// owns a pooled buffer: call Release when done with it. It is never nil when err is nil (an answer
// without data, "PAYLOAD with C only", is an empty Message).
func (c *Conn) RequestResponse(ctx context.Context, p Payload) (*Message, error) {
	return c.requestResponse(ctx, p, nil)
}

// requestResponse is RequestResponse; it stores the request's stream id in *id (nil: not wanted) once
// the stream is registered (see RequestResponseID).
func (c *Conn) requestResponse(ctx context.Context, p Payload, id *uint32) (*Message, error) {
	var ctxDone <-chan struct{}
	if ctx != nil {
		if ctxDone = ctx.Done(); ctxDone != nil {
			select {
			case <-ctxDone:
				return nil, ctx.Err()
			default:
			}
		}
	}
	if err := c.checkFrameSize(frame.TypeRequestResponse, p.Metadata, p.Data); err != nil {
		return nil, err
	}
	if err := c.lease.take(); err != nil {
		return nil, err
	}
	s := getRR(c)
	if err := c.register(s); err != nil {
		s.recycle()
		return nil, err
	}
	if id != nil {
		*id = s.id
	}
	if err := c.enqueuePayload(frame.TypeRequestResponse, s.id, 0, 0, p.Metadata, p.Data, true, s); err != nil {
		if !c.take(s.id, s) {
			<-s.ev // the teardown took it and delivers the connection error
			if s.msg != nil {
				s.msg.Release()
			}
		}
		s.recycle()
		return nil, err
	}
	select {
	case <-s.ev:
	case <-ctxDone:
		if c.take(s.id, s) {
			// We own the stream: no answer will be delivered. "Upon sending a CANCEL, the stream is
			// terminated on the Requester"; a late answer finds no stream and is dropped.
			_ = c.sendCancel(s.id)
			<-s.wr
			s.recycle()
			return nil, ctx.Err()
		}
		<-s.ev // the answer (or error) is being delivered right now: take it
	}
	<-s.wr
	m, err := s.msg, s.rerr
	s.recycle()
	return m, err
}

// FireAndForgetAsync sends a REQUEST_FNF without waiting for it to be written: the payload is copied into
// the write queue and the call returns. It waits only while the queue holds more than
// Options.MaxQueuedBytes (back-pressure from a slow transport), or until ctx ends. Use it where the caller
// does not need to know that the frame left (a logger, a metrics pipe); use FireAndForget where it does
// (the gateway answers 202 only once the frame is written). Errors after queueing (the connection ends
// before the writer gets to the frame) are not reported.
func (c *Conn) FireAndForgetAsync(ctx context.Context, p Payload) error {
	id, err := c.startFNF(ctx, p)
	if err != nil {
		return err
	}
	if err := c.lockQueueSpace(ctx); err != nil {
		return err
	}
	c.appendPayloadLocked(frame.TypeRequestFNF, id, 0, 0, p.Metadata, p.Data, false, nil)
	c.unlockQueue()
	return nil
}

// startFNF does what both fire-and-forget variants do before queueing: ctx, frame size, lease, stream id.
func (c *Conn) startFNF(ctx context.Context, p Payload) (uint32, error) {
	if ctx != nil {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
	}
	if err := c.checkFrameSize(frame.TypeRequestFNF, p.Metadata, p.Data); err != nil {
		return 0, err
	}
	if err := c.lease.take(); err != nil {
		return 0, err
	}
	return c.nextStreamID()
}

// FireAndForget sends p as REQUEST_FNF. It returns once the frame has been written (p's slices are
// written in place and free again on return), or with the error that prevented it. ctx (nil allowed) is
// checked before queuing; once queued, the frame is written or dropped by the writer without waiting for
// ctx.
func (c *Conn) FireAndForget(ctx context.Context, p Payload) error {
	return c.fireAndForget(ctx, p, nil)
}

// fireAndForget is FireAndForget; it stores the frame's stream id in *sid (nil: not wanted) once it is
// assigned (see FireAndForgetID).
func (c *Conn) fireAndForget(ctx context.Context, p Payload, sid *uint32) error {
	id, err := c.startFNF(ctx, p)
	if err != nil {
		return err
	}
	if sid != nil {
		*sid = id
	}
	s := getRR(c)
	if err := c.enqueuePayload(frame.TypeRequestFNF, id, 0, 0, p.Metadata, p.Data, true, s); err != nil {
		s.recycle()
		return err
	}
	<-s.wr
	dropped := s.dropped
	s.recycle()
	if dropped { // the connection ended before the frame was written
		if err := c.Err(); err != nil {
			return err
		}
		return ErrClosed
	}
	return nil
}

// RequestStream sends p as REQUEST_STREAM granting initialN items (>= 2^31-1: unbounded) and returns the
// stream; items arrive at sub on the reader goroutine (see Subscriber). Grant more with Stream.Request,
// stop with Stream.Cancel. p is copied.
func (c *Conn) RequestStream(p Payload, initialN uint32, sub Subscriber) (*Stream, error) {
	return c.openStream(frame.TypeRequestStream, p, initialN, true, sub)
}

// RequestChannel sends p as REQUEST_CHANNEL granting initialN inbound items, with C when complete (we
// will send nothing more). Further items go out with Stream.Send, which waits for the responder's
// REQUEST_N ("the requester sends no PAYLOAD until the responder sends REQUEST_N"); our direction ends
// with Stream.Complete. Inbound items arrive at sub. The channel terminates when both directions
// completed, or on ERROR or CANCEL. p is copied.
func (c *Conn) RequestChannel(p Payload, initialN uint32, complete bool, sub Subscriber) (*Stream, error) {
	return c.openStream(frame.TypeRequestChannel, p, initialN, complete, sub)
}

// openStream sends REQUEST_STREAM or REQUEST_CHANNEL (t) and registers its stream. complete: our direction
// is done from the start (always for a stream; a channel's REQUEST_CHANNEL then carries C).
func (c *Conn) openStream(t frame.Type, p Payload, initialN uint32, complete bool, sub Subscriber) (*Stream, error) {
	if initialN == 0 {
		return nil, ErrInvalidRequestN
	}
	if initialN > frame.MaxRequestN {
		initialN = frame.MaxRequestN
	}
	if err := c.checkFrameSize(t, p.Metadata, p.Data); err != nil {
		return nil, err
	}
	if err := c.lease.take(); err != nil {
		return nil, err
	}
	kind, flags := kindStream, frame.Flags(0)
	if t == frame.TypeRequestChannel {
		kind = kindChannel
		if complete {
			flags = frame.FlagComplete
		}
	}
	s := &Stream{c: c, kind: kind, requester: true, sub: sub, outDone: complete,
		inUnbounded: initialN == frame.MaxRequestN}
	if err := c.register(s); err != nil {
		return nil, err
	}
	if err := c.enqueuePayload(t, s.id, flags, initialN, p.Metadata, p.Data, false, nil); err != nil {
		c.take(s.id, s)
		return nil, err
	}
	return s, nil
}

// MetadataPush sends METADATA_PUSH (stream 0). md is copied.
func (c *Conn) MetadataPush(md []byte) error {
	if md == nil {
		md = emptyMetadata
	}
	if len(md)+frame.HeaderLen > frame.MaxFrameLen {
		return ErrTooLarge
	}
	return c.sendFrame(func(dst []byte) []byte { return frame.AppendMetadataPush(dst, md) })
}
