package rsocket

import (
	"context"

	"github.com/rsgate/rsgate/rsocket/frame"
)

// Relay is a stream in relay mode: a proxy that joins a stream of one session to a stream of another (the
// gateway's RSocket-over-WebSocket route) passes REQUEST_N credit through one to one instead of
// buffering. It takes the credit the peer grants on one side with TakeCredit and grants exactly that on
// the other side with Stream.Request; items received on the other side are then forwarded with Forward,
// which sends without consuming credit (the credit was already handed on) and without waiting.
//
// Stream.Relay switches a stream to relay mode for good: Send and Respond then fail with ErrRelayMode
// (their credit accounting would see none), so the two modes cannot be mixed by mistake. Request,
// Cancel, Complete, Error, Done and Err keep working on the Stream.
type Relay struct{ s *Stream }

// Relay switches s to relay mode (idempotent) and returns its relay view.
func (s *Stream) Relay() Relay {
	s.mu.Lock()
	s.relay = true
	s.mu.Unlock()
	return Relay{s}
}

// Stream returns the underlying stream.
func (r Relay) Stream() *Stream { return r.s }

// CreditNotify returns a channel that receives a value (one-slot, edge-triggered) when the peer grants
// outbound credit (REQUEST_N, or an initial N not taken yet) or the stream ends. Call TakeCredit after each
// wake-up.
func (r Relay) CreditNotify() <-chan struct{} {
	s := r.s
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

// TakeCredit removes and returns the outbound credit granted by the peer and not taken yet: the initial
// N of a stream or channel we respond to, plus every REQUEST_N since. After the peer granted unbounded
// credit (2^31-1 in total) it returns frame.MaxRequestN on every call. It returns 0 when there is none,
// and after the stream ended or our direction completed.
func (r Relay) TakeCredit() uint32 {
	s := r.s
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
// and without waiting for queue space: the peer requested it already (its credit was handed on with
// TakeCredit). p is copied. complete also ends our direction (and the stream, when the peer's direction
// has ended). On a request-response stream it is the answer.
func (r Relay) Forward(p Payload, complete bool) error {
	s := r.s
	if s.kind == kindRequestResponse {
		return s.sendOut(frame.FlagNext|frame.FlagComplete, p, false)
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

// WaitQueueSpace waits until the bytes copied into the session's write queue are below MaxQueuedBytes
// (the bound Stream.Send waits for), ctx ends (its error is returned), or the session closes (its
// error). A relay calls it before granting the peer on the other side more credit, so items it will
// Forward here cannot pile up in this session's queue.
func (c *Conn) WaitQueueSpace(ctx context.Context) error {
	if err := c.q.lockSpace(ctx); err != nil {
		return err
	}
	c.q.mu.Unlock()
	return nil
}
