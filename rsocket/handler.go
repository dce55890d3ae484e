package rsocket

import "github.com/rsgate/rsgate/rsocket/frame"

// Subscriber receives the items of a stream or channel. Its methods are called on the connection's
// reader goroutine, one at a time and never concurrently; they must not block (hand slow work to another
// goroutine). p is valid only during the call: copy what you keep.
//
// A stream's inbound direction ends with exactly one of: OnNext(p, true) (last item), OnComplete() or
// OnError(err). Ending a stream locally (Stream.Cancel, Stream.Error) produces no callback: after such a
// call returns no new callback starts, except one that may already be running on the reader goroutine.
type Subscriber interface {
	OnNext(p Payload, complete bool)
	OnComplete()
	OnError(err error)
}

// Handler serves requests from the peer (either side of a connection may request). Its methods are called
// on the connection's reader goroutine: they must not block, and they must not wait for answers on the
// same connection (the reader delivers them). Start a goroutine for slow work. req is valid only during
// the call. s is valid until the handler has ended it (Respond, Complete, Error) and its Done channel
// closed; after the handler's terminal call s must not be used.
type Handler interface {
	FireAndForget(req Payload)
	// RequestResponse answers with s.Respond (or s.Complete for an empty answer, or s.Error), now or later.
	RequestResponse(req Payload, s *Stream)
	// RequestStream sends up to the granted credit with s.Send, then s.Complete (or s.Error). A CANCEL
	// from the peer closes s.Done() and makes Send fail with ErrCanceled.
	RequestStream(req Payload, initialN uint32, s *Stream)
	// RequestChannel gets the first inbound item as req (complete: the requester has no more), and returns
	// the Subscriber for the following inbound items (nil: drop them). The handler must grant credit with
	// s.Request(n) to receive more than req (the spec requires the responder to send a REQUEST_N); it sends
	// its own items with s.Send (credit initialN, then what the requester grants) and ends its direction
	// with s.Complete or s.Error.
	RequestChannel(req Payload, initialN uint32, complete bool, s *Stream) Subscriber
	MetadataPush(md []byte)
}

// HandlerFuncs implements Handler with optional functions. A nil request function answers
// ERROR[REJECTED] ("not supported"); nil FireAndForgetFunc and MetadataPushFunc drop the frame.
type HandlerFuncs struct {
	FireAndForgetFunc   func(req Payload)
	RequestResponseFunc func(req Payload, s *Stream)
	RequestStreamFunc   func(req Payload, initialN uint32, s *Stream)
	RequestChannelFunc  func(req Payload, initialN uint32, complete bool, s *Stream) Subscriber
	MetadataPushFunc    func(md []byte)
}

const notSupported = "request type not supported"

func (h *HandlerFuncs) FireAndForget(req Payload) {
	if h.FireAndForgetFunc != nil {
		h.FireAndForgetFunc(req)
	}
}

func (h *HandlerFuncs) RequestResponse(req Payload, s *Stream) {
	if h.RequestResponseFunc == nil {
		_ = s.Error(frame.CodeRejected, notSupported)
		return
	}
	h.RequestResponseFunc(req, s)
}

func (h *HandlerFuncs) RequestStream(req Payload, initialN uint32, s *Stream) {
	if h.RequestStreamFunc == nil {
		_ = s.Error(frame.CodeRejected, notSupported)
		return
	}
	h.RequestStreamFunc(req, initialN, s)
}

func (h *HandlerFuncs) RequestChannel(req Payload, initialN uint32, complete bool, s *Stream) Subscriber {
	if h.RequestChannelFunc == nil {
		_ = s.Error(frame.CodeRejected, notSupported)
		return nil
	}
	return h.RequestChannelFunc(req, initialN, complete, s)
}

func (h *HandlerFuncs) MetadataPush(md []byte) {
	if h.MetadataPushFunc != nil {
		h.MetadataPushFunc(md)
	}
}
