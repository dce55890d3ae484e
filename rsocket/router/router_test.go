package router_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/httpmeta"
	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/internal/testutil/rstest"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/extension"
	"github.com/rsgate/rsgate/rsocket/frame"
	"github.com/rsgate/rsgate/rsocket/router"
	"github.com/rsgate/rsgate/rsocket/transport"
)

const wait = 10 * time.Second

// connect serves r on one end of a pipe and returns a client on the other.
func connect(t *testing.T, r *router.Router, mdMIME string) *rsocket.Conn {
	t.Helper()
	a, b := transport.Pipe()
	srvErr := make(chan error, 1)
	go func() {
		_, err := rsocket.Accept(context.Background(), a, rsocket.ServerOptions{}, r.Accept)
		srvErr <- err
	}()
	c, err := rsocket.Connect(context.Background(), b, rsocket.Options{MetadataMIME: mdMIME, DataMIME: "application/json"})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-srvErr; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func meta(t *testing.T, tag string, extra ...[]byte) []byte {
	t.Helper()
	md, err := extension.AppendCompositeRoute(nil, []byte(tag))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range extra {
		md = append(md, e...)
	}
	return md
}

func call(t *testing.T, c *rsocket.Conn, md []byte, data string) (string, []byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	m, _, err := c.RequestResponse(ctx, rsocket.Payload{Metadata: md, Data: []byte(data)})
	if err != nil {
		return "", nil, err
	}
	defer m.Release()
	return string(m.Data), append([]byte(nil), m.Metadata...), nil
}

func newTestRouter() *router.Router {
	r := router.New()
	r.HandleRequestResponse("users.{id}", func(ctx context.Context, req *router.Request) (router.Response, error) {
		if req.Param("id") == "0" {
			return router.Response{}, errors.New("not found: user 0")
		}
		return router.Response{Data: []byte(`{"id":"` + req.Param("id") + `"}`)}, nil
	})
	r.HandleRequestResponse("users.me", func(ctx context.Context, req *router.Request) (router.Response, error) {
		tok, _ := req.BearerToken()
		return router.Response{Data: []byte("me:" + tok)}, nil
	})
	r.HandleRequestResponse("http", func(ctx context.Context, req *router.Request) (router.Response, error) {
		if req.HTTP == nil {
			return router.Response{}, router.Invalid("no HTTP entry")
		}
		return router.Response{Data: []byte(req.HTTP.Method + " " + req.HTTP.Target + " " + req.HTTP.Header.Get("X-Trace")),
			Status: http.StatusCreated, Header: http.Header{"Location": {"/x/1"}}}, nil
	})
	r.HandleRequestResponse("busy", func(context.Context, *router.Request) (router.Response, error) {
		return router.Response{}, router.Rejected("try later")
	})
	r.HandleRequestResponse("slow", func(ctx context.Context, req *router.Request) (router.Response, error) {
		<-ctx.Done() // canceled by the requester
		canceled <- req.Tag
		return router.Response{}, ctx.Err()
	})
	r.HandleRequestStream("count.{n}", func(ctx context.Context, req *router.Request, send func([]byte) error) error {
		n, err := strconv.Atoi(req.Param("n"))
		if err != nil {
			return router.Invalid("n: %v", err)
		}
		for i := 0; i < n; i++ {
			if err := send([]byte(strconv.Itoa(i))); err != nil {
				return err
			}
		}
		return nil
	})
	r.HandleRequestChannel("upper", func(ctx context.Context, req *router.Request, in <-chan []byte, send func([]byte) error) error {
		if err := send([]byte(strings.ToUpper(string(req.Data)))); err != nil {
			return err
		}
		for b := range in {
			if err := send([]byte(strings.ToUpper(string(b)))); err != nil {
				return err
			}
		}
		return nil
	})
	r.HandleFireAndForget("log", func(ctx context.Context, req *router.Request) { logged <- string(req.Data) })
	return r
}

var (
	canceled = make(chan string, 4)
	logged   = make(chan string, 4)
)

func TestRequestResponseRoutingAndErrors(t *testing.T) {
	c := connect(t, newTestRouter(), extension.MimeComposite)
	if got, _, err := call(t, c, meta(t, "users.42"), ""); err != nil || got != `{"id":"42"}` {
		t.Fatalf("users.42: %q %v", got, err)
	}
	bearer, _ := extension.AppendCompositeBearer(nil, []byte("tok"))
	if got, _, err := call(t, c, meta(t, "users.me", bearer), ""); err != nil || got != "me:tok" {
		t.Fatalf("users.me: %q %v", got, err)
	}
	var re *rsocket.Error
	for tag, want := range map[string]rsocket.Error{
		"users.0":   {Code: frame.CodeApplicationError, Message: "not found: user 0"},
		"busy":      {Code: frame.CodeRejected, Message: "try later"},
		"http":      {Code: frame.CodeInvalid, Message: "no HTTP entry"},
		"nope.nope": {Code: frame.CodeApplicationError, Message: `no handler for request-response "nope.nope"`},
	} {
		_, _, err := call(t, c, meta(t, tag), "")
		if !errors.As(err, &re) || re.Code != want.Code || re.Message != want.Message {
			t.Errorf("%s: %v, want %v", tag, err, want)
		}
	}
	if _, _, err := call(t, c, nil, ""); !errors.As(err, &re) || re.Code != frame.CodeInvalid {
		t.Errorf("no routing tag: %v", err)
	}
}

func TestHTTPEntryAndResponseMetadata(t *testing.T) {
	c := connect(t, newTestRouter(), extension.MimeComposite)
	hv, err := httpmeta.AppendRequest(nil, []byte("POST"), []byte("/api/x?y=1"), httpmeta.Header{Name: []byte("x-trace"), Value: []byte("abc")})
	if err != nil {
		t.Fatal(err)
	}
	got, md, err := call(t, c, meta(t, "http", extension.AppendCompositeEntry(nil, httpmeta.MIME, hv)), "")
	if err != nil || got != "POST /api/x?y=1 abc" {
		t.Fatalf("http: %q %v", got, err)
	}
	v, ok := extension.FindComposite(md, httpmeta.MIME)
	if !ok {
		t.Fatalf("no response entry in %x", md)
	}
	rv, err := httpmeta.ParseResponse(v)
	if err != nil || rv.Status != 201 {
		t.Fatalf("response entry: %+v %v", rv, err)
	}
	if loc, ok := rv.Headers.Get("location"); !ok || string(loc) != "/x/1" {
		t.Fatalf("location %q", loc)
	}
}

// With metadata_mime message/x.rsocket.routing.v0 the metadata is the tags alone.
func TestRoutingOnlyMetadata(t *testing.T) {
	c := connect(t, newTestRouter(), extension.MimeRouting)
	if got, _, err := call(t, c, extension.AppendRouting(nil, "users.7"), ""); err != nil || got != `{"id":"7"}` {
		t.Fatalf("%q %v", got, err)
	}
}

func TestCancelReachesTheHandler(t *testing.T) {
	c := connect(t, newTestRouter(), extension.MimeComposite)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := c.RequestResponse(ctx, rsocket.Payload{Metadata: meta(t, "slow")}); err == nil {
		t.Fatal("slow answered")
	}
	select {
	case tag := <-canceled:
		if tag != "slow" {
			t.Fatal(tag)
		}
	case <-time.After(wait):
		t.Fatal("the handler's ctx was not canceled by CANCEL")
	}
}

func TestStreamUnderCredit(t *testing.T) {
	c := connect(t, newTestRouter(), extension.MimeComposite)
	col := rstest.NewCollector()
	s, err := c.RequestStream(rsocket.Payload{Metadata: meta(t, "count.100")}, 3, col)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, func() bool { return col.Count() == 3 }, "3 items")
	time.Sleep(20 * time.Millisecond)
	if n := col.Count(); n != 3 {
		t.Fatalf("sent %d items under a credit of 3", n)
	}
	s.Request(1000)
	items, err := col.Wait(t)
	if err != nil || len(items) != 100 || items[99] != "99" {
		t.Fatalf("%d items, %v", len(items), err)
	}
	col2 := rstest.NewCollector()
	if _, err := c.RequestStream(rsocket.Payload{Metadata: meta(t, "count.x")}, 3, col2); err != nil {
		t.Fatal(err)
	}
	var re *rsocket.Error
	if _, err := col2.Wait(t); !errors.As(err, &re) || re.Code != frame.CodeInvalid {
		t.Fatalf("bad n: %v", err)
	}
}

func TestChannelAndFireAndForget(t *testing.T) {
	c := connect(t, newTestRouter(), extension.MimeComposite)
	col := rstest.NewCollector()
	s, err := c.RequestChannel(rsocket.Payload{Metadata: meta(t, "upper"), Data: []byte("a")}, 100, false, col)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"b", "c"} {
		if err := s.Send(context.Background(), rsocket.Payload{Data: []byte(m)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Complete(); err != nil {
		t.Fatal(err)
	}
	items, err := col.Wait(t)
	if err != nil || strings.Join(items, ",") != "A,B,C" {
		t.Fatalf("%v %v", items, err)
	}
	if _, err := c.FireAndForget(context.Background(), rsocket.Payload{Metadata: meta(t, "log"), Data: []byte("hi")}, rsocket.FireAndForgetOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-logged:
		if m != "hi" {
			t.Fatal(m)
		}
	case <-time.After(wait):
		t.Fatal("fire-and-forget not handled")
	}
}
