// Package httpmeta encodes and decodes the gateway metadata entry of rsgate, the composite metadata entry
// with the custom MIME type "message/x.rsgate.http.v0" (see docs/METADATA.md for the byte format and a hex
// example).
//
// The gateway (package ingress) writes a request entry carrying the HTTP method, the request target
// (path?query) and the headers the route forwards; a backend may answer with a response entry carrying the
// HTTP status and headers the gateway applies to the HTTP response.
//
// Encoding is append style and does not allocate: the Append functions append to dst and return the
// extended slice. Decoding returns views (RequestView, ResponseView, HeaderIter) whose byte slices alias the
// input: they are valid only as long as the input bytes are (for a received rsocket payload, until the
// message is released or the callback returns). Copy what you keep.
//
// All integers are big-endian. Decoding errors are *ParseError values matching errors.Is(err, ErrMalformed);
// an entry of another version matches ErrVersion.
package httpmeta

import (
	"encoding/binary"
	"errors"
	"strconv"
)

// MIME is the composite metadata MIME type of the gateway entry. It is not a well-known RSocket MIME type, so
// it is written in composite metadata as a custom string (length-1 in the 7 low bits of the first byte).
const MIME = "message/x.rsgate.http.v0"

// Version is the only format version this package writes and reads.
const Version = 1

// Kind tells a request entry from a response entry.
type Kind uint8

const (
	// KindRequest is written by the gateway on REQUEST_* frames.
	KindRequest Kind = 1
	// KindResponse may be written by a backend on a response PAYLOAD.
	KindResponse Kind = 2
)

func (k Kind) String() string {
	switch k {
	case KindRequest:
		return "request"
	case KindResponse:
		return "response"
	}
	return "UNKNOWN_" + strconv.Itoa(int(k))
}

// Field limits implied by the length prefixes.
const (
	MaxMethodLen  = 0xFF   // u8 method length
	MaxTargetLen  = 0xFFFF // u16 target length
	MaxNameLen    = 0xFF   // u8 header name length
	MaxValueLen   = 0xFFFF // u16 header value length
	MaxHeaders    = 0xFFFF // u16 header count
	requestFixed  = 2      // version, kind
	responseFixed = 2 + 2 + 2
)

var (
	// ErrMalformed matches every decoding error of a truncated or inconsistent entry.
	ErrMalformed = errors.New("httpmeta: malformed entry")
	// ErrVersion matches an entry whose version byte is not Version, or whose kind is not the expected one.
	ErrVersion = errors.New("httpmeta: unsupported version or kind")
	// ErrTooLong is returned by the encoders when a field exceeds its length prefix (see the Max constants).
	ErrTooLong = errors.New("httpmeta: field too long for its length prefix")
	// ErrTooManyHeaders is returned when more than MaxHeaders headers are written.
	ErrTooManyHeaders = errors.New("httpmeta: more than 65535 headers")
)

// ParseError describes where an entry is malformed.
type ParseError struct {
	Offset int    // byte offset in the entry value
	Reason string // what is wrong there
	kind   error  // ErrMalformed or ErrVersion
}

func (e *ParseError) Error() string {
	return "httpmeta: " + e.Reason + " at offset " + strconv.Itoa(e.Offset)
}

// Is makes errors.Is(err, ErrMalformed) / errors.Is(err, ErrVersion) work.
func (e *ParseError) Is(target error) bool { return target == e.kind }

func malformed(off int, reason string) error {
	return &ParseError{Offset: off, Reason: reason, kind: ErrMalformed}
}

// Header is one header as a name/value pair of byte slices.
type Header struct {
	Name, Value []byte
}

// AppendRequestHead appends the fixed part of a request entry with a header count of 0 and returns the
// extended slice and the offset in it of the u16 header count, to be patched with SetHeaderCount after the
// headers were appended with AppendHeader.
func AppendRequestHead(dst, method, target []byte) ([]byte, int, error) {
	if len(method) > MaxMethodLen || len(target) > MaxTargetLen {
		return dst, 0, ErrTooLong
	}
	dst = append(dst, Version, byte(KindRequest), byte(len(method)))
	dst = append(dst, method...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(target)))
	dst = append(dst, target...)
	at := len(dst)
	dst = append(dst, 0, 0)
	return dst, at, nil
}

// AppendResponseHead appends the fixed part of a response entry (status and a header count of 0) and returns
// the extended slice and the offset of the u16 header count (see AppendRequestHead).
func AppendResponseHead(dst []byte, status int) ([]byte, int, error) {
	if status < 0 || status > 0xFFFF {
		return dst, 0, ErrTooLong
	}
	dst = append(dst, Version, byte(KindResponse))
	dst = binary.BigEndian.AppendUint16(dst, uint16(status))
	at := len(dst)
	dst = append(dst, 0, 0)
	return dst, at, nil
}

// AppendHeader appends one header. The name is written in lower case (ASCII), the value as is.
func AppendHeader(dst, name, value []byte) ([]byte, error) {
	if len(name) > MaxNameLen || len(value) > MaxValueLen {
		return dst, ErrTooLong
	}
	dst = append(dst, byte(len(name)))
	for _, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(value)))
	return append(dst, value...), nil
}

// SetHeaderCount writes n into the u16 header count at offset at of b (as returned by the Head functions).
func SetHeaderCount(b []byte, at, n int) error {
	if n < 0 || n > MaxHeaders {
		return ErrTooManyHeaders
	}
	binary.BigEndian.PutUint16(b[at:], uint16(n))
	return nil
}

// AppendRequest appends a whole request entry value. On error dst is returned unchanged.
func AppendRequest(dst, method, target []byte, headers ...Header) ([]byte, error) {
	if len(headers) > MaxHeaders {
		return dst, ErrTooManyHeaders
	}
	out, at, err := AppendRequestHead(dst, method, target)
	if err != nil {
		return dst, err
	}
	return appendHeaders(out, len(dst), at, headers)
}

// AppendResponse appends a whole response entry value. On error dst is returned unchanged.
func AppendResponse(dst []byte, status int, headers ...Header) ([]byte, error) {
	if len(headers) > MaxHeaders {
		return dst, ErrTooManyHeaders
	}
	out, at, err := AppendResponseHead(dst, status)
	if err != nil {
		return dst, err
	}
	return appendHeaders(out, len(dst), at, headers)
}

// appendHeaders appends headers to an entry whose head (AppendRequestHead, AppendResponseHead) starts at
// start of out and has its header count at at, then sets the count. On error out[:start] is returned.
func appendHeaders(out []byte, start, at int, headers []Header) ([]byte, error) {
	var err error
	for _, h := range headers {
		if out, err = AppendHeader(out, h.Name, h.Value); err != nil {
			return out[:start], err
		}
	}
	binary.BigEndian.PutUint16(out[at:], uint16(len(headers)))
	return out, nil
}

// RequestView is a decoded request entry. Its slices alias the parsed bytes.
type RequestView struct {
	Method  []byte
	Target  []byte // path?query as received by the gateway
	Headers HeaderIter
}

// ResponseView is a decoded response entry. Its slices alias the parsed bytes.
type ResponseView struct {
	Status  int
	Headers HeaderIter
}

// ParseRequest decodes a request entry value and validates all its headers. Bytes after the last header
// are ignored (reserved for additions within version 1).
func ParseRequest(b []byte) (RequestView, error) {
	if err := checkFixed(b, KindRequest); err != nil {
		return RequestView{}, err
	}
	off := requestFixed
	if len(b) < off+1 {
		return RequestView{}, malformed(off, "method length missing")
	}
	ml := int(b[off])
	off++
	if len(b) < off+ml {
		return RequestView{}, malformed(off-1, "method overflows entry")
	}
	v := RequestView{Method: b[off : off+ml : off+ml]}
	off += ml
	if len(b) < off+2 {
		return RequestView{}, malformed(off, "target length missing")
	}
	tl := int(binary.BigEndian.Uint16(b[off:]))
	off += 2
	if len(b) < off+tl {
		return RequestView{}, malformed(off-2, "target overflows entry")
	}
	v.Target = b[off : off+tl : off+tl]
	off += tl
	h, err := parseHeaders(b, off)
	if err != nil {
		return RequestView{}, err
	}
	v.Headers = h
	return v, nil
}

// ParseResponse decodes a response entry value and validates all its headers. Bytes after the last header
// are ignored.
func ParseResponse(b []byte) (ResponseView, error) {
	if err := checkFixed(b, KindResponse); err != nil {
		return ResponseView{}, err
	}
	if len(b) < 4 {
		return ResponseView{}, malformed(len(b), "status missing")
	}
	v := ResponseView{Status: int(binary.BigEndian.Uint16(b[2:]))}
	h, err := parseHeaders(b, 4)
	if err != nil {
		return ResponseView{}, err
	}
	v.Headers = h
	return v, nil
}

func checkFixed(b []byte, want Kind) error {
	if len(b) < 2 {
		return malformed(len(b), "version and kind missing")
	}
	if b[0] != Version {
		return &ParseError{Offset: 0, Reason: "version " + strconv.Itoa(int(b[0])) + " is not 1", kind: ErrVersion}
	}
	if Kind(b[1]) != want {
		return &ParseError{Offset: 1, Reason: "kind " + Kind(b[1]).String() + " where " + want.String() + " expected", kind: ErrVersion}
	}
	return nil
}

// parseHeaders validates the header count at off and every header after it.
func parseHeaders(b []byte, off int) (HeaderIter, error) {
	if len(b) < off+2 {
		return HeaderIter{}, malformed(off, "header count missing")
	}
	n := int(binary.BigEndian.Uint16(b[off:]))
	off += 2
	start := off
	for i := 0; i < n; i++ {
		if len(b) < off+1 {
			return HeaderIter{}, malformed(off, "header name length missing")
		}
		nl := int(b[off])
		off += 1 + nl
		if len(b) < off+2 {
			return HeaderIter{}, malformed(off-nl-1, "header name overflows entry")
		}
		vl := int(binary.BigEndian.Uint16(b[off:]))
		off += 2 + vl
		if len(b) < off {
			return HeaderIter{}, malformed(off-vl-2, "header value overflows entry")
		}
	}
	return HeaderIter{b: b[start:off:off], n: n}, nil
}

// HeaderIter walks validated headers. The zero value has no headers.
//
//	it := v.Headers
//	for it.Next() { name, value := it.Name(), it.Value() }
type HeaderIter struct {
	b           []byte
	n           int
	name, value []byte
}

// Len returns the number of headers not yet returned by Next.
func (it *HeaderIter) Len() int { return it.n }

// Next advances to the next header and reports whether there is one.
func (it *HeaderIter) Next() bool {
	if it.n == 0 {
		return false
	}
	it.n--
	nl := int(it.b[0])
	it.name = it.b[1 : 1+nl : 1+nl]
	p := 1 + nl
	vl := int(binary.BigEndian.Uint16(it.b[p:]))
	p += 2
	it.value = it.b[p : p+vl : p+vl]
	it.b = it.b[p+vl:]
	return true
}

// Name returns the current header's name (lower case when written by this package).
func (it *HeaderIter) Name() []byte { return it.name }

// Value returns the current header's value.
func (it *HeaderIter) Value() []byte { return it.value }

// Get returns the value of the first header named name (ASCII case-insensitive), scanning a copy of the
// iterator, so it does not advance it.
func (it HeaderIter) Get(name string) ([]byte, bool) {
	for it.Next() {
		if EqualFold(it.name, name) {
			return it.value, true
		}
	}
	return nil, false
}

// EqualFold reports whether b and s are equal under ASCII case folding (header names; other bytes must
// match exactly).
func EqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
