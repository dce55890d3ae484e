package ingress

import (
	"errors"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/rsgate/rsgate/internal/httpmeta"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket/extension"
)

// Metadata MIME types the ingress writes and reads.
const (
	// MimeGateway is the composite entry carrying the HTTP request (and, from backends, the HTTP response)
	// line and headers; its format is in package internal/httpmeta and docs/METADATA.md.
	MimeGateway = httpmeta.MIME
)

// Errors of request metadata building; answered 400.
var (
	// ErrTagTooLong: the expanded routing tag is empty or longer than the 255 bytes a routing tag holds.
	ErrTagTooLong = errors.New("ingress: routing tag empty or longer than 255 bytes")
	// ErrHeaderTooLong: the request target or a forwarded header does not fit the gateway entry.
	ErrHeaderTooLong = errors.New("ingress: request target or forwarded header too long for the gateway metadata entry")
)

// gatewayEntryPrefix is the composite entry header of MimeGateway without its u24 length: a custom MIME
// name is written as length-1 in the low 7 bits, then the name.
var gatewayEntryPrefix = append([]byte{byte(len(MimeGateway) - 1)}, MimeGateway...)

var strBearer = []byte("bearer ")

// metaRequest is what appendRequestMetadata reads from an HTTP request.
type metaRequest struct {
	method, target []byte
	header         *fasthttp.RequestHeader
	clientSubject  []byte // verified client certificate subject (tls_edge.go); nil: none
	principal      []byte // the whole principal entry of the verified identity (auth.go), or nil
}

// metaRequestOf is what the metadata of rq is built from: the one place that reads it from the HTTP
// request, for the served request (prepare) and its shadow copy alike.
func (s *Server) metaRequestOf(ctx *fasthttp.RequestCtx, rq *request) metaRequest {
	return metaRequest{method: ctx.Method(), target: ctx.RequestURI(), header: &ctx.Request.Header,
		clientSubject: s.clientSubject(ctx), principal: rq.principal}
}

// appendRequestMetadata appends the request metadata for route rt to dst (normally dst[:0] of a pooled
// buffer) and returns it; the result is nil when there is nothing to send (M flag clear). For composite
// metadata it writes, in this order: the routing entry (when the route has a tag), the bearer
// authentication entry (forward_auth and an "Authorization: Bearer X" header), the zipkin tracing entry
// (a valid W3C "traceparent" header), and the gateway entry (when the route forwards headers). It does not
// allocate when dst has room.
func appendRequestMetadata(dst []byte, rt *route, ps *mapping.Params, r *metaRequest) ([]byte, error) {
	dst = dst[:0]
	switch rt.mdKind {
	case mdNone:
		return nil, nil
	case mdRouting:
		if !rt.cr.HasTag() {
			return nil, nil
		}
		dst = append(dst, 0)
		dst = rt.cr.AppendTag(dst, ps)
		n := len(dst) - 1
		if n == 0 || n > 255 {
			return nil, ErrTagTooLong
		}
		dst[0] = byte(n)
		return dst, nil
	}
	if rt.cr.HasTag() {
		// [0x80|0x7E][u24 len][u8 tag len][tag]
		start := len(dst)
		dst = append(dst, 0x80|extension.IDRouting, 0, 0, 0, 0)
		dst = rt.cr.AppendTag(dst, ps)
		n := len(dst) - start - 5
		if n == 0 || n > 255 {
			return nil, ErrTagTooLong
		}
		dst[start+4] = byte(n)
		putU24(dst[start+1:], n+1)
	}
	if rt.forwardAuth {
		if tok := bearerToken(r.header.Peek(fasthttp.HeaderAuthorization)); tok != nil {
			var err error
			if dst, err = extension.AppendCompositeBearer(dst, tok); err != nil {
				return nil, ErrHeaderTooLong
			}
		}
	}
	dst = appendTracingEntry(dst, r.header.Peek(headerTraceparent))
	if len(rt.forward) > 0 || r.clientSubject != nil {
		var err error
		if dst, err = appendGatewayEntry(dst, rt.forward, r); err != nil {
			return nil, err
		}
	}
	dst = append(dst, r.principal...) // message/x.rsgate.principal.v0, built by the gateway only
	if len(dst) == 0 {
		return nil, nil
	}
	return dst, nil
}

// headerTraceparent is the W3C Trace Context request header.
const headerTraceparent = "traceparent"

// appendTracingEntry appends the zipkin tracing entry (message/x.rsocket.tracing-zipkin.v0, well-known id
// 0x7D) converted from a W3C traceparent value: 128-bit trace id, the caller's span as span id, the
// sampled flag. An empty or invalid value (extension.ZipkinFromTraceparent's rules) appends nothing.
func appendTracingEntry(dst, traceparent []byte) []byte {
	if len(traceparent) == 0 {
		return dst
	}
	z, ok := extension.ZipkinFromTraceparent(traceparent)
	if !ok {
		return dst
	}
	dst = extension.AppendCompositeHeaderID(dst, extension.IDTracingZipkin, z.Len())
	return extension.AppendZipkin(dst, &z)
}

// appendGatewayEntry appends the MimeGateway composite entry: method, target and the forwarded headers
// present in the request (every value of a repeated header, in order).
func appendGatewayEntry(dst []byte, names []string, r *metaRequest) ([]byte, error) {
	start := len(dst)
	dst = append(dst, gatewayEntryPrefix...)
	lenAt := len(dst)
	dst = append(dst, 0, 0, 0)
	dst, countAt, err := httpmeta.AppendRequestHead(dst, r.method, r.target)
	if err != nil {
		return dst[:start], ErrHeaderTooLong
	}
	count := 0
	for _, name := range names {
		for _, v := range r.header.PeekAll(name) {
			if dst, err = httpmeta.AppendHeader(dst, unsafeBytes(name), v); err != nil {
				return dst[:start], ErrHeaderTooLong
			}
			count++
		}
	}
	if r.clientSubject != nil { // gateway-set; never taken from the client (tls_edge.go)
		if dst, err = httpmeta.AppendHeader(dst, strClientCertSubject, r.clientSubject); err != nil {
			return dst[:start], ErrHeaderTooLong
		}
		count++
	}
	if err := httpmeta.SetHeaderCount(dst, countAt, count); err != nil {
		return dst[:start], ErrHeaderTooLong
	}
	n := len(dst) - lenAt - 3
	if n > extension.MaxCompositeValueLen {
		return dst[:start], ErrHeaderTooLong
	}
	putU24(dst[lenAt:], n)
	return dst, nil
}

// bearerToken returns X of "Bearer X" (scheme case-insensitive, surrounding spaces trimmed), or nil.
func bearerToken(v []byte) []byte {
	if len(v) <= len(strBearer) {
		return nil
	}
	for i, c := range strBearer {
		b := v[i]
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if b != c {
			return nil
		}
	}
	tok := v[len(strBearer):]
	for len(tok) > 0 && (tok[0] == ' ' || tok[0] == '\t') {
		tok = tok[1:]
	}
	for len(tok) > 0 && (tok[len(tok)-1] == ' ' || tok[len(tok)-1] == '\t') {
		tok = tok[:len(tok)-1]
	}
	if len(tok) == 0 {
		return nil
	}
	return tok
}

func putU24(b []byte, n int) {
	b[0], b[1], b[2] = byte(n>>16), byte(n>>8), byte(n)
}

// unsafeBytes returns the bytes of s without copying; they must not be modified.
func unsafeBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
