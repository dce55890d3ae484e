package rsocket

import (
	"context"
	"sync"

	"github.com/rsgate/rsgate/rsocket/frame"
)

type streamKind uint8

const (
	kindRequestResponse streamKind = iota + 1
	kindStream
	kindChannel
)

// closedChan is a closed channel shared by every Done() called after termination.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Stream is one request-response, request-stream or request-channel, seen from the requester or the
// responder side. Its methods are safe for concurrent use from any goroutine.
//
// Directions: out is what this side sends (PAYLOADs under the peer's REQUEST_N credit), in is what it
// receives. The stream terminates (Done closes, the id leaves the table) when both directions are
// complete, or at once on CANCEL, ERROR or the end of the connection.
type Stream struct {
	c         *Conn
	id        uint32
	kind      streamKind
	requester bool
	relay     bool // switched to relay mode by Relay: Send and Respond refuse (relay.go)

	sub Subscriber // inbound items; used on the reader goroutine only

	mu           sync.Mutex
	outCredit    uint32 // PAYLOADs we may still send
	outUnbounded bool   // the peer granted 2^31-1: no more accounting
	inUnbounded  bool   // we granted 2^31-1: no more REQUEST_N
	creditCh     chan struct{}
	outDone      bool // our direction is complete (or we never send)
	inDone       bool // the peer's direction is complete (or it never sends)
	ended        bool
	endErr       error // why it ended, for calls made afterwards
	done         chan struct{}
}

// ID returns the stream id.
func (s *Stream) ID() uint32 { return s.id }

// Done is closed when the stream has terminated in both directions (or was canceled, failed, or its
// connection ended).
func (s *Stream) Done() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		if s.ended {
			return closedChan
		}
		s.done = make(chan struct{})
	}
	return s.done
}

// Err returns why the stream ended: nil while open or after normal completion in both directions,
// ErrCanceled, a *Error from the peer, or the connection's error.
func (s *Stream) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.endErr == ErrStreamDone {
		return nil
	}
	return s.endErr
}

// endLocked marks the stream ended. s.mu must be held; the caller then calls finish.
func (s *Stream) endLocked(err error) {
	s.ended = true
	s.endErr = err
	s.inDone, s.outDone = true, true
	if s.done != nil {
		close(s.done)
	} else {
		s.done = closedChan
	}
	s.signalCreditLocked()
}

// signalCreditLocked wakes one waiter on creditCh (Send, or a relay's CreditNotify). A woken Send that
// finds credit left, or the stream ended, passes the wake-up on, so every waiter gets to run. creditCh is
// never closed: relay.go sends on it too.
func (s *Stream) signalCreditLocked() {
	if s.creditCh != nil {
		select {
		case s.creditCh <- struct{}{}:
		default:
		}
	}
}

// finish removes the ended stream from the table.
func (s *Stream) finish() {
	s.c.take(s.id, s)
}

// errLocked is the error for a call that needs the stream open.
func (s *Stream) errLocked() error {
	if s.endErr != nil {
		return s.endErr
	}
	return ErrStreamDone
}

// Request grants the peer n more items (REQUEST_N). Credit is cumulative; n >= 2^31-1 means unbounded,
// after which further calls send nothing. It does nothing on streams that receive no items, or after the
// inbound direction ended.
func (s *Stream) Request(n uint32) {
	if n == 0 {
		return
	}
	s.mu.Lock()
	if s.ended || s.inDone || s.inUnbounded {
		s.mu.Unlock()
		return
	}
	if n >= frame.MaxRequestN {
		n = frame.MaxRequestN
		s.inUnbounded = true
	}
	s.mu.Unlock()
	_ = s.c.sendRequestN(s.id, n)
}

// Cancel ends the stream. On the requester side it sends CANCEL (the stream ends at once; late frames
// from the peer are dropped). On the responder side, where the protocol has no CANCEL, it sends
// ERROR[CANCELED]. No Subscriber callback follows.
func (s *Stream) Cancel() {
	if !s.requester {
		_ = s.Error(frame.CodeCanceled, "canceled by responder")
		return
	}
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.endLocked(ErrCanceled)
	s.mu.Unlock()
	_ = s.c.sendCancel(s.id)
	s.finish()
}

// Send sends one item (PAYLOAD with N). It blocks until the peer has granted credit, the stream ends
// (its error is returned), or ctx is done (ctx must not be nil). The payload is copied: p may be reused
// when Send returns. On a request-response responder stream Send is Respond. On a stream in relay mode
// it fails with ErrRelayMode.
func (s *Stream) Send(ctx context.Context, p Payload) error {
	if s.kind == kindRequestResponse {
		return s.Respond(p)
	}
	s.mu.Lock()
	if s.relay {
		s.mu.Unlock()
		return ErrRelayMode
	}
	for {
		if s.ended {
			err := s.errLocked()
			s.signalCreditLocked() // pass the end on to the next waiting Send
			s.mu.Unlock()
			return err
		}
		if s.outDone {
			s.mu.Unlock()
			return ErrStreamDone
		}
		if s.outUnbounded {
			break
		}
		if s.outCredit > 0 {
			s.outCredit--
			break
		}
		if s.creditCh == nil {
			s.creditCh = make(chan struct{}, 1)
		}
		ch := s.creditCh
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		s.mu.Lock()
	}
	if s.outUnbounded || s.outCredit > 0 {
		s.signalCreditLocked() // let another waiting Send see the remaining credit
	}
	s.mu.Unlock()
	err := s.c.enqueueItem(ctx, s.id, frame.FlagNext, p.Metadata, p.Data)
	if err != nil && err == ctx.Err() {
		// Nothing was queued (ctx ended while waiting for queue space): give the credit back.
		s.mu.Lock()
		if !s.outUnbounded && !s.ended {
			s.outCredit++
			s.signalCreditLocked()
		}
		s.mu.Unlock()
	}
	return err
}

// Respond sends p as the final item (PAYLOAD with N|C): the answer of a request-response, or the last
// item of a stream or channel (which needs credit: ErrNoCredit otherwise; it never waits). The payload
// is copied. On a stream in relay mode it fails with ErrRelayMode.
func (s *Stream) Respond(p Payload) error {
	return s.sendOut(frame.FlagNext|frame.FlagComplete, p, true)
}

// enqueueItem is enqueuePayload (copying) for Stream.Send: it waits for queue space first.
func (c *Conn) enqueueItem(ctx context.Context, id uint32, flags frame.Flags, md, data []byte) error {
	if err := c.checkFrameSize(frame.TypePayload, md, data); err != nil {
		return err
	}
	if err := c.q.lockSpace(ctx); err != nil {
		return err
	}
	c.q.appendPayload(c.cfg.mtu, frame.TypePayload, id, flags, 0, md, data, false, nil)
	c.q.unlock()
	return nil
}

// sendOut queues a PAYLOAD with flags on our direction without waiting (Respond, Complete, Forward);
// with FlagComplete it also completes our direction. takeCredit: a stream or channel item uses one credit
// (ErrNoCredit without any).
func (s *Stream) sendOut(flags frame.Flags, p Payload, takeCredit bool) error {
	if err := s.c.checkFrameSize(frame.TypePayload, p.Metadata, p.Data); err != nil {
		return err
	}
	s.mu.Lock()
	if s.ended {
		err := s.errLocked()
		s.mu.Unlock()
		return err
	}
	if s.outDone {
		s.mu.Unlock()
		return ErrStreamDone
	}
	if takeCredit && s.relay {
		s.mu.Unlock()
		return ErrRelayMode
	}
	if takeCredit && s.kind != kindRequestResponse && !s.outUnbounded {
		if s.outCredit == 0 {
			s.mu.Unlock()
			return ErrNoCredit
		}
		s.outCredit--
	}
	end := false
	if flags&frame.FlagComplete != 0 {
		end = s.completeOutLocked()
	}
	s.mu.Unlock()
	err := s.c.enqueuePayload(frame.TypePayload, s.id, flags, 0, p.Metadata, p.Data, false, nil)
	if end {
		s.finish()
	}
	return err
}

// completeOutLocked marks our direction complete and ends the stream if the other one is too.
func (s *Stream) completeOutLocked() (ended bool) {
	s.outDone = true
	if s.inDone {
		s.endLocked(ErrStreamDone)
		return true
	}
	return false
}

// Complete ends our direction without an item (PAYLOAD with C). For a request-response it is an empty
// answer.
func (s *Stream) Complete() error {
	return s.sendOut(frame.FlagComplete, Payload{}, false)
}

// Error ends the stream in both directions with ERROR[code]. Codes that are not valid on a stream
// (setup and connection codes) are sent as APPLICATION_ERROR. No Subscriber callback follows.
func (s *Stream) Error(code frame.ErrorCode, msg string) error {
	if code < frame.CodeApplicationError || code == frame.CodeReservedExt {
		code = frame.CodeApplicationError
	}
	s.mu.Lock()
	if s.ended {
		err := s.errLocked()
		s.mu.Unlock()
		return err
	}
	s.endLocked(ErrStreamDone)
	s.mu.Unlock()
	err := s.c.sendError(s.id, code, msg)
	s.finish()
	return err
}

// addCredit handles REQUEST_N from the peer (reader goroutine).
func (s *Stream) addCredit(n uint32) {
	s.mu.Lock()
	if s.ended || s.outDone || s.outUnbounded {
		s.mu.Unlock()
		return
	}
	if n >= frame.MaxRequestN || uint64(s.outCredit)+uint64(n) >= frame.MaxRequestN {
		s.outUnbounded = true
	} else {
		s.outCredit += n
	}
	s.signalCreditLocked()
	s.mu.Unlock()
}

// onPayload handles an inbound PAYLOAD (reader goroutine).
func (s *Stream) onPayload(next, complete bool, p Payload) {
	s.mu.Lock()
	if s.ended || s.inDone {
		s.mu.Unlock()
		return
	}
	end := false
	if complete {
		s.inDone = true
		if s.outDone {
			s.endLocked(ErrStreamDone)
			end = true
		}
	}
	s.mu.Unlock()
	if s.sub != nil {
		if next {
			s.sub.OnNext(p, complete)
		} else {
			s.sub.OnComplete()
		}
	}
	if end {
		s.finish()
	}
}

// onTerminate handles CANCEL or ERROR from the peer, or a local failure delivered on the reader goroutine
// (too-large reassembly, connection end). inTable: remove the stream from the table.
func (s *Stream) onTerminate(err error, inTable bool) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	inOpen := !s.inDone
	s.endLocked(err)
	s.mu.Unlock()
	if inOpen && s.sub != nil {
		s.sub.OnError(err)
	}
	if inTable {
		s.finish()
	}
}
