// Command rsgoserver is a minimal rsocket-go v0.8.12 RSocket server (TCP) with the demo service's
// request-response routes that the HTTP section uses: "echo" (answers the request data) and "users.{id}"
// (answers {"id":"<id>"}). The gateway in front of it shows what the gateway costs with a backend written
// with the other Go RSocket library instead of rsgate's own.
package main

import (
	"context"
	"flag"
	"log"
	"runtime"
	"strconv"
	"strings"

	rsgo "github.com/rsocket/rsocket-go"
	"github.com/rsocket/rsocket-go/extension"
	"github.com/rsocket/rsocket-go/payload"
	"github.com/rsocket/rsocket-go/rx/mono"
)

func route(p payload.Payload) string {
	md, ok := p.Metadata()
	if !ok || len(md) == 0 {
		return ""
	}
	var tag string
	sc := extension.NewCompositeMetadataBytes(md).Scanner()
	for sc.Scan() {
		mime, data, err := sc.Metadata()
		if err != nil {
			break
		}
		if mime == extension.MessageRouting.String() {
			if tags, err := extension.ParseRoutingTags(data); err == nil && len(tags) > 0 {
				tag = tags[0]
			}
		}
	}
	return tag
}

func main() {
	addr := flag.String("listen", "127.0.0.1:7879", "listen address (TCP)")
	procs := flag.Int("procs", 0, "GOMAXPROCS (0 = default)")
	flag.Parse()
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	host, port, _ := strings.Cut(*addr, ":")
	pn, _ := strconv.Atoi(port)
	err := rsgo.Receive().
		Acceptor(func(ctx context.Context, setup payload.SetupPayload, sendingSocket rsgo.CloseableRSocket) (rsgo.RSocket, error) {
			return rsgo.NewAbstractSocket(
				rsgo.RequestResponse(func(p payload.Payload) mono.Mono {
					r := route(p)
					switch {
					case r == "echo":
						return mono.Just(payload.New(append([]byte(nil), p.Data()...), nil))
					case strings.HasPrefix(r, "users."):
						return mono.Just(payload.New([]byte(`{"id":`+strconv.Quote(r[len("users."):])+`}`), nil))
					}
					return mono.Error(errUnknown(r))
				}),
			), nil
		}).
		Transport(rsgo.TCPServer().SetHostAndPort(host, pn).Build()).
		Serve(context.Background())
	log.Fatal(err)
}

type errUnknown string

func (e errUnknown) Error() string { return "no such route: " + string(e) }
