// Package demo is the embedded demo RSocket service that `gateway -demo` starts on 127.0.0.1:7878 and that the
// end-to-end tests use as a backend. It is built only on our own rsocket package and serves requests by the
// first routing tag of their composite metadata (or of plain routing metadata when the connection's SETUP says
// so):
//
//	echo          request-response: answers with the request data (and fire-and-forget accepted too)
//	users.{id}    request-response: {"id":"<id>"}
//	ticks.{n}     request-stream: n JSON items {"tick":i}, as fast as the requester's credit allows
//	clock.{ms}    request-stream: an endless item {"tick":i,"time":"..."} every ms milliseconds (browser demo)
//	log           fire-and-forget: counted (Stats) and logged at debug level
//	chat          request-channel: echoes every inbound item back, credit-for-credit
//	fail          request-response / stream: APPLICATION_ERROR "demo failure"
//	slow.{ms}     request-response: answers with the data after ms milliseconds (at most 60 s)
//
// Payloads handed to the handler are only valid during the call, so everything that is answered later is
// copied first.
package demo

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/extension"
	"github.com/rsgate/rsgate/rsocket/frame"
	"github.com/rsgate/rsgate/rsocket/transport"
)

// DefaultAddr is where `gateway -demo` starts the service.
const DefaultAddr = "127.0.0.1:7878"

// maxStreamItems bounds ticks.{n} so a typo cannot start an endless stream.
const maxStreamItems = 1_000_000

// Stats counts what the demo service has seen; the tests read it.
type Stats struct {
	FireAndForget atomic.Int64 // fire-and-forget requests received
	Cancels       atomic.Int64 // streams the requester cancelled
	StreamItems   atomic.Int64 // stream items sent
}

type service struct {
	log     *zap.Logger
	stats   *Stats
	routing bool // the connection's metadata is plain routing metadata, not composite
}

// Handler returns a handler for one connection. routingOnly says the connection's metadata MIME is
// message/x.rsocket.routing.v0 rather than composite metadata.
func Handler(log *zap.Logger, stats *Stats, routingOnly bool) rsocket.Handler {
	if log == nil {
		log = zap.NewNop()
	}
	if stats == nil {
		stats = new(Stats)
	}
	return &service{log: log, stats: stats, routing: routingOnly}
}

// tag returns the first routing tag of md, or nil.
func (s *service) tag(md []byte) []byte {
	if md == nil {
		return nil
	}
	routing := md
	if !s.routing {
		v, ok := extension.FindComposite(md, extension.MimeRouting)
		if !ok {
			return nil
		}
		routing = v
	}
	t, err := extension.FirstRoutingTag(routing)
	if err != nil {
		return nil
	}
	return t
}

// param splits "name.value" and returns value when tag starts with prefix + ".".
func param(tag []byte, prefix string) ([]byte, bool) {
	if len(tag) <= len(prefix)+1 || string(tag[:len(prefix)]) != prefix || tag[len(prefix)] != '.' {
		return nil, false
	}
	return tag[len(prefix)+1:], true
}

func (s *service) FireAndForget(req rsocket.Payload) {
	s.stats.FireAndForget.Add(1)
	if ce := s.log.Check(zap.DebugLevel, "demo fire-and-forget"); ce != nil {
		ce.Write(zap.ByteString("route", s.tag(req.Metadata)), zap.Int("bytes", len(req.Data)))
	}
}

// answerBufs holds the buffers the users.{id} answers are built in.
var answerBufs = sync.Pool{New: func() any { b := make([]byte, 0, 64); return &b }}

func (s *service) RequestResponse(req rsocket.Payload, st *rsocket.Stream) {
	tag := s.tag(req.Metadata)
	switch {
	case string(tag) == "echo":
		_ = st.Respond(rsocket.Payload{Data: req.Data})
	case string(tag) == "fail":
		_ = st.Error(frame.CodeApplicationError, "demo failure")
	default:
		if id, ok := param(tag, "users"); ok {
			bp := answerBufs.Get().(*[]byte) // Respond copies the payload: the buffer is free when it returns
			body := append((*bp)[:0], `{"id":`...)
			body = strconv.AppendQuote(body, string(id))
			body = append(body, '}')
			_ = st.Respond(rsocket.Payload{Data: body})
			*bp = body
			answerBufs.Put(bp)
			return
		}
		if ms, ok := param(tag, "slow"); ok {
			d, err := strconv.Atoi(string(ms))
			if err != nil || d < 0 || d > 60_000 {
				_ = st.Error(frame.CodeInvalid, "slow.{ms}: ms must be 0..60000")
				return
			}
			data := bytes.Clone(req.Data)
			go func() {
				t := time.NewTimer(time.Duration(d) * time.Millisecond)
				defer t.Stop()
				select {
				case <-t.C:
					_ = st.Respond(rsocket.Payload{Data: data})
				case <-st.Done():
					s.stats.Cancels.Add(1)
				}
			}()
			return
		}
		_ = st.Error(frame.CodeInvalid, "no such route: "+string(tag))
	}
}

func (s *service) RequestStream(req rsocket.Payload, initialN uint32, st *rsocket.Stream) {
	tag := s.tag(req.Metadata)
	if string(tag) == "fail" {
		_ = st.Error(frame.CodeApplicationError, "demo failure")
		return
	}
	if v, ok := param(tag, "ticks"); ok {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 0 || n > maxStreamItems {
			_ = st.Error(frame.CodeInvalid, "ticks.{n}: n must be 0.."+strconv.Itoa(maxStreamItems))
			return
		}
		go s.ticks(st, n, 0)
		return
	}
	if v, ok := param(tag, "clock"); ok {
		ms, err := strconv.Atoi(string(v))
		if err != nil || ms < 10 || ms > 60_000 {
			_ = st.Error(frame.CodeInvalid, "clock.{ms}: ms must be 10..60000")
			return
		}
		go s.ticks(st, -1, time.Duration(ms)*time.Millisecond)
		return
	}
	_ = st.Error(frame.CodeInvalid, "no such stream: "+string(tag))
}

// ticks sends n items (n < 0: until cancelled), one every interval (0: as fast as credit allows).
func (s *service) ticks(st *rsocket.Stream, n int, interval time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-st.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	buf := make([]byte, 0, 64)
	for i := 0; n < 0 || i < n; i++ {
		if tick != nil {
			select {
			case <-tick:
			case <-ctx.Done():
				s.stats.Cancels.Add(1)
				return
			}
		}
		buf = append(buf[:0], `{"tick":`...)
		buf = strconv.AppendInt(buf, int64(i), 10)
		if interval > 0 {
			buf = append(buf, `,"time":"`...)
			buf = time.Now().UTC().AppendFormat(buf, time.RFC3339Nano)
			buf = append(buf, '"')
		}
		buf = append(buf, '}')
		if err := st.Send(ctx, rsocket.Payload{Data: buf}); err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, rsocket.ErrCanceled) {
				s.stats.Cancels.Add(1)
			}
			return
		}
		s.stats.StreamItems.Add(1)
	}
	_ = st.Complete()
}

func (s *service) RequestChannel(req rsocket.Payload, initialN uint32, complete bool, st *rsocket.Stream) rsocket.Subscriber {
	if string(s.tag(req.Metadata)) != "chat" {
		_ = st.Error(frame.CodeInvalid, "no such channel: "+string(s.tag(req.Metadata)))
		return nil
	}
	e := &echoChannel{st: st, stats: s.stats, items: make(chan []byte, chatWindow+1), done: make(chan struct{})}
	// The first payload of REQUEST_CHANNEL is the first inbound item.
	e.items <- bytes.Clone(req.Data)
	if complete {
		e.closeInput()
	} else {
		st.Request(chatWindow)
	}
	go e.run()
	return e
}

// chatWindow is the credit the chat channel grants the requester at a time.
const chatWindow = 32

// echoChannel echoes a channel's inbound items back. OnNext runs on the reader goroutine and only queues;
// run sends with back-pressure and grants more credit as it drains, so at most chatWindow items wait.
type echoChannel struct {
	st    *rsocket.Stream
	stats *Stats
	items chan []byte
	once  sync.Once
	done  chan struct{} // inbound side finished (completed or failed)
}

func (e *echoChannel) closeInput() { e.once.Do(func() { close(e.done) }) }

func (e *echoChannel) OnNext(p rsocket.Payload, complete bool) {
	select {
	case e.items <- bytes.Clone(p.Data):
	default:
		// The requester sent more than the credit we granted: a protocol violation.
		_ = e.st.Error(frame.CodeInvalid, "chat: more items than requested")
	}
	if complete {
		e.closeInput()
	}
}

func (e *echoChannel) OnComplete()       { e.closeInput() }
func (e *echoChannel) OnError(err error) { e.closeInput() }

func (e *echoChannel) run() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-e.st.Done()
		cancel()
	}()
	sent := 0
	for {
		select {
		case item := <-e.items:
			if err := e.st.Send(ctx, rsocket.Payload{Data: item}); err != nil {
				return
			}
			e.stats.StreamItems.Add(1)
			if sent++; sent == chatWindow/2 {
				sent = 0
				e.st.Request(chatWindow / 2)
			}
		case <-e.done:
			// Drain what is queued, then complete our side.
			for {
				select {
				case item := <-e.items:
					if err := e.st.Send(ctx, rsocket.Payload{Data: item}); err != nil {
						return
					}
				default:
					_ = e.st.Complete()
					return
				}
			}
		case <-ctx.Done():
			return
		}
	}
}

func (s *service) MetadataPush(md []byte) {
	if ce := s.log.Check(zap.DebugLevel, "demo metadata push"); ce != nil {
		ce.Write(zap.Int("bytes", len(md)))
	}
}

// Server is a running demo service.
type Server struct {
	Stats Stats
	srv   *rsocket.Server
	ln    transport.Listener
	done  chan struct{}
}

// Serve starts the demo service on addr (TCP) and returns once it is listening.
func Serve(addr string, log *zap.Logger) (*Server, error) {
	if log == nil {
		log = zap.NewNop()
	}
	ln, err := transport.ListenTCP(addr, nil)
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, done: make(chan struct{})}
	s.srv = &rsocket.Server{
		Acceptor: func(setup *rsocket.SetupInfo, c *rsocket.Conn) (rsocket.Handler, error) {
			return Handler(log, &s.Stats, setup.MetadataMIME == extension.MimeRouting), nil
		},
		// Resumable: gateways with resume.enabled keep their sessions across connection cuts (up to
		// 2 minutes, like rsocket-java's default, longer than any gateway default).
		Options: rsocket.ServerOptions{Logger: log, Resume: rsocket.ResumeOptions{Enabled: true, SessionDuration: 2 * time.Minute}},
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, rsocket.ErrClosed) && !errors.Is(err, rsocket.ErrServerClosed) {
			log.Warn("demo service stopped", zap.Error(err))
		}
	}()
	return s, nil
}

// Addr is the address the service listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops accepting and closes every connection.
func (s *Server) Close() error {
	err := s.srv.Close()
	_ = s.ln.Close()
	<-s.done
	return err
}
