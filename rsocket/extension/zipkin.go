package extension

import "encoding/binary"

// Zipkin tracing metadata (Tracing-Zipkin.md):
//
//	[flags u8] then, only when ZipkinFlagIDsSet: [trace id high u64 if ZipkinFlagTraceID128] [trace id u64]
//	[span id u64] [parent span id u64 if ZipkinFlagParent]
//
// The bit values follow rsocket-java's TracingMetadataCodec (see the package comment).

// Zipkin flag bits.
const (
	ZipkinFlagIDsSet     uint8 = 0x80 // trace and span ids follow the flags byte
	ZipkinFlagDebug      uint8 = 0x40 // debug: report and override sampling
	ZipkinFlagSampled    uint8 = 0x20 // sampling decision: report
	ZipkinFlagNotSampled uint8 = 0x10 // sampling decision: do not report
	ZipkinFlagTraceID128 uint8 = 0x08 // the trace id is 128 bits (TraceIDHigh is on the wire)
	ZipkinFlagParent     uint8 = 0x04 // a parent span id follows the span id
)

const codecZipkin = "zipkin"

// Zipkin is a tracing value. Flags says which fields are on the wire: the ids only with ZipkinFlagIDsSet,
// TraceIDHigh only with ZipkinFlagTraceID128, ParentID only with ZipkinFlagParent. Fields the flags leave out
// are not written and decode as 0.
type Zipkin struct {
	Flags       uint8
	TraceIDHigh uint64
	TraceID     uint64 // the low 64 bits of a 128-bit trace id
	SpanID      uint64
	ParentID    uint64
}

// Len returns the encoded size of z.
func (z *Zipkin) Len() int {
	if z.Flags&ZipkinFlagIDsSet == 0 {
		return 1
	}
	n := 1 + 8 + 8
	if z.Flags&ZipkinFlagTraceID128 != 0 {
		n += 8
	}
	if z.Flags&ZipkinFlagParent != 0 {
		n += 8
	}
	return n
}

// Sampled reports the sampling decision: decided is false when neither sampled, not-sampled nor debug is set.
// Debug implies sampled.
func (z *Zipkin) Sampled() (sampled, decided bool) {
	switch {
	case z.Flags&(ZipkinFlagDebug|ZipkinFlagSampled) != 0:
		return true, true
	case z.Flags&ZipkinFlagNotSampled != 0:
		return false, true
	}
	return false, false
}

// AppendZipkin appends z: the flags byte as given, then the fields the flags announce.
func AppendZipkin(dst []byte, z *Zipkin) []byte {
	dst = append(dst, z.Flags)
	if z.Flags&ZipkinFlagIDsSet == 0 {
		return dst
	}
	if z.Flags&ZipkinFlagTraceID128 != 0 {
		dst = binary.BigEndian.AppendUint64(dst, z.TraceIDHigh)
	}
	dst = binary.BigEndian.AppendUint64(dst, z.TraceID)
	dst = binary.BigEndian.AppendUint64(dst, z.SpanID)
	if z.Flags&ZipkinFlagParent != 0 {
		dst = binary.BigEndian.AppendUint64(dst, z.ParentID)
	}
	return dst
}

// ParseZipkin decodes a tracing value. The length must be exactly what the flags announce.
func ParseZipkin(b []byte) (Zipkin, error) {
	if len(b) == 0 {
		return Zipkin{}, malformed(codecZipkin, b, 0, "empty tracing value")
	}
	z := Zipkin{Flags: b[0]}
	want := z.Len()
	if len(b) < want {
		return Zipkin{}, malformed(codecZipkin, b, len(b), "ids truncated")
	}
	if len(b) > want {
		return Zipkin{}, malformed(codecZipkin, b, want, "trailing bytes")
	}
	if z.Flags&ZipkinFlagIDsSet == 0 {
		return z, nil
	}
	p := 1
	if z.Flags&ZipkinFlagTraceID128 != 0 {
		z.TraceIDHigh = binary.BigEndian.Uint64(b[p:])
		p += 8
	}
	z.TraceID = binary.BigEndian.Uint64(b[p:])
	z.SpanID = binary.BigEndian.Uint64(b[p+8:])
	p += 16
	if z.Flags&ZipkinFlagParent != 0 {
		z.ParentID = binary.BigEndian.Uint64(b[p:])
	}
	return z, nil
}

// W3C Trace Context traceparent: "00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>", lower-case hex.
const traceparentLen = 55

// ZipkinFromTraceparent converts a W3C traceparent header value to a Zipkin value: a 128-bit trace id, the
// traceparent's parent-id as SpanID (the caller's span, which the backend joins or parents its own span on, as
// with B3 propagation), no parent id, and sampled or not sampled from trace-flags bit 0. It follows the
// W3C parsing rules: version "ff" is invalid; version 00 must be exactly 55 bytes; a later version may carry
// more fields after a '-'; hex must be lower case; all-zero trace or parent ids are invalid. It does not
// allocate.
func ZipkinFromTraceparent(s []byte) (Zipkin, bool) {
	if len(s) < traceparentLen {
		return Zipkin{}, false
	}
	ver, ok := hexU8(s[0], s[1])
	if !ok || ver == 0xff || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return Zipkin{}, false
	}
	if ver == 0 && len(s) != traceparentLen {
		return Zipkin{}, false
	}
	if len(s) > traceparentLen && s[traceparentLen] != '-' {
		return Zipkin{}, false
	}
	hi, ok1 := hexU64(s[3:19])
	lo, ok2 := hexU64(s[19:35])
	span, ok3 := hexU64(s[36:52])
	flags, ok4 := hexU8(s[53], s[54])
	if !ok1 || !ok2 || !ok3 || !ok4 || hi|lo == 0 || span == 0 {
		return Zipkin{}, false
	}
	z := Zipkin{Flags: ZipkinFlagIDsSet | ZipkinFlagTraceID128, TraceIDHigh: hi, TraceID: lo, SpanID: span}
	if flags&0x01 != 0 {
		z.Flags |= ZipkinFlagSampled
	} else {
		z.Flags |= ZipkinFlagNotSampled
	}
	return z, true
}

// AppendTraceparent appends z as a version 00 W3C traceparent value: the trace id (high bits 0 for a 64-bit
// id), SpanID as parent-id, and trace-flags 01 when sampled or debug, else 00. ok is false (dst unchanged) when
// z has no ids or its trace or span id is zero, which traceparent cannot carry.
func AppendTraceparent(dst []byte, z *Zipkin) (out []byte, ok bool) {
	if z.Flags&ZipkinFlagIDsSet == 0 {
		return dst, false
	}
	var hi uint64
	if z.Flags&ZipkinFlagTraceID128 != 0 {
		hi = z.TraceIDHigh
	}
	if hi|z.TraceID == 0 || z.SpanID == 0 {
		return dst, false
	}
	dst = append(dst, "00-"...)
	dst = appendHexU64(dst, hi)
	dst = appendHexU64(dst, z.TraceID)
	dst = append(dst, '-')
	dst = appendHexU64(dst, z.SpanID)
	if sampled, _ := z.Sampled(); sampled {
		return append(dst, "-01"...), true
	}
	return append(dst, "-00"...), true
}

const hexDigits = "0123456789abcdef"

func appendHexU64(dst []byte, v uint64) []byte {
	for shift := 60; shift >= 0; shift -= 4 {
		dst = append(dst, hexDigits[(v>>uint(shift))&0xF])
	}
	return dst
}

// hexNibble decodes one lower-case hex digit.
func hexNibble(c byte) (uint8, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

func hexU8(a, b byte) (uint8, bool) {
	x, ok1 := hexNibble(a)
	y, ok2 := hexNibble(b)
	return x<<4 | y, ok1 && ok2
}

// hexU64 decodes exactly 16 lower-case hex digits.
func hexU64(s []byte) (uint64, bool) {
	var v uint64
	for _, c := range s[:16] {
		n, ok := hexNibble(c)
		if !ok {
			return 0, false
		}
		v = v<<4 | uint64(n)
	}
	return v, true
}
