// Package router is a small server API for writing the RSocket services rsgate calls: handlers registered
// by routing tag, for the four interactions, on top of the rsocket package's Handler interface.
//
//	r := router.New()
//	r.HandleRequestResponse("users.{id}", func(ctx context.Context, req *router.Request) (router.Response, error) {
//		return router.Response{Data: []byte(`{"id":"` + req.Param("id") + `"}`)}, nil
//	})
//	l, _ := transport.ListenTCP("127.0.0.1:7878", nil)
//	srv := &rsocket.Server{Acceptor: r.Accept}
//	srv.Serve(l)
//
// # Routing
//
// The gateway sends each request's routing tag (the route's `route:` template, expanded) in the composite
// metadata entry message/x.rsocket.routing.v0, or as the whole metadata when the backend's metadata_mime is
// message/x.rsocket.routing.v0. A pattern is the tag split at dots: a literal segment matches itself,
// "{name}" matches one segment (Request.Param(name) gives it), and a final "{name...}" matches the rest of
// the tag, dots included. A literal beats a parameter, which beats a rest parameter, segment by segment
// from the left ("users.me" beats "users.{id}"). A request whose tag matches no pattern of its interaction
// is answered ERROR[APPLICATION_ERROR] "no handler for ..." (HTTP 500 through the gateway), as Spring's
// @MessageMapping does.
//
// # Handlers and goroutines
//
// Every request runs its handler on a goroutine of its own, so handlers may block (a database call, a
// sleep, Send waiting for credit). ctx is canceled when the request ends early: the gateway sent CANCEL
// (route timeout, client gone) or the connection closed. A Request and its byte slices are copies owned
// by the handler.
//
// # Errors
//
// A handler's error becomes an ERROR frame: an *rsocket.Error keeps its code (see Invalid and Rejected),
// any other error is APPLICATION_ERROR with err.Error() as the message. Through the gateway:
// APPLICATION_ERROR is 500 unless the route's `errors` map names a message prefix or code ("not found":
// 404), REJECTED is 503 with Retry-After, INVALID is 400. docs/BACKENDS.md has the whole mapping.
package router

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/rsgate/rsgate/internal/httpmeta"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/extension"
	"github.com/rsgate/rsgate/rsocket/frame"
)

// Handler types, one per interaction.
type (
	// RequestResponseFunc answers one request.
	RequestResponseFunc func(ctx context.Context, req *Request) (Response, error)
	// FireAndForgetFunc handles a request that gets no answer (the gateway answered 202 already).
	FireAndForgetFunc func(ctx context.Context, req *Request)
	// RequestStreamFunc sends the stream's items with send, which blocks until the requester has granted
	// credit (the gateway grants it as its HTTP client reads). Returning nil completes the stream.
	RequestStreamFunc func(ctx context.Context, req *Request, send func(data []byte) error) error
	// RequestChannelFunc reads the requester's items from in (closed when the requester completes; the
	// first item is req.Data) and sends its own with send. Returning nil completes its direction.
	RequestChannelFunc func(ctx context.Context, req *Request, in <-chan []byte, send func(data []byte) error) error
)

// Response is the answer of a request-response handler.
type Response struct {
	// Data is the answer's payload: the HTTP body through the gateway, with the backend's data_mime as
	// Content-Type unless Header sets one.
	Data []byte
	// Status is the HTTP status for the gateway to answer with; 0 keeps its default (200).
	Status int
	// Header holds HTTP response headers for the gateway to set (Content-Type included; connection
	// headers such as Content-Length or Transfer-Encoding are the gateway's and are ignored).
	Header http.Header
}

// Router dispatches requests by routing tag. Register every handler before serving; a Router is then
// safe for concurrent use by any number of connections.
type Router struct {
	mu     sync.RWMutex
	rr     table[RequestResponseFunc]
	fnf    table[FireAndForgetFunc]
	stream table[RequestStreamFunc]
	ch     table[RequestChannelFunc]
	// ChannelWindow is how many inbound channel items are requested ahead (REQUEST_N); default 32.
	ChannelWindow int
}

// New returns an empty Router.
func New() *Router { return &Router{} }

// HandleRequestResponse registers h for request-response requests whose tag matches pattern. It panics on
// an invalid pattern or a pattern already registered for this interaction, as net/http.ServeMux does.
func (r *Router) HandleRequestResponse(pattern string, h RequestResponseFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rr.add(pattern, h)
}

// HandleFireAndForget registers h for fire-and-forget requests whose tag matches pattern.
func (r *Router) HandleFireAndForget(pattern string, h FireAndForgetFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fnf.add(pattern, h)
}

// HandleRequestStream registers h for request-stream requests whose tag matches pattern.
func (r *Router) HandleRequestStream(pattern string, h RequestStreamFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stream.add(pattern, h)
}

// HandleRequestChannel registers h for request-channel requests whose tag matches pattern (the gateway's
// WebSocket routes with interaction request-channel).
func (r *Router) HandleRequestChannel(pattern string, h RequestChannelFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ch.add(pattern, h)
}

// Accept is an rsocket.Acceptor: use it as rsocket.Server.Acceptor. It serves every connection with r,
// reading the routing tag as the connection's SETUP metadata MIME says (composite or routing).
func (r *Router) Accept(setup *rsocket.SetupInfo, _ *rsocket.Conn) (rsocket.Handler, error) {
	return &connHandler{r: r, routingOnly: setup != nil && setup.MetadataMIME == extension.MimeRouting}, nil
}

// Invalid returns the error for a request the handler cannot accept (ERROR[INVALID]; HTTP 400 through the
// gateway).
func Invalid(format string, args ...any) error {
	return &rsocket.Error{Code: frame.CodeInvalid, Message: fmt.Sprintf(format, args...)}
}

// Rejected returns the error for a request refused before any work was done, safe to retry elsewhere
// (ERROR[REJECTED]; HTTP 503 with Retry-After through the gateway).
func Rejected(format string, args ...any) error {
	return &rsocket.Error{Code: frame.CodeRejected, Message: fmt.Sprintf(format, args...)}
}

// Well-known metadata entries a Request gives access to.
const (
	// MimeHTTP is the gateway's entry with the HTTP request line and forwarded headers (Request.HTTP), and
	// the answer's status and headers (Response.Status, Response.Header). Byte format: docs/METADATA.md.
	MimeHTTP = httpmeta.MIME
	// MimePrincipal is the gateway's entry describing the authenticated caller of a route with `auth`
	// (Request.Principal). Byte format: docs/METADATA.md.
	MimePrincipal = "message/x.rsgate.principal.v0"
)

// Request is one request as a handler sees it. Everything in it is a copy owned by the handler.
type Request struct {
	// Tag is the routing tag ("users.42").
	Tag string
	// Data is the request payload: the HTTP body through the gateway, byte for byte.
	Data []byte
	// Metadata is the raw request metadata (composite metadata, or the routing tags alone).
	Metadata []byte
	// HTTP is the forwarded HTTP request (message/x.rsgate.http.v0), nil when the gateway sent none.
	HTTP *HTTPRequest

	params      []param
	routingOnly bool
}

// HTTPRequest is the gateway's request entry: the request line and the headers the route forwards
// (forward_headers).
type HTTPRequest struct {
	Method string
	Target string // path?query as the client sent it
	Header http.Header
}

type param struct{ name, value string }

// Param returns the value of the pattern parameter name ("" when the pattern has none of that name).
func (q *Request) Param(name string) string {
	for _, p := range q.params {
		if p.name == name {
			return p.value
		}
	}
	return ""
}

// Entry returns the value of the first composite metadata entry of type mime.
func (q *Request) Entry(mime string) ([]byte, bool) {
	if q.routingOnly {
		return nil, false
	}
	return extension.FindComposite(q.Metadata, mime)
}

// BearerToken returns the token of the authentication entry (message/x.rsocket.authentication.v0, type
// bearer): the client's `Authorization: Bearer` header, when the route has forward_auth (the default).
func (q *Request) BearerToken() (string, bool) {
	v, ok := q.Entry(extension.MimeAuth)
	if !ok {
		return "", false
	}
	a, err := extension.ParseAuth(v)
	if err != nil || !a.WellKnown || a.Type != extension.AuthBearer {
		return "", false
	}
	return string(a.Payload), true
}

// Principal returns the value of the principal entry (message/x.rsgate.principal.v0) that the gateway
// adds on routes with `auth`: the verified subject, provider and scopes. Only the gateway writes it (it
// strips any a client sent); docs/METADATA.md gives its byte format.
func (q *Request) Principal() ([]byte, bool) { return q.Entry(MimePrincipal) }

// newRequest copies the payload and decodes what the handler reads.
func newRequest(p rsocket.Payload, routingOnly bool) (*Request, error) {
	q := &Request{Data: clone(p.Data), Metadata: clone(p.Metadata), routingOnly: routingOnly}
	var tags []byte
	if routingOnly {
		tags = q.Metadata
	} else {
		v, ok := extension.FindComposite(q.Metadata, extension.MimeRouting)
		if !ok {
			return q, errNoTag
		}
		tags = v
	}
	tag, err := extension.FirstRoutingTag(tags)
	if err != nil {
		return q, errNoTag
	}
	q.Tag = string(tag)
	if v, ok := q.Entry(httpmeta.MIME); ok {
		if rv, err := httpmeta.ParseRequest(v); err == nil {
			h := &HTTPRequest{Method: string(rv.Method), Target: string(rv.Target), Header: http.Header{}}
			for it := rv.Headers; it.Next(); {
				h.Header.Add(string(it.Name()), string(it.Value()))
			}
			q.HTTP = h
		}
	}
	return q, nil
}

var errNoTag = errors.New("router: the request has no routing tag")

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// responseMetadata encodes r's status and headers as the gateway's response entry (nil when neither).
func responseMetadata(r *Response) ([]byte, error) {
	if r.Status == 0 && len(r.Header) == 0 {
		return nil, nil
	}
	var hs []httpmeta.Header
	for name, vs := range r.Header {
		for _, v := range vs {
			hs = append(hs, httpmeta.Header{Name: []byte(strings.ToLower(name)), Value: []byte(v)})
		}
	}
	status := r.Status
	if status == 0 {
		status = http.StatusOK
	}
	v, err := httpmeta.AppendResponse(nil, status, hs...)
	if err != nil {
		return nil, err
	}
	return extension.AppendCompositeEntry(nil, httpmeta.MIME, v), nil
}

// errorFrame maps a handler's error onto an ERROR frame's code and message.
func errorFrame(err error) (frame.ErrorCode, string) {
	var re *rsocket.Error
	if errors.As(err, &re) {
		return re.Code, re.Message
	}
	return frame.CodeApplicationError, err.Error()
}
