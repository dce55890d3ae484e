package rsocket

import (
	"context"

	"github.com/rsgate/rsgate/rsocket/frame"
)

// Relay support: a proxy that joins a stream of one connection to a stream of another (the gateway's
// RSocket-over-WebSocket route) passes REQUEST_N credit through one to one instead of buffering. It takes
// the credit the peer grants on one side with TakeCredit and grants exactly that on the other side with
// Request; items received on the other side are then forwarded with Forward, which sends without
// consuming credit (the credit was already handed on) and without waiting. A stream used this way must
// not also be used with Send or Respond (their credit accounting would see none).

// CreditNotify returns a channel that receives a value (one-slot, edge-triggered) when the peer grants
// outbound credit (REQUEST_N, or an initial N not taken yet) or the stream ends. Call TakeCredit after each
// wake-up. The channel is shared with Send's waiters: use one or the other on a stream.
func (s *Stream) CreditNotify() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.creditCh == nil {
		s.creditCh = make(chan struct{}, 1)
	}
	if s.ended || s.outCredit > 0 || s.outUnbounded {
		select {
		case s.creditCh <- struct{}{}:
		default:
		}
	}
	return s.creditCh
}

// TakeCredit removes and returns the outbound credit granted by the peer and not taken (or used by Send)
// yet: the initial N of a stream or channel we respond to, plus every REQUEST_N since. After the peer
// granted unbounded credit (2^31-1 in total) it returns frame.MaxRequestN on every call. It returns 0 when
// there is none, and after the stream ended or our direction completed.
func (s *Stream) TakeCredit() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || s.outDone {
		return 0
	}
	if s.outUnbounded {
		return frame.MaxRequestN
	}
	n := s.outCredit
	s.outCredit = 0
	return n
}

// Forward sends p as an item (PAYLOAD with N; with C too when complete) without consuming outbound credit
// and without waiting for queue space: for relays that hand the peer's credit on with TakeCredit, so the
// item was requested by the peer already. p is copied. complete also ends our direction (and the stream,
// when the peer's direction has ended). On a request-response stream it is Respond.
func (s *Stream) Forward(p Payload, complete bool) error {
	if s.kind == kindRequestResponse {
		return s.Respond(p)
	}
	flags := frame.FlagNext
	if complete {
		flags |= frame.FlagComplete
	}
	return s.sendOut(flags, p, false)
}

// InboundDone reports whether the peer's direction of the stream has ended (its last item, completion,
// or the end of the stream).
func (s *Stream) InboundDone() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inDone || s.ended
}

// WaitQueueSpace waits until the bytes copied into the connection's write queue are below
// MaxQueuedBytes (the bound Stream.Send waits for), ctx ends (its error is returned; ctx may be nil), or
// the connection closes (its error). A relay calls it before granting the peer on the other side more
// credit, so items it will Forward here cannot pile up in this connection's queue.
func (c *Conn) WaitQueueSpace(ctx context.Context) error {
	if err := c.lockQueueSpace(ctx); err != nil {
		return err
	}
	c.wmu.Unlock()
	return nil
}
