// Command example-go is an RSocket service for rsgate written with the rsocket package and its router
// (github.com/rsgate/rsgate/rsocket/router). docs/BACKENDS.md explains it; examples/go/gateway.yaml maps
// HTTP routes onto it.
//
//	go run ./examples/go                    listens on 127.0.0.1:7979
//	go run ./examples/go -addr 127.0.0.1:0  a free port (printed)
//
// Routes, by routing tag:
//
//	users.{id}  request-response: {"id":"<id>","name":"user <id>"}; id 0 is "not found" (404 through the
//	            gateway's errors map); a non-numeric id is INVALID (400)
//	echo        request-response: the forwarded HTTP request (method, target, headers), the bearer token
//	            and principal presence, and the body; answered 201 with a Location header
//	ticks.{n}   request-stream: n items {"tick":i}, each sent when the gateway grants credit
//	chat        request-channel: every WebSocket message comes back as {"echo":...}
//	log         fire-and-forget: logs the body
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/router"
	"github.com/rsgate/rsgate/rsocket/transport"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:7979", "TCP address to listen on")
	flag.Parse()

	r := newRouter()
	l, err := transport.ListenTCP(*addr, nil)
	if err != nil {
		log.Fatal(err)
	}
	srv := &rsocket.Server{Acceptor: r.Accept}
	fmt.Printf("go example listening on %s\n", l.Addr())
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		_ = srv.Close()
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, rsocket.ErrServerClosed) {
		log.Print(err)
	}
}

func newRouter() *router.Router {
	r := router.New()

	r.HandleRequestResponse("users.{id}", func(ctx context.Context, req *router.Request) (router.Response, error) {
		id := req.Param("id")
		n, err := strconv.Atoi(id)
		if err != nil {
			return router.Response{}, router.Invalid("user id %q is not a number", id) // 400
		}
		if n == 0 {
			return router.Response{}, errors.New("not found: user 0") // APPLICATION_ERROR; errors map: 404
		}
		return jsonResponse(map[string]string{"id": id, "name": "user " + id})
	})

	r.HandleRequestResponse("echo", func(ctx context.Context, req *router.Request) (router.Response, error) {
		out := map[string]any{"body": string(req.Data)}
		if h := req.HTTP; h != nil { // the route's forward_headers
			out["method"], out["target"], out["headers"] = h.Method, h.Target, h.Header
		}
		_, out["bearer"] = req.BearerToken()
		_, out["principal"] = req.Principal()
		resp, err := jsonResponse(out)
		resp.Status = http.StatusCreated
		resp.Header = http.Header{"Location": {"/api/echo/1"}, "X-Backend": {"go"}}
		return resp, err
	})

	r.HandleRequestStream("ticks.{n}", func(ctx context.Context, req *router.Request, send func([]byte) error) error {
		n, err := strconv.Atoi(req.Param("n"))
		if err != nil || n < 0 || n > 10000 {
			return router.Invalid("ticks.{n}: n must be 0..10000")
		}
		for i := 0; i < n; i++ {
			if err := send([]byte(`{"tick":` + strconv.Itoa(i) + `}`)); err != nil {
				return err // the gateway canceled (client gone, timeout)
			}
		}
		return nil
	})

	r.HandleRequestChannel("chat", func(ctx context.Context, req *router.Request, in <-chan []byte, send func([]byte) error) error {
		echo := func(msg []byte) error {
			b, _ := json.Marshal(map[string]string{"echo": string(msg)})
			return send(b)
		}
		if err := echo(req.Data); err != nil {
			return err
		}
		for msg := range in {
			if err := echo(msg); err != nil {
				return err
			}
		}
		return nil
	})

	r.HandleFireAndForget("log", func(ctx context.Context, req *router.Request) {
		log.Printf("log: %s", req.Data)
	})
	return r
}

func jsonResponse(v any) (router.Response, error) {
	b, err := json.Marshal(v)
	return router.Response{Data: b}, err
}
