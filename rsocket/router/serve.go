package router

import (
	"context"
	"sync"

	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/frame"
)

// connHandler is the rsocket.Handler of one connection.
type connHandler struct {
	r           *Router
	routingOnly bool // SETUP metadata MIME message/x.rsocket.routing.v0: the metadata is the tags alone
}

// DefaultChannelWindow is Router.ChannelWindow's default.
const DefaultChannelWindow = 32

// streamContext is canceled when s ends before the handler does (CANCEL, connection closed).
func streamContext(s *rsocket.Stream) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-s.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

func noHandler(kind, tag string) (frame.ErrorCode, string) {
	return frame.CodeApplicationError, "no handler for " + kind + " " + quote(tag)
}

func quote(s string) string { return `"` + s + `"` }

// request decodes p and finds the handler of table t; it answers s with an error when it cannot.
func lookup[H any](h *connHandler, t *table[H], kind string, p rsocket.Payload) (*Request, H, bool, frame.ErrorCode, string) {
	var zero H
	q, err := newRequest(p, h.routingOnly)
	if err != nil {
		return nil, zero, false, frame.CodeInvalid, err.Error()
	}
	h.r.mu.RLock()
	fn, ps, ok := t.lookup(q.Tag)
	h.r.mu.RUnlock()
	if !ok {
		code, msg := noHandler(kind, q.Tag)
		return nil, zero, false, code, msg
	}
	q.params = ps
	return q, fn, true, 0, ""
}

func (h *connHandler) RequestResponse(p rsocket.Payload, s *rsocket.Stream) {
	q, fn, ok, code, msg := lookup(h, &h.r.rr, "request-response", p)
	if !ok {
		_ = s.Error(code, msg)
		return
	}
	go func() {
		ctx, cancel := streamContext(s)
		defer cancel()
		resp, err := fn(ctx, q)
		if err != nil {
			_ = s.Error(errorFrame(err))
			return
		}
		md, err := responseMetadata(&resp)
		if err != nil {
			_ = s.Error(frame.CodeApplicationError, "router: response metadata: "+err.Error())
			return
		}
		if resp.Data == nil && md == nil {
			_ = s.Complete() // an empty answer
			return
		}
		_ = s.Respond(rsocket.Payload{Data: resp.Data, Metadata: md})
	}()
}

func (h *connHandler) FireAndForget(p rsocket.Payload) {
	q, fn, ok, _, _ := lookup(h, &h.r.fnf, "fire-and-forget", p)
	if !ok {
		return // nobody to tell
	}
	go fn(context.Background(), q)
}

func (h *connHandler) RequestStream(p rsocket.Payload, _ uint32, s *rsocket.Stream) {
	q, fn, ok, code, msg := lookup(h, &h.r.stream, "request-stream", p)
	if !ok {
		_ = s.Error(code, msg)
		return
	}
	go func() {
		ctx, cancel := streamContext(s)
		defer cancel()
		send := func(data []byte) error { return s.Send(ctx, rsocket.Payload{Data: data}) }
		if err := fn(ctx, q, send); err != nil {
			if ctx.Err() == nil {
				_ = s.Error(errorFrame(err))
			}
			return
		}
		_ = s.Complete()
	}()
}

func (h *connHandler) RequestChannel(p rsocket.Payload, _ uint32, complete bool, s *rsocket.Stream) rsocket.Subscriber {
	q, fn, ok, code, msg := lookup(h, &h.r.ch, "request-channel", p)
	if !ok {
		_ = s.Error(code, msg)
		return nil
	}
	window := h.r.ChannelWindow
	if window <= 0 {
		window = DefaultChannelWindow
	}
	in := &inbound{s: s, buf: make(chan []byte, window+1), out: make(chan []byte)}
	if complete {
		in.end()
	} else {
		s.Request(uint32(window))
	}
	go in.pump()
	go func() {
		ctx, cancel := streamContext(s)
		defer cancel()
		send := func(data []byte) error { return s.Send(ctx, rsocket.Payload{Data: data}) }
		if err := fn(ctx, q, in.out, send); err != nil {
			if ctx.Err() == nil {
				_ = s.Error(errorFrame(err))
			}
			return
		}
		_ = s.Complete()
	}()
	return in
}

func (h *connHandler) MetadataPush([]byte) {}

// inbound is the Subscriber of a channel's requester items. OnNext runs on the connection's reader and
// never blocks: buf has room for every item the router asked for. pump hands the items to the handler
// one by one on out and asks for one more item for each it handed over.
type inbound struct {
	s    *rsocket.Stream
	buf  chan []byte
	out  chan []byte
	once sync.Once
}

func (in *inbound) OnNext(p rsocket.Payload, complete bool) {
	select {
	case in.buf <- clone(p.Data):
	default: // more than the credit granted: a protocol violation by the requester
		in.s.Cancel()
	}
	if complete {
		in.end()
	}
}

func (in *inbound) OnComplete()   { in.end() }
func (in *inbound) OnError(error) { in.end() }
func (in *inbound) end()          { in.once.Do(func() { close(in.buf) }) }

func (in *inbound) pump() {
	defer close(in.out)
	for {
		select {
		case item, ok := <-in.buf:
			if !ok {
				return
			}
			select {
			case in.out <- item:
				in.s.Request(1)
			case <-in.s.Done():
				return
			}
		case <-in.s.Done():
			return
		}
	}
}
