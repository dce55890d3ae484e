package rsocket

import (
	"context"
	"errors"

	"github.com/rsgate/rsgate/rsocket/frame"
)

// ErrInvalidRequestN: RequestStream and RequestChannel need an initial request n > 0 (the spec forbids 0).
var ErrInvalidRequestN = errors.New("rsocket: initial request n must be greater than 0")

// RequestResponse sends p as REQUEST_RESPONSE and waits for the answer, the peer's ERROR (*Error), the
// end of the session (ErrClosed) or ctx (on ctx end a CANCEL is sent). It returns the stream id the
// request went out on (0 when it failed before it got one), for logs that correlate a request with
// frames on the wire.
//
// p's slices are written to the transport in place (zero copy); they are free again when
// RequestResponse returns, which it does only once the writer is done with them. The *Message answer
// owns a pooled buffer: call Release when done with it. It is never nil when err is nil (an answer
// without data, "PAYLOAD with C only", is an empty Message).
func (c *Conn) RequestResponse(ctx context.Context, p Payload) (*Message, uint32, error) {
	ctxDone := ctx.Done()
	if ctxDone != nil {
		select {
		case <-ctxDone:
			return nil, 0, ctx.Err()
		default:
		}
	}
	if err := c.checkFrameSize(frame.TypeRequestResponse, p.Metadata, p.Data); err != nil {
		return nil, 0, err
	}
	if err := c.lease.take(); err != nil {
		return nil, 0, err
	}
	rc := getCall()
	if err := c.registerCall(rc); err != nil {
		rc.recycle()
		return nil, 0, err
	}
	id := rc.id
	if err := c.enqueuePayload(frame.TypeRequestResponse, id, 0, 0, p.Metadata, p.Data, true, &rc.notifier); err != nil {
		if c.takeCall(id, rc) == nil {
			<-rc.ev // teardown took it and delivers the session's error
			if rc.msg != nil {
				rc.msg.Release()
			}
		}
		rc.recycle()
		return nil, id, err
	}
	select {
	case <-rc.ev:
	case <-ctxDone:
		if c.takeCall(id, rc) != nil {
			// We own the call: no answer will be delivered. "Upon sending a CANCEL, the stream is
			// terminated on the Requester"; a late answer finds no stream and is dropped.
			_ = c.sendCancel(id)
			<-rc.wr
			rc.recycle()
			return nil, id, ctx.Err()
		}
		<-rc.ev // the answer (or error) is being delivered right now: take it
	}
	<-rc.wr
	m, err := rc.msg, rc.err
	rc.recycle()
	return m, id, err
}

// FireAndForgetOptions selects how FireAndForget waits.
type FireAndForgetOptions struct {
	// NoWait: copy the payload into the write queue and return at once, without waiting for the frame
	// to be written. The call then waits only while the queue holds more than Options.MaxQueuedBytes
	// (back-pressure from a slow transport), or until ctx ends. Errors after queueing (the session ends
	// before the writer gets to the frame) are not reported. Use it where the caller does not need to
	// know that the frame left (a logger, a metrics pipe).
	//
	// Without NoWait (the default) p's slices are written in place (zero copy) and FireAndForget returns
	// once the frame has been written, or with the error that prevented it (the gateway answers 202 only
	// once the frame is written). ctx is checked before queuing; once queued, the frame is written or
	// dropped by the writer without waiting for ctx.
	NoWait bool
}

// FireAndForget sends p as REQUEST_FNF and returns the frame's stream id (0 when it failed before it got
// one). See FireAndForgetOptions for when it returns.
func (c *Conn) FireAndForget(ctx context.Context, p Payload, opts FireAndForgetOptions) (uint32, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := c.checkFrameSize(frame.TypeRequestFNF, p.Metadata, p.Data); err != nil {
		return 0, err
	}
	if err := c.lease.take(); err != nil {
		return 0, err
	}
	id, err := c.nextStreamID()
	if err != nil {
		return 0, err
	}
	if opts.NoWait {
		if err := c.q.lockSpace(ctx); err != nil {
			return id, err
		}
		c.q.appendPayload(c.cfg.mtu, frame.TypeRequestFNF, id, 0, 0, p.Metadata, p.Data, false, nil)
		c.q.unlock()
		return id, nil
	}
	rc := getCall()
	if err := c.enqueuePayload(frame.TypeRequestFNF, id, 0, 0, p.Metadata, p.Data, true, &rc.notifier); err != nil {
		rc.recycle()
		return id, err
	}
	<-rc.wr
	dropped := rc.dropped
	rc.recycle()
	if dropped { // the session ended before the frame was written
		if err := c.Err(); err != nil {
			return id, err
		}
		return id, ErrClosed
	}
	return id, nil
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
	return c.sendControl(control{t: frame.TypeMetadataPush, data: md})
}
