package ingress

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/rsgate/rsgate/internal/auth"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/extension"
	"github.com/rsgate/rsgate/rsocket/frame"
)

// Trusted metadata on the rsocket relay (route section "rsocket"):
//
//   - The client's SETUP must declare composite metadata (message/x.rsocket.composite-metadata.v0) or routing
//     metadata (message/x.rsocket.routing.v0); any other metadata MIME type is refused with
//     ERROR[UNSUPPORTED_SETUP], because the gateway could not inspect what it relays (a backend reading it as
//     composite metadata could be fed forged entries).
//   - Reserved entries: every composite entry whose MIME type is one the gateway writes itself — any
//     message/x.rsgate.* (compared case-insensitively), and message/x.rsocket.authentication.v0 (by id or by
//     name) unless the route has forward_auth: true — is removed from REQUEST_*, channel PAYLOAD and
//     METADATA_PUSH metadata (client_metadata: strip, the default), or the request is refused with
//     ERROR[REJECTED] (reject; a channel item ends the stream so, a METADATA_PUSH is dropped, a SETUP carrying
//     message/x.rsgate.* gets ERROR[REJECTED_SETUP]).
//     Malformed composite metadata is refused with ERROR[INVALID] (it cannot be filtered, and a backend might
//     read it differently).
//   - Routing tags: every tag of every routing entry of a request must match rsocket.allow (an exact tag, a
//     "prefix.*" pattern, or "*"); otherwise ERROR[REJECTED] "rsgate: routing tag "x" is not allowed on this
//     route". A request without a routing tag is refused unless allow holds "*". A fire-and-forget that is
//     refused is dropped (there is no stream to answer on).
//   - The verified identity (route auth, from the upgrade or the SETUP; without one, the connection's
//     verified TLS client certificate, provider "mtls": tls_principal.go) is appended to every request's
//     composite metadata as message/x.rsgate.principal.v0.
//
// When there is nothing to remove and no identity to add, the request's metadata is relayed as it is,
// without a copy or an allocation.

// rsPolicy is a rsocket route's resolved "rsocket" section.
type rsPolicy struct {
	allowAll    bool
	exact       map[string]struct{}
	prefixes    []string // "users." for "users.*"
	reject      bool     // client_metadata: reject
	forwardAuth bool     // the client's authentication entries pass
	maxStreams  int      // 0: Options.RSocketMaxStreams or the default
}

func newRSPolicy(cr *mapping.CompiledRoute) *rsPolicy {
	p := &rsPolicy{forwardAuth: cr.ForwardAuth, exact: map[string]struct{}{}}
	rs := cr.RSocket
	if rs == nil {
		return p // Go-built config without the section: nothing is allowed
	}
	p.reject = rs.ClientMetadata == mapping.ClientMetadataReject
	p.maxStreams = rs.MaxStreams
	for _, a := range rs.Allow {
		switch {
		case a == "*":
			p.allowAll = true
		case strings.HasSuffix(a, ".*"):
			p.prefixes = append(p.prefixes, strings.TrimSuffix(a, "*"))
		default:
			p.exact[a] = struct{}{}
		}
	}
	return p
}

// allowed reports whether a routing tag matches the allow list. It does not allocate.
func (p *rsPolicy) allowed(tag []byte) bool {
	if p.allowAll {
		return true
	}
	if _, ok := p.exact[string(tag)]; ok {
		return true
	}
	for _, pre := range p.prefixes {
		if len(tag) > len(pre) && string(tag[:len(pre)]) == pre {
			return true
		}
	}
	return false
}

const gatewayMimePrefix = "message/x.rsgate."

// reserved reports whether a client entry is of a type only the gateway may write. setup: the entry is in
// SETUP metadata, where the authentication entry is the client's credential and not reserved.
func (p *rsPolicy) reserved(e *extension.CompositeEntry, setup bool) bool {
	if !e.WellKnown && len(e.Mime) >= len(gatewayMimePrefix) &&
		strings.EqualFold(unsafeString(e.Mime[:len(gatewayMimePrefix)]), gatewayMimePrefix) {
		return true
	}
	return !setup && !p.forwardAuth && e.Is(extension.MimeAuth)
}

func isRoutingEntry(e *extension.CompositeEntry) bool { return e.Is(extension.MimeRouting) }

// quoteTag is a tag for an error message: quoted, at most 64 bytes.
func quoteTag(tag []byte) string {
	if len(tag) > 64 {
		tag = tag[:64]
	}
	if !utf8.Valid(tag) {
		return strconv.QuoteToASCII(string(tag))
	}
	return strconv.Quote(string(tag))
}

func rejected(msg string) *rsocket.Error {
	return &rsocket.Error{Code: frame.CodeRejected, Message: msg}
}

var (
	errMalformedMetadata = &rsocket.Error{Code: frame.CodeInvalid, Message: "rsgate: malformed composite metadata"}
	errTagRequired       = rejected("rsgate: a routing tag is required on this route")
	errReservedMetadata  = rejected("rsgate: the request carries metadata of a type only the gateway may write (message/x.rsgate.*, authentication)")
)

// admit checks the metadata md of a client request (push: a METADATA_PUSH, which needs no routing tag) and
// returns the metadata to relay: md itself when nothing is removed or added, else a new slice. A non-nil
// error is the *rsocket.Error to answer the stream with.
func (ss *rsSession) admit(md []byte, push bool) ([]byte, error) {
	return ss.filter(md, push, true)
}

// OnNext forwards a client's channel item to the backend with reserved metadata entries removed (strip) or,
// in reject mode, ends the client's stream with ERROR[REJECTED] (the backend stream is then canceled).
// Items carry no routing tags to check and get no principal entry (the REQUEST_CHANNEL frame had it).
func (t toBackend) OnNext(p rsocket.Payload, complete bool) {
	if len(p.Metadata) > 0 && t.ss != nil {
		md, err := t.ss.filter(p.Metadata, true, false)
		if err != nil {
			relayError(t.v.requestOn, err)
			return
		}
		p.Metadata = md
	}
	t.forwarder.OnNext(p, complete)
}

// filter is admit; noTags: no routing tag check (push, channel items); addID: append the principal entry.
func (ss *rsSession) filter(md []byte, push, addID bool) ([]byte, error) {
	p := ss.rt.rsp
	if p == nil {
		return md, nil
	}
	if ss.routing { // routing metadata: the tags only, nothing to filter or add
		if push {
			return md, nil
		}
		it := extension.NewRoutingIter(md)
		n := 0
		for it.Next() {
			if !p.allowed(it.Tag()) {
				return nil, rejected("rsgate: routing tag " + quoteTag(it.Tag()) + " is not allowed on this route")
			}
			n++
		}
		if it.Err() != nil {
			return nil, &rsocket.Error{Code: frame.CodeInvalid, Message: "rsgate: malformed routing metadata"}
		}
		if n == 0 && !p.allowAll {
			return nil, errTagRequired
		}
		return md, nil
	}
	reserved, tagged := 0, false
	it := extension.NewCompositeIter(md)
	for it.Next() {
		e := it.Entry()
		switch {
		case isRoutingEntry(&e):
			if push {
				continue
			}
			rt := extension.NewRoutingIter(e.Value)
			for rt.Next() {
				if !p.allowed(rt.Tag()) {
					return nil, rejected("rsgate: routing tag " + quoteTag(rt.Tag()) + " is not allowed on this route")
				}
				tagged = true
			}
			if rt.Err() != nil {
				return nil, errMalformedMetadata
			}
		case p.reserved(&e, false):
			reserved++
		}
	}
	if it.Err() != nil {
		return nil, errMalformedMetadata
	}
	if !push && !tagged && !p.allowAll {
		return nil, errTagRequired
	}
	if reserved > 0 && p.reject {
		return nil, errReservedMetadata
	}
	var entry []byte
	if addID {
		entry = ss.principalEntry() // route auth's identity, else the mTLS one (tls_principal.go)
	}
	if reserved == 0 && entry == nil {
		return md, nil
	}
	out := make([]byte, 0, len(md)+len(entry))
	it = extension.NewCompositeIter(md)
	start := 0
	for it.Next() {
		e := it.Entry()
		if !p.reserved(&e, false) {
			out = append(out, md[start:it.Offset()]...)
		}
		start = it.Offset()
	}
	out = append(out, entry...)
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// checkSetup applies the route's policy and auth to the client's SETUP: its metadata MIME type, reserved
// entries in its metadata (reject mode), and, for a route with auth whose upgrade carried no credential,
// the bearer entry of its metadata.
func (ss *rsSession) checkSetup(setup *rsocket.SetupInfo) error {
	p := ss.rt.rsp
	if p == nil {
		return nil
	}
	mime := strings.ToLower(setup.MetadataMIME)
	if mime != extension.MimeComposite && mime != extension.MimeRouting {
		return &rsocket.Error{Code: frame.CodeUnsupportedSetup, Message: "rsgate: the metadata MIME type must be " +
			extension.MimeComposite + " or " + extension.MimeRouting}
	}
	composite := mime == extension.MimeComposite
	if composite && p.reject && len(setup.Payload.Metadata) > 0 {
		it := extension.NewCompositeIter(setup.Payload.Metadata)
		for it.Next() {
			if e := it.Entry(); p.reserved(&e, true) {
				return &rsocket.Error{Code: frame.CodeRejectedSetup, Message: "rsgate: SETUP metadata carries a message/x.rsgate.* entry, which only the gateway may write"}
			}
		}
	}
	ra := ss.rt.auth
	if ra == nil || ss.id != nil {
		return nil
	}
	var tok []byte
	if composite {
		tok = setupBearer(setup.Payload.Metadata)
	}
	if tok == nil {
		return &rsocket.Error{Code: frame.CodeRejectedSetup, Message: "rsgate: unauthorized: authentication required"}
	}
	id, err := ra.p.Verify(tok)
	if err != nil {
		reason := "invalid credentials"
		var ae *auth.Error
		if errors.As(err, &ae) {
			reason = ae.Reason
		}
		return &rsocket.Error{Code: frame.CodeRejectedSetup, Message: "rsgate: unauthorized: " + reason}
	}
	if !id.HasScopes(ra.scopes) {
		return &rsocket.Error{Code: frame.CodeRejectedSetup, Message: "rsgate: insufficient scope: the route requires " + strings.Join(ra.scopes, " ")}
	}
	ss.id = id
	return nil
}

// setupBearer returns the token of the first authentication entry of composite metadata md if it is of
// type bearer, or nil.
func setupBearer(md []byte) []byte {
	v, ok := extension.FindComposite(md, extension.MimeAuth)
	if !ok {
		return nil
	}
	a, err := extension.ParseAuth(v)
	if err != nil {
		return nil
	}
	tok, err := a.Bearer()
	if err != nil || len(tok) == 0 {
		return nil
	}
	return tok
}
