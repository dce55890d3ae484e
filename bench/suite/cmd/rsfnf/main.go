// Command rsfnf measures fire-and-forget over one TCP loopback connection for one implementation (rsgate's
// rsocket package, "ours", or rsocket-go v0.8.12, "rsgo"): client and server in this process, one sender
// goroutine, at most -window frames sent but not yet received by the server (so neither side queues without
// bound). It prints one JSON line: frames received by the server per second during the measured phase, and
// heap allocations per frame (client + server, runtime.MemStats over the measured phase). bench/rsocketbench
// has no fire-and-forget workload; this complements it.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/extension"
	"github.com/rsgate/rsgate/rsocket/transport"

	rsgo "github.com/rsocket/rsocket-go"
	gotransport "github.com/rsocket/rsocket-go/core/transport"
	goext "github.com/rsocket/rsocket-go/extension"
	"github.com/rsocket/rsocket-go/payload"
)

var received atomic.Int64

type ourHandler struct{}

func (ourHandler) FireAndForget(rsocket.Payload)                          { received.Add(1) }
func (ourHandler) MetadataPush([]byte)                                    {}
func (ourHandler) RequestResponse(req rsocket.Payload, s *rsocket.Stream) { _ = s.Complete() }
func (ourHandler) RequestStream(req rsocket.Payload, n uint32, s *rsocket.Stream) {
	_ = s.Complete()
}
func (ourHandler) RequestChannel(req rsocket.Payload, n uint32, complete bool, s *rsocket.Stream) rsocket.Subscriber {
	_ = s.Complete()
	return nil
}

func main() {
	impl := flag.String("impl", "ours", "ours | rsgo")
	dur := flag.Duration("duration", 3*time.Second, "measured phase")
	warm := flag.Duration("warmup", time.Second, "warm-up")
	window := flag.Int64("window", 4096, "max frames sent and not yet received")
	size := flag.Int("size", 128, "data bytes per frame")
	flag.Parse()
	data := make([]byte, *size)
	ctx := context.Background()
	var send func() error
	switch *impl {
	case "ours":
		l, err := transport.ListenTCP("127.0.0.1:0", nil)
		if err != nil {
			log.Fatal(err)
		}
		srv := &rsocket.Server{Acceptor: func(*rsocket.SetupInfo, *rsocket.Conn) (rsocket.Handler, error) { return ourHandler{}, nil }}
		go srv.Serve(l)
		tc, err := transport.DialTCP(ctx, l.Addr().String(), nil)
		if err != nil {
			log.Fatal(err)
		}
		c, err := rsocket.Connect(ctx, tc, rsocket.Options{MetadataMIME: extension.MimeComposite, DataMIME: "application/octet-stream"})
		if err != nil {
			log.Fatal(err)
		}
		md := extension.AppendCompositeEntry(nil, extension.MimeRouting, extension.AppendRouting(nil, "log"))
		// FireAndForget with NoWait queues a copy and returns, as rsocket-go's FireAndForget does;
		// FireAndForget would wait for each frame to be written (what the gateway's 202 needs).
		send = func() error {
			_, err := c.FireAndForget(ctx, rsocket.Payload{Metadata: md, Data: data}, rsocket.FireAndForgetOptions{NoWait: true})
			return err
		}
	case "rsgo":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		started := make(chan struct{})
		go func() {
			_ = rsgo.Receive().
				OnStart(func() { close(started) }).
				Acceptor(func(context.Context, payload.SetupPayload, rsgo.CloseableRSocket) (rsgo.RSocket, error) {
					return rsgo.NewAbstractSocket(rsgo.FireAndForget(func(payload.Payload) { received.Add(1) })), nil
				}).
				Transport(func(context.Context) (gotransport.ServerTransport, error) {
					return gotransport.NewTCPServerTransport(func(context.Context) (net.Listener, error) { return ln, nil }), nil
				}).
				Serve(ctx)
		}()
		<-started
		c, err := rsgo.Connect().MetadataMimeType(extension.MimeComposite).DataMimeType("application/octet-stream").
			Transport(rsgo.TCPClient().SetAddr(ln.Addr().String()).Build()).Start(ctx)
		if err != nil {
			log.Fatal(err)
		}
		rt, _ := goext.EncodeRouting("log")
		md, _ := goext.NewCompositeMetadataBuilder().PushWellKnown(goext.MessageRouting, rt).Build()
		send = func() error { c.FireAndForget(payload.New(data, md)); return nil }
	default:
		log.Fatalf("unknown impl %q", *impl)
	}
	var sent int64
	var stop atomic.Bool
	done := make(chan error, 1)
	go func() {
		for !stop.Load() {
			for sent-received.Load() >= *window {
				runtime.Gosched()
			}
			if err := send(); err != nil {
				done <- err
				return
			}
			sent++
		}
		done <- nil
	}()
	time.Sleep(*warm)
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	r0, t0 := received.Load(), time.Now()
	time.Sleep(*dur)
	r1, t1 := received.Load(), time.Now()
	runtime.ReadMemStats(&m1)
	stop.Store(true)
	errs := 0
	select {
	case err := <-done:
		if err != nil {
			log.Print(err)
			errs = 1
		}
	case <-time.After(2 * time.Second):
	}
	n := r1 - r0
	out := map[string]any{"impl": *impl, "ops": n, "seconds": t1.Sub(t0).Seconds(), "ops_per_s": float64(n) / t1.Sub(t0).Seconds(),
		"allocs_per_op": float64(m1.Mallocs-m0.Mallocs) / float64(max(n, 1)), "bytes_per_op": float64(m1.TotalAlloc-m0.TotalAlloc) / float64(max(n, 1)), "errors": errs}
	_ = json.NewEncoder(os.Stdout).Encode(out)
	os.Exit(0)
}
