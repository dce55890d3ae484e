package extension

import "encoding/binary"

// Authentication metadata (Security/Authentication.md):
//
//	[A:1|auth type id or len-1:7] [auth type name if A=0] [payload]
//
// Simple (Security/Simple.md), well-known type 0x00: [username length u16][username][password].
// Bearer (Security/Bearer.md), well-known type 0x01: [token].

// Well-known authentication types (Security/WellKnownAuthTypes.md).
const (
	AuthSimple uint8 = 0x00
	AuthBearer uint8 = 0x01
)

// Names of the well-known authentication types, as rsocket-java and rsocket-js spell them.
const (
	AuthTypeSimple = "simple"
	AuthTypeBearer = "bearer"
)

// MaxSimpleUsernameLen is the longest simple-authentication username in bytes (u16 length).
const MaxSimpleUsernameLen = 1<<16 - 1

const codecAuth = "auth"

// AuthTypeName returns the name of a well-known authentication type id.
func AuthTypeName(id uint8) (string, bool) {
	switch id {
	case AuthSimple:
		return AuthTypeSimple, true
	case AuthBearer:
		return AuthTypeBearer, true
	}
	return "", false
}

// AuthTypeID returns the well-known id of an authentication type name.
func AuthTypeID(name string) (uint8, bool) {
	switch name {
	case AuthTypeSimple:
		return AuthSimple, true
	case AuthTypeBearer:
		return AuthBearer, true
	}
	return 0, false
}

// AppendAuthBearer appends a bearer authentication value: 0x81 then the token bytes.
func AppendAuthBearer(dst []byte, token []byte) []byte {
	dst = append(dst, AuthBearer|wellKnownMask)
	return append(dst, token...)
}

// AppendAuthSimple appends a simple authentication value: 0x80, u16 username length, username, password. It
// panics with *ArgError if user is longer than 65535 bytes; EncodeAuthSimple returns the error instead.
func AppendAuthSimple(dst []byte, user, password []byte) []byte {
	dst, err := EncodeAuthSimple(dst, user, password)
	if err != nil {
		panic(err)
	}
	return dst
}

// EncodeAuthSimple is AppendAuthSimple returning an *ArgError (dst unchanged) instead of panicking.
func EncodeAuthSimple(dst []byte, user, password []byte) ([]byte, error) {
	if len(user) > MaxSimpleUsernameLen {
		return dst, argErr(codecAuth, "username longer than 65535 bytes")
	}
	dst = append(dst, AuthSimple|wellKnownMask)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(user)))
	dst = append(dst, user...)
	return append(dst, password...), nil
}

// AppendAuthID appends an authentication value with a well-known type id (0..127) and its payload. It panics
// with *ArgError if id > 127.
func AppendAuthID(dst []byte, id uint8, payload []byte) []byte {
	if id > 0x7F {
		panic(argErr(codecAuth, "well-known auth type id above 0x7F"))
	}
	dst = append(dst, id|wellKnownMask)
	return append(dst, payload...)
}

// AppendAuthCustom appends an authentication value with a custom type name, written as [len-1][name] like a
// custom MIME type (see the package comment), then the payload. The name is always written out, even
// "simple" or "bearer" (use AppendAuthID for ids). It panics with *ArgError unless authType is 1..128 US-ASCII
// bytes; EncodeAuthCustom returns the error instead.
func AppendAuthCustom(dst []byte, authType string, payload []byte) []byte {
	dst, err := EncodeAuthCustom(dst, authType, payload)
	if err != nil {
		panic(err)
	}
	return dst
}

// EncodeAuthCustom is AppendAuthCustom returning an *ArgError (dst unchanged) instead of panicking.
func EncodeAuthCustom(dst []byte, authType string, payload []byte) ([]byte, error) {
	if err := checkCustomName(codecAuth, "custom auth type", authType); err != nil {
		return dst, err
	}
	dst = appendCustomName(dst, authType)
	return append(dst, payload...), nil
}

// Auth is a decoded authentication value; CustomType and Payload are views into the input.
type Auth struct {
	Type       uint8  // well-known type id when WellKnown, else 0
	WellKnown  bool   // the A bit
	CustomType []byte // custom type name (1..128 US-ASCII bytes) when !WellKnown
	Payload    []byte // everything after the type
}

// ParseAuth decodes an authentication value. It checks the type field only; Simple and Bearer check the
// payload.
func ParseAuth(b []byte) (Auth, error) {
	if len(b) == 0 {
		return Auth{}, malformed(codecAuth, b, 0, "empty authentication value")
	}
	h := b[0]
	if h&wellKnownMask != 0 {
		return Auth{Type: h &^ wellKnownMask, WellKnown: true, Payload: b[1:len(b):len(b)]}, nil
	}
	n := int(h) + 1
	if len(b)-1 < n {
		return Auth{}, malformed(codecAuth, b, 0, "custom auth type truncated")
	}
	name := b[1 : 1+n : 1+n]
	if !isASCII(name) {
		return Auth{}, malformed(codecAuth, b, 1, "custom auth type is not US-ASCII")
	}
	return Auth{CustomType: name, Payload: b[1+n : len(b) : len(b)]}, nil
}

// TypeString returns the authentication type name: "simple", "bearer", the custom name (copied), or "" for a
// reserved well-known id.
func (a Auth) TypeString() string {
	if a.WellKnown {
		s, _ := AuthTypeName(a.Type)
		return s
	}
	return string(a.CustomType)
}

// Simple returns the username and password of a simple authentication value. It fails with ErrAuthType for
// another type and with a *DecodeError (ErrMalformed) if the username length does not fit.
func (a Auth) Simple() (user, password []byte, err error) {
	if !a.WellKnown || a.Type != AuthSimple {
		return nil, nil, ErrAuthType
	}
	p := a.Payload
	if len(p) < 2 {
		return nil, nil, malformed(codecAuth, p, 0, "simple username length truncated")
	}
	n := int(binary.BigEndian.Uint16(p))
	if len(p)-2 < n {
		return nil, nil, malformed(codecAuth, p, 0, "simple username truncated")
	}
	return p[2 : 2+n : 2+n], p[2+n : len(p) : len(p)], nil
}

// Bearer returns the token of a bearer authentication value, or ErrAuthType for another type.
func (a Auth) Bearer() ([]byte, error) {
	if !a.WellKnown || a.Type != AuthBearer {
		return nil, ErrAuthType
	}
	return a.Payload, nil
}

// AppendAuth re-encodes a decoded value (the id or the custom name as it was, then the payload).
func AppendAuth(dst []byte, a *Auth) []byte {
	if a.WellKnown {
		return AppendAuthID(dst, a.Type, a.Payload)
	}
	return AppendAuthCustom(dst, string(a.CustomType), a.Payload)
}
