package peers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	rsgo "github.com/rsocket/rsocket-go"
	gotransport "github.com/rsocket/rsocket-go/core/transport"
	goext "github.com/rsocket/rsocket-go/extension"
	"github.com/rsocket/rsocket-go/lease"
	"github.com/rsocket/rsocket-go/payload"
	"github.com/rsocket/rsocket-go/rx"
	"github.com/rsocket/rsocket-go/rx/flux"
	"github.com/rsocket/rsocket-go/rx/mono"
)

// GoRoute returns the first routing tag of composite metadata, decoded with rsocket-go's extension package.
func GoRoute(md []byte, ok bool) (route string, err error) {
	if !ok {
		return "", errors.New("no metadata")
	}
	defer func() {
		// rsocket-go's scanner slices without bounds checks (issue #150); report instead of crashing.
		if r := recover(); r != nil {
			err = fmt.Errorf("rsocket-go composite scanner panicked on % x: %v", md, r)
		}
	}()
	sc := goext.NewCompositeMetadataBytes(md).Scanner()
	for sc.Scan() {
		mime, v, err := sc.Metadata()
		if err != nil {
			return "", err
		}
		if mime != goext.MessageRouting.String() {
			continue
		}
		tags, err := goext.ParseRoutingTags(v)
		if err != nil {
			return "", err
		}
		if len(tags) == 0 {
			return "", errors.New("empty routing entry")
		}
		return tags[0], nil
	}
	return "", fmt.Errorf("no routing entry in % x", md)
}

// GoRouteMetadata encodes composite metadata holding one routing tag with rsocket-go's extension package.
func GoRouteMetadata(tag string) []byte {
	rt, err := goext.EncodeRouting(tag)
	if err != nil {
		panic(err)
	}
	md, err := goext.NewCompositeMetadataBuilder().PushWellKnown(goext.MessageRouting, rt).Build()
	if err != nil {
		panic(err)
	}
	return md
}

func clone(b []byte) []byte { return append([]byte{}, b...) }

// GoAcceptor returns an rsocket-go ServerAcceptor serving the routes of this package.
func GoAcceptor(obs *Observations) rsgo.ServerAcceptor {
	return func(ctx context.Context, setup payload.SetupPayload, sock rsgo.CloseableRSocket) (rsgo.RSocket, error) {
		offer(obs.Setups, Setup{MetadataMIME: strings.Clone(setup.MetadataMimeType()), DataMIME: strings.Clone(setup.DataMimeType()), Data: string(setup.Data())})
		return GoResponder(obs), nil
	}
}

// GoResponder returns the rsocket-go responder serving the routes of this package.
func GoResponder(obs *Observations) rsgo.RSocket {
	route := func(p payload.Payload) string {
		r, err := GoRoute(p.Metadata())
		if err != nil {
			offer(obs.Errors, "route: "+err.Error())
		}
		return r
	}
	return rsgo.NewAbstractSocket(
		rsgo.MetadataPush(func(p payload.Payload) {
			md, _ := p.Metadata()
			offer(obs.MetadataPush, string(md))
		}),
		rsgo.FireAndForget(func(p payload.Payload) {
			if r := route(p); r != "fnf" {
				offer(obs.Errors, "fire-and-forget to unknown route "+r)
				return
			}
			offer(obs.FNF, string(p.Data()))
		}),
		rsgo.RequestResponse(func(p payload.Payload) mono.Mono {
			switch r := route(p); r {
			case "echo":
				return mono.Just(payload.New(clone(p.Data()), nil))
			case "fail":
				// rsocket-go turns a plain error into APPLICATION_ERROR carrying err.Error().
				return mono.Error(errors.New(FailMessage(p.Data())))
			case "mdsum":
				md, _ := p.Metadata()
				return mono.Just(payload.New([]byte(MetadataSum(md)), nil))
			case "big":
				return mono.Just(payload.New(Blob(0, BigSize), nil))
			case "slow":
				return mono.Create(func(ctx context.Context, s mono.Sink) {
					select {
					case <-ctx.Done():
					case <-time.After(streamTimeout):
						s.Success(payload.New(nil, nil))
					}
				}).DoOnCancel(func() { offer(obs.Cancels, r) })
			default:
				return mono.Error(errors.New("no route: " + r))
			}
		}),
		rsgo.RequestStream(func(p payload.Payload) flux.Flux {
			r := route(p)
			if n, ok := StreamCount(r); ok {
				// flux.Create buffers and emits by demand: the wire sees at most the granted credit.
				return flux.Create(func(ctx context.Context, s flux.Sink) {
					for i := 0; i < n; i++ {
						s.Next(payload.New([]byte(Item(i)), nil))
					}
					s.Complete()
				})
			}
			if n, ok := StreamFailRoute(r); ok {
				// Emit by demand: a flux.Create sink's Error overtakes items still buffered for lack of
				// demand (Complete waits for them, Error does not), which would drop items under
				// request(1). See README.md.
				credit := make(chan int, 1024)
				return flux.Create(func(ctx context.Context, s flux.Sink) {
					go func() {
						defer func() { _ = recover() }() // Next after a cancel panics in reactor-go
						have := 0
						for i := 0; i < n; i++ {
							for have <= 0 {
								select {
								case k := <-credit:
									have += k
								case <-ctx.Done():
									return
								case <-time.After(streamTimeout):
									return
								}
							}
							have--
							s.Next(payload.New([]byte(Item(i)), nil))
						}
						s.Error(errors.New(StreamFailMessage(n)))
					}()
				}).DoOnRequest(func(k int) {
					select {
					case credit <- k:
					default:
					}
				})
			}
			if n, size, ok := BlobRoute(r); ok {
				return flux.Create(func(ctx context.Context, s flux.Sink) {
					for i := 0; i < n; i++ {
						s.Next(payload.New(Blob(i, size), nil))
					}
					s.Complete()
				})
			}
			if r == "infinite" {
				stop := make(chan struct{})
				var once sync.Once
				return flux.Create(func(ctx context.Context, s flux.Sink) {
					go func() {
						// reactor-go's buffered sink panics ("send on closed channel") on a Next that races
						// with the requester's CANCEL closing it; that race is rsocket-go's, not the test's.
						defer func() { _ = recover() }()
						deadline := time.After(streamTimeout)
						for i := 0; ; i++ {
							select {
							case <-stop:
								return
							case <-ctx.Done():
								return
							case <-deadline:
								s.Complete()
								return
							case <-time.After(time.Millisecond):
								s.Next(payload.New([]byte(Item(i)), nil))
							}
						}
					}()
				}).DoFinally(func(sig rx.SignalType) {
					once.Do(func() { close(stop) })
					if sig == rx.SignalCancel {
						offer(obs.Cancels, r)
					}
				})
			}
			return flux.Error(errors.New("no route: " + r))
		}),
		rsgo.RequestChannel(func(requests flux.Flux) flux.Flux {
			// rsocket-go delivers the REQUEST_CHANNEL payload as the first inbound element.
			return requests.Map(func(p payload.Payload) (payload.Payload, error) {
				return payload.New(append([]byte(EchoPrefix), p.Data()...), nil), nil
			})
		}),
	)
}

// GoServer is a running rsocket-go server on a loopback port.
type GoServer struct {
	Addr   string // host:port
	URL    string // ws://host:port/ for WebSocket servers, "" for TCP
	cancel context.CancelFunc
	done   chan error
}

// StartGoServer starts an rsocket-go server (transport "tcp" or "ws") on an ephemeral 127.0.0.1 port.
// mtu 0 leaves rsocket-go's fragmentation off.
func StartGoServer(kind string, mtu int, acceptor rsgo.ServerAcceptor) (*GoServer, error) {
	return StartGoServerWith(kind, mtu, nil, acceptor)
}

// StartGoServerWith is StartGoServer with a lease factory (nil: no leases).
func StartGoServerWith(kind string, mtu int, leases lease.Factory, acceptor rsgo.ServerAcceptor) (*GoServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	factory := func(context.Context) (net.Listener, error) { return ln, nil }
	var tp gotransport.ServerTransporter
	s := &GoServer{Addr: ln.Addr().String(), done: make(chan error, 1)}
	switch kind {
	case "tcp":
		tp = func(context.Context) (gotransport.ServerTransport, error) {
			return gotransport.NewTCPServerTransport(factory), nil
		}
	case "ws":
		s.URL = "ws://" + s.Addr + "/"
		tp = func(context.Context) (gotransport.ServerTransport, error) {
			return gotransport.NewWebsocketServerTransport(factory, "/", nil), nil
		}
	default:
		ln.Close()
		return nil, fmt.Errorf("unknown transport %q", kind)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	started := make(chan struct{})
	go func() {
		b := rsgo.Receive()
		if leases != nil {
			b = b.Lease(leases)
		}
		s.done <- b.
			Fragment(mtu).
			OnStart(func() { close(started) }).
			Acceptor(acceptor).
			Transport(tp).
			Serve(ctx)
	}()
	select {
	case <-started:
		return s, nil
	case err := <-s.done:
		cancel()
		return nil, fmt.Errorf("rsocket-go server: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		return nil, errors.New("rsocket-go server did not start within 10s")
	}
}

// Close stops the server and waits (bounded) for Serve to return.
func (s *GoServer) Close() error {
	s.cancel()
	select {
	case err := <-s.done:
		return err
	case <-time.After(5 * time.Second):
		return errors.New("rsocket-go server did not stop within 5s")
	}
}
