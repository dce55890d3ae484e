// Command upstream is the plain-HTTP upstream of the suite's peers for what bench/http/cmd/httpbackend does
// not serve: it answers every GET after -delay (the "slow upstream" of the tail-isolation section, or the
// fast twin with -delay 0), echoes POST bodies, and echoes WebSocket messages on /ws/chat (the upstream of
// nginx and caddy in the WebSocket sections).
package main

import (
	"flag"
	"log"
	"runtime"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:8101", "listen address")
	delay := flag.Duration("delay", 0, "answer every HTTP request after this long")
	procs := flag.Int("procs", 0, "GOMAXPROCS (0 = default)")
	flag.Parse()
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	up := websocket.FastHTTPUpgrader{ReadBufferSize: 1024, WriteBufferSize: 1024, CheckOrigin: func(*fasthttp.RequestCtx) bool { return true }}
	h := func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/ws/chat" && websocket.FastHTTPIsWebSocketUpgrade(ctx) {
			_ = up.Upgrade(ctx, func(c *websocket.Conn) {
				defer c.Close()
				for {
					mt, msg, err := c.ReadMessage()
					if err != nil {
						return
					}
					if err := c.WriteMessage(mt, msg); err != nil {
						return
					}
				}
			})
			return
		}
		if *delay > 0 {
			time.Sleep(*delay)
		}
		ctx.SetContentType("application/json")
		if ctx.IsPost() {
			ctx.SetBody(ctx.PostBody())
			return
		}
		ctx.SetBodyString(`{"path":"` + string(ctx.Path()) + `"}`)
	}
	s := &fasthttp.Server{Handler: h, Name: "upstream", NoDefaultDate: true, ReadBufferSize: 16 << 10, Concurrency: 1 << 20}
	log.Printf("upstream on %s, delay %v", *addr, *delay)
	log.Fatal(s.ListenAndServe(*addr))
}
