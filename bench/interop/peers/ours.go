package peers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/extension"
	"github.com/rsgate/rsgate/rsocket/frame"
)

// streamTimeout bounds how long a responder goroutine waits for credit or for the requester.
const streamTimeout = 60 * time.Second

// OurRoute returns the first routing tag of composite metadata, decoded with rsgate's extension package.
func OurRoute(md []byte) (string, error) {
	if md == nil {
		return "", errors.New("no metadata")
	}
	v, ok := extension.FindComposite(md, extension.MimeRouting)
	if !ok {
		return "", fmt.Errorf("no %s entry in composite metadata % x", extension.MimeRouting, md)
	}
	tag, err := extension.FirstRoutingTag(v)
	if err != nil {
		return "", err
	}
	return string(tag), nil
}

// OurRouteMetadata encodes composite metadata holding one routing tag with rsgate's extension package.
func OurRouteMetadata(tag string) []byte {
	return extension.AppendCompositeEntry(nil, extension.MimeRouting, extension.AppendRouting(nil, tag))
}

// OurAcceptor returns an rsocket.Acceptor serving the routes of this package.
func OurAcceptor(obs *Observations) rsocket.Acceptor {
	return func(setup *rsocket.SetupInfo, c *rsocket.Conn) (rsocket.Handler, error) {
		offer(obs.Setups, Setup{MetadataMIME: setup.MetadataMIME, DataMIME: setup.DataMIME, Data: string(setup.Payload.Data)})
		return &OurHandler{Obs: obs}, nil
	}
}

// OurHandler implements rsocket.Handler with the routes of this package.
type OurHandler struct{ Obs *Observations }

var _ rsocket.Handler = (*OurHandler)(nil)

func (h *OurHandler) route(md []byte) string {
	r, err := OurRoute(md)
	if err != nil {
		offer(h.Obs.Errors, "route: "+err.Error())
		return ""
	}
	return r
}

// FireAndForget implements rsocket.Handler.
func (h *OurHandler) FireAndForget(req rsocket.Payload) {
	if r := h.route(req.Metadata); r != "fnf" {
		offer(h.Obs.Errors, "fire-and-forget to unknown route "+r)
		return
	}
	offer(h.Obs.FNF, string(req.Data))
}

// MetadataPush implements rsocket.Handler.
func (h *OurHandler) MetadataPush(md []byte) { offer(h.Obs.MetadataPush, string(md)) }

// RequestResponse implements rsocket.Handler.
func (h *OurHandler) RequestResponse(req rsocket.Payload, s *rsocket.Stream) {
	switch r := h.route(req.Metadata); r {
	case "echo":
		// req is only valid during the call; the answer is queued, so it gets its own copy.
		_ = s.Respond(rsocket.Payload{Data: append([]byte{}, req.Data...)})
	case "fail":
		_ = s.Error(frame.CodeApplicationError, FailMessage(req.Data))
	case "mdsum":
		_ = s.Respond(rsocket.Payload{Data: []byte(MetadataSum(req.Metadata))})
	case "big":
		// big: answers BigSize bytes (over the default 16 MiB reassembly limit).
		_ = s.Respond(rsocket.Payload{Data: Blob(0, BigSize)})
	case "slow":
		go func() {
			select {
			case <-s.Done():
				offer(h.Obs.Cancels, r)
			case <-time.After(streamTimeout):
			}
		}()
	default:
		_ = s.Error(frame.CodeApplicationError, "no route: "+r)
	}
}

// RequestStream implements rsocket.Handler.
func (h *OurHandler) RequestStream(req rsocket.Payload, initialN uint32, s *rsocket.Stream) {
	r := h.route(req.Metadata)
	if n, ok := StreamCount(r); ok {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), streamTimeout)
			defer cancel()
			for i := 0; i < n; i++ {
				if err := s.Send(ctx, rsocket.Payload{Data: []byte(Item(i))}); err != nil {
					offer(h.Obs.Errors, fmt.Sprintf("%s: send item %d: %v", r, i, err))
					return
				}
			}
			_ = s.Complete()
		}()
		return
	}
	if n, ok := StreamFailRoute(r); ok {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), streamTimeout)
			defer cancel()
			for i := 0; i < n; i++ {
				if err := s.Send(ctx, rsocket.Payload{Data: []byte(Item(i))}); err != nil {
					return
				}
			}
			_ = s.Error(frame.CodeApplicationError, StreamFailMessage(n))
		}()
		return
	}
	if n, size, ok := BlobRoute(r); ok {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), streamTimeout)
			defer cancel()
			for i := 0; i < n; i++ {
				if err := s.Send(ctx, rsocket.Payload{Data: Blob(i, size)}); err != nil {
					offer(h.Obs.Errors, fmt.Sprintf("%s: send item %d: %v", r, i, err))
					return
				}
			}
			_ = s.Complete()
		}()
		return
	}
	if r == "infinite" {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), streamTimeout)
			defer cancel()
			go func() {
				select {
				case <-s.Done():
					offer(h.Obs.Cancels, r)
				case <-ctx.Done():
				}
				cancel()
			}()
			for i := 0; ; i++ {
				if err := s.Send(ctx, rsocket.Payload{Data: []byte(Item(i))}); err != nil {
					return
				}
			}
		}()
		return
	}
	_ = s.Error(frame.CodeApplicationError, "no route: "+r)
}

// RequestChannel implements rsocket.Handler.
func (h *OurHandler) RequestChannel(req rsocket.Payload, initialN uint32, complete bool, s *rsocket.Stream) rsocket.Subscriber {
	if r := h.route(req.Metadata); r != "channel" {
		_ = s.Error(frame.CodeApplicationError, "no route: "+r)
		return discard{}
	}
	e := &echoChannel{s: s, in: make(chan []byte, channelWindow+1), done: make(chan struct{}), obs: h.Obs}
	e.in <- append([]byte{}, req.Data...)
	if complete {
		e.OnComplete()
	} else {
		// The requester may send nothing until we grant credit (REQUEST_N).
		s.Request(channelWindow)
	}
	go e.run()
	return e
}

// channelWindow is the credit the channel route grants its requester (and the size of its queue).
const channelWindow = 1024

type echoChannel struct {
	s    *rsocket.Stream
	in   chan []byte
	done chan struct{}
	obs  *Observations
	fin  bool
	once sync.Once
}

func (e *echoChannel) OnNext(p rsocket.Payload, complete bool) {
	if e.fin {
		offer(e.obs.Errors, "channel: element after complete")
		return
	}
	select {
	case e.in <- append([]byte{}, p.Data...):
	default:
		offer(e.obs.Errors, "channel: requester sent more than the granted credit")
	}
	if complete {
		e.OnComplete()
	}
}

// OnComplete and OnNext are called on the connection's reader goroutine only, so fin needs no lock.
func (e *echoChannel) OnComplete() {
	if !e.fin {
		e.fin = true
		close(e.in)
	}
}

func (e *echoChannel) OnError(err error) {
	offer(e.obs.Errors, "channel: "+err.Error())
	e.once.Do(func() { close(e.done) })
}

func (e *echoChannel) run() {
	ctx, cancel := context.WithTimeout(context.Background(), streamTimeout)
	defer cancel()
	go func() {
		select {
		case <-e.done:
		case <-e.s.Done():
		case <-ctx.Done():
		}
		cancel()
	}()
	for d := range e.in {
		if err := e.s.Send(ctx, rsocket.Payload{Data: append([]byte(EchoPrefix), d...)}); err != nil {
			offer(e.obs.Errors, "channel: send: "+err.Error())
			return
		}
	}
	_ = e.s.Complete()
}

type discard struct{}

func (discard) OnNext(rsocket.Payload, bool) {}
func (discard) OnComplete()                  {}
func (discard) OnError(error)                {}
