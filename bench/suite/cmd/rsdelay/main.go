// Command rsdelay is an RSocket (TCP) backend instance for the suite's balancing section: it answers every
// request-response with a small JSON document after -delay, whatever the route. Several of them, one with
// a ten times longer -delay, make "one slow instance of three"; killing one under load makes "a backend
// killed under load". Written with rsgate's own rsocket package.
package main

import (
	"flag"
	"log"
	"runtime"
	"time"

	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/transport"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:7901", "listen address (TCP)")
	delay := flag.Duration("delay", time.Millisecond, "answer every request after this long")
	procs := flag.Int("procs", 0, "GOMAXPROCS (0 = default)")
	flag.Parse()
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	answer := []byte(`{"instance":"` + *addr + `"}`)
	h := &rsocket.HandlerFuncs{
		RequestResponseFunc: func(_ rsocket.Payload, s *rsocket.Stream) {
			if *delay <= 0 {
				_ = s.Respond(rsocket.Payload{Data: answer})
				return
			}
			time.AfterFunc(*delay, func() { _ = s.Respond(rsocket.Payload{Data: answer}) })
		},
	}
	ln, err := transport.ListenTCP(*addr, nil)
	if err != nil {
		log.Fatal(err)
	}
	srv := &rsocket.Server{Acceptor: func(*rsocket.SetupInfo, *rsocket.Conn) (rsocket.Handler, error) { return h, nil }}
	log.Printf("rsdelay on %s, delay %v", *addr, *delay)
	log.Fatal(srv.Serve(ln))
}
