// Command jspeer serves rsgate's RSocket server for the rsocket-js interop scripts: the routes of
// bench/interop/peers (echo, fail, fnf, stream.{n}, infinite, channel) over TCP and WebSocket.
//
//	jspeer -tcp 127.0.0.1:0 -ws 127.0.0.1:0 [-mtu 65536]
//
// Once listening it prints one line, `READY tcp=<host:port> ws=ws://<host:port>/`, then serves until
// stdin closes, SIGINT/SIGTERM, or -max-lifetime passes (so a forgotten peer never outlives a test run).
// Responder-side problems (undecodable routing metadata, credit violations) go to stderr.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rsgate/rsgate/bench/interop/peers"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/transport"
)

func main() {
	tcpAddr := flag.String("tcp", "127.0.0.1:0", "TCP listen address")
	wsAddr := flag.String("ws", "127.0.0.1:0", "WebSocket listen address (path /)")
	mtu := flag.Int("mtu", 64<<10, "fragment frames larger than this many bytes (0 = never)")
	maxLife := flag.Duration("max-lifetime", 5*time.Minute, "exit after this long")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("jspeer: ")

	obs := peers.NewObservations()
	srv := &rsocket.Server{Acceptor: peers.OurAcceptor(obs), Options: rsocket.ServerOptions{MTU: *mtu}}
	srvWS := &rsocket.Server{Acceptor: peers.OurAcceptor(obs), Options: rsocket.ServerOptions{MTU: *mtu}}

	tl, err := transport.ListenTCP(*tcpAddr, nil)
	if err != nil {
		log.Fatalf("listen tcp: %v", err)
	}
	wl, err := transport.ListenWebSocket(*wsAddr, "/", nil)
	if err != nil {
		log.Fatalf("listen ws: %v", err)
	}
	go func() { _ = srv.Serve(tl) }()
	go func() { _ = srvWS.Serve(wl) }()
	fmt.Printf("READY tcp=%s ws=ws://%s/\n", tl.Addr(), wl.Addr())

	go func() {
		for e := range obs.Errors {
			log.Printf("responder: %s", e)
		}
	}()
	go func() {
		for s := range obs.Setups {
			log.Printf("setup: metadata=%s data=%s payload=%q", s.MetadataMIME, s.DataMIME, s.Data)
		}
	}()

	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case <-stdinClosed:
	case s := <-sig:
		log.Printf("%v", s)
	case <-time.After(*maxLife):
		log.Printf("max lifetime %v reached", *maxLife)
	}
	_ = srv.Close()
	_ = srvWS.Close()
}
