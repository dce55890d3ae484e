// Package principal encodes and decodes the gateway's identity metadata entry, the composite metadata entry
// with the custom MIME type "message/x.rsgate.principal.v0" (byte format in docs/METADATA.md).
//
// The gateway (package ingress) writes one such entry on every request of a route with authentication,
// after verifying the client's credentials: the subject, the name of the provider that verified it, the
// granted scopes and the claims the provider forwards. A request without such an identity on a connection
// with a verified TLS client certificate gets the certificate's entry instead (FromClientCert: provider
// "mtls", the subject, no scopes or claims). Clients cannot forge it: on HTTP routes the gateway
// builds all metadata itself, and on rsocket routes it strips (or rejects) client entries of every
// message/x.rsgate.* type before relaying.
//
// Encoding is append style and does not allocate when dst has room. Decoding returns a View whose slices
// alias the input: valid only as long as the input bytes are. Copy what you keep.
//
// All integers are big-endian. Decoding errors match errors.Is(err, ErrMalformed); an entry of another
// version matches ErrVersion.
package principal

import (
	"encoding/binary"
	"errors"
	"strconv"
)

// MIME is the composite metadata MIME type of the entry (a custom name: written as length-1 in the 7 low
// bits of the entry's first byte, then the name).
const MIME = "message/x.rsgate.principal.v0"

// Version is the only format version this package writes and reads.
const Version = 1

// Limits implied by the length prefixes.
const (
	MaxProviderLen  = 0xFF   // u8
	MaxSubjectLen   = 0xFFFF // u16
	MaxScopes       = 0xFF   // u8 count
	MaxScopeLen     = 0xFF   // u8
	MaxClaims       = 0xFF   // u8 count
	MaxClaimNameLen = 0xFF   // u8
	MaxClaimLen     = 0xFFFF // u16
)

// ProviderMTLS is the provider name of a principal taken from a verified TLS client certificate.
const ProviderMTLS = "mtls"

var (
	// ErrMalformed matches every decoding error of a truncated or inconsistent entry.
	ErrMalformed = errors.New("principal: malformed entry")
	// ErrVersion matches an entry whose version byte is not Version.
	ErrVersion = errors.New("principal: unsupported version")
	// ErrTooLong is returned by Append when a field or a count exceeds its length prefix.
	ErrTooLong = errors.New("principal: field too long for its length prefix")
)

// ParseError says where an entry is malformed.
type ParseError struct {
	Offset int
	Reason string
	kind   error
}

func (e *ParseError) Error() string {
	return "principal: " + e.Reason + " at offset " + strconv.Itoa(e.Offset)
}

// Is makes errors.Is(err, ErrMalformed) and errors.Is(err, ErrVersion) work.
func (e *ParseError) Is(target error) bool { return target == e.kind }

func malformed(off int, reason string) error {
	return &ParseError{Offset: off, Reason: reason, kind: ErrMalformed}
}

// Claim is one forwarded claim: its name and its value (a string claim as the string, any other JSON value
// as its compact JSON text).
type Claim struct {
	Name, Value string
}

// Principal is a verified identity.
type Principal struct {
	Subject  string
	Provider string
	Scopes   []string
	Claims   []Claim
}

// Append appends the entry value of p to dst. On error dst is returned unchanged.
func Append(dst []byte, p *Principal) ([]byte, error) {
	if len(p.Provider) > MaxProviderLen || len(p.Subject) > MaxSubjectLen || len(p.Scopes) > MaxScopes ||
		len(p.Claims) > MaxClaims {
		return dst, ErrTooLong
	}
	start := len(dst)
	dst = append(dst, Version, byte(len(p.Provider)))
	dst = append(dst, p.Provider...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(p.Subject)))
	dst = append(dst, p.Subject...)
	dst = append(dst, byte(len(p.Scopes)))
	for _, s := range p.Scopes {
		if len(s) > MaxScopeLen {
			return dst[:start], ErrTooLong
		}
		dst = append(dst, byte(len(s)))
		dst = append(dst, s...)
	}
	dst = append(dst, byte(len(p.Claims)))
	for _, c := range p.Claims {
		if len(c.Name) > MaxClaimNameLen || len(c.Value) > MaxClaimLen {
			return dst[:start], ErrTooLong
		}
		dst = append(dst, byte(len(c.Name)))
		dst = append(dst, c.Name...)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(c.Value)))
		dst = append(dst, c.Value...)
	}
	return dst, nil
}

// entryPrefix is the composite entry header of MIME without its u24 length.
var entryPrefix = append([]byte{byte(len(MIME) - 1)}, MIME...)

// AppendEntry appends a whole composite metadata entry (MIME header, u24 length, value) holding value, an
// encoded principal (Append). It does not allocate when dst has room.
func AppendEntry(dst, value []byte) []byte {
	dst = append(dst, entryPrefix...)
	n := len(value)
	dst = append(dst, byte(n>>16), byte(n>>8), byte(n))
	return append(dst, value...)
}

// FromClientCert returns the principal of a verified TLS client certificate: provider "mtls" and the
// certificate's subject (its distinguished name as crypto/x509's Name.String writes it, passed in by the
// caller so that this package does not depend on crypto/x509). Encode it with Append and AppendEntry.
func FromClientCert(subjectDN string) *Principal {
	return &Principal{Subject: subjectDN, Provider: ProviderMTLS}
}

// View is a decoded entry. Its slices alias the parsed bytes.
type View struct {
	Provider []byte
	Subject  []byte
	Scopes   ListIter
	Claims   ClaimIter
}

// ListIter walks the scopes of a View: for it.Next() { it.Value() }.
type ListIter struct {
	b   []byte
	n   int
	cur []byte
}

// Len is the number of scopes.
func (it ListIter) Len() int { return it.n }

// Next advances to the next scope; false at the end.
func (it *ListIter) Next() bool {
	if it.n == 0 {
		return false
	}
	l := int(it.b[0])
	it.cur, it.b = it.b[1:1+l:1+l], it.b[1+l:]
	it.n--
	return true
}

// Value is the current scope.
func (it *ListIter) Value() []byte { return it.cur }

// ClaimIter walks the claims of a View.
type ClaimIter struct {
	b           []byte
	n           int
	name, value []byte
}

// Len is the number of claims.
func (it ClaimIter) Len() int { return it.n }

// Next advances to the next claim; false at the end.
func (it *ClaimIter) Next() bool {
	if it.n == 0 {
		return false
	}
	nl := int(it.b[0])
	it.name = it.b[1 : 1+nl : 1+nl]
	b := it.b[1+nl:]
	vl := int(binary.BigEndian.Uint16(b))
	it.value, it.b = b[2:2+vl:2+vl], b[2+vl:]
	it.n--
	return true
}

// Name is the current claim's name; Value its value.
func (it *ClaimIter) Name() []byte  { return it.name }
func (it *ClaimIter) Value() []byte { return it.value }

// Parse decodes an entry value and validates all its fields. Bytes after the last claim are ignored
// (reserved for additions within version 1).
func Parse(b []byte) (View, error) {
	var v View
	if len(b) < 1 {
		return v, malformed(0, "version missing")
	}
	if b[0] != Version {
		return v, &ParseError{Offset: 0, Reason: "version " + strconv.Itoa(int(b[0])), kind: ErrVersion}
	}
	off := 1
	if len(b) < off+1 {
		return v, malformed(off, "provider length missing")
	}
	pl := int(b[off])
	off++
	if len(b) < off+pl {
		return v, malformed(off-1, "provider overflows entry")
	}
	v.Provider = b[off : off+pl : off+pl]
	off += pl
	if len(b) < off+2 {
		return v, malformed(off, "subject length missing")
	}
	sl := int(binary.BigEndian.Uint16(b[off:]))
	off += 2
	if len(b) < off+sl {
		return v, malformed(off-2, "subject overflows entry")
	}
	v.Subject = b[off : off+sl : off+sl]
	off += sl
	if len(b) < off+1 {
		return v, malformed(off, "scope count missing")
	}
	ns := int(b[off])
	off++
	start := off
	for i := 0; i < ns; i++ {
		if len(b) < off+1 {
			return v, malformed(off, "scope length missing")
		}
		l := int(b[off])
		if len(b) < off+1+l {
			return v, malformed(off, "scope overflows entry")
		}
		off += 1 + l
	}
	v.Scopes = ListIter{b: b[start:off:off], n: ns}
	if len(b) < off+1 {
		return v, malformed(off, "claim count missing")
	}
	nc := int(b[off])
	off++
	start = off
	for i := 0; i < nc; i++ {
		if len(b) < off+1 {
			return v, malformed(off, "claim name length missing")
		}
		nl := int(b[off])
		if len(b) < off+1+nl+2 {
			return v, malformed(off, "claim name overflows entry")
		}
		vl := int(binary.BigEndian.Uint16(b[off+1+nl:]))
		if len(b) < off+1+nl+2+vl {
			return v, malformed(off+1+nl, "claim value overflows entry")
		}
		off += 1 + nl + 2 + vl
	}
	v.Claims = ClaimIter{b: b[start:off:off], n: nc}
	return v, nil
}
