// Command rsbackend runs rsgate's demo RSocket service (internal/demo, the same code `gateway -demo` embeds)
// as its own process, so the HTTP benchmark can measure the gateway's CPU apart from the backend's, as it
// does for nginx and the fasthttp backend.
package main

import (
	"flag"
	"log"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/rsgate/rsgate/internal/demo"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:7878", "listen address (TCP)")
	procs := flag.Int("procs", 0, "GOMAXPROCS (0 = leave the default)")
	flag.Parse()
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	s, err := demo.Serve(*addr, nil)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("rsbackend (demo RSocket service) listening on %s", s.Addr())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	<-ch
	_ = s.Close()
}
