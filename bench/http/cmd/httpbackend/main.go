// Command httpbackend is the plain-HTTP twin of rsgate's demo RSocket service, used as the upstream of the
// reverse proxies (nginx, haproxy, caddy) in the HTTP benchmark. It does "the same work" as the demo
// service's request-response routes:
//
//	POST /api/echo        echoes the request body with the request's Content-Type
//	GET  /api/users/{id}  answers {"id":"<id>"} (application/json)
//
// Anything else is 404 (405 for a known path with the wrong method).
package main

import (
	"bytes"
	"flag"
	"log"
	"runtime"

	"github.com/valyala/fasthttp"
)

var (
	pathEcho   = []byte("/api/echo")
	usersPfx   = []byte("/api/users/")
	ctJSON     = []byte("application/json")
	idOpen     = []byte(`{"id":"`)
	idClose    = []byte(`"}`)
	methodPost = []byte("POST")
	methodGet  = []byte("GET")
)

func handler(ctx *fasthttp.RequestCtx) {
	path := ctx.Path()
	switch {
	case bytes.Equal(path, pathEcho):
		if !bytes.Equal(ctx.Method(), methodPost) {
			ctx.Response.Header.Set("Allow", "POST")
			ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
			return
		}
		if ct := ctx.Request.Header.ContentType(); len(ct) > 0 {
			ctx.Response.Header.SetContentTypeBytes(ct)
		} else {
			ctx.Response.Header.SetContentTypeBytes(nil)
		}
		ctx.SetBody(ctx.PostBody())
	case bytes.HasPrefix(path, usersPfx) && len(path) > len(usersPfx) && bytes.IndexByte(path[len(usersPfx):], '/') < 0:
		if !bytes.Equal(ctx.Method(), methodGet) {
			ctx.Response.Header.Set("Allow", "GET")
			ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
			return
		}
		ctx.Response.Header.SetContentTypeBytes(ctJSON)
		ctx.Response.AppendBody(idOpen)
		ctx.Response.AppendBody(path[len(usersPfx):])
		ctx.Response.AppendBody(idClose)
	default:
		ctx.SetStatusCode(fasthttp.StatusNotFound)
	}
}

func main() {
	addr := flag.String("listen", "127.0.0.1:8100", "listen address")
	procs := flag.Int("procs", 0, "GOMAXPROCS (0 = leave the default)")
	flag.Parse()
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	s := &fasthttp.Server{
		Handler:                       handler,
		Name:                          "httpbackend",
		NoDefaultDate:                 true,
		NoDefaultServerHeader:         true,
		DisableHeaderNamesNormalizing: true,
		ReadBufferSize:                16 << 10,
	}
	log.Printf("httpbackend listening on %s", *addr)
	if err := s.ListenAndServe(*addr); err != nil {
		log.Fatal(err)
	}
}
