// Package frame implements the RSocket 1.0 wire format: frame types, flags, error codes, a zero-copy
// validating parser (Frame is a view over the frame's bytes) and append-style, allocation-free encoders.
// It does no I/O; the transport adds/removes the 24-bit frame length prefix used on TCP.
//
// # Layout
//
// Every frame starts with a 6-byte header: a 32-bit stream ID whose top bit is reserved (masked on read,
// written as 0), then 16 bits holding the 6-bit frame type and 10 bits of flags (I, M and 8 type-specific
// bits). All integers are big endian. Fields described by the spec as 31- or 63-bit values carry a reserved
// top bit which is ignored (masked) on read and written as 0.
//
// Metadata is carried in two ways:
//   - SETUP, REQUEST_RESPONSE, REQUEST_FNF, REQUEST_STREAM, REQUEST_CHANNEL, PAYLOAD (and EXT in this
//     package): when M is set a 24-bit metadata length follows the fixed fields, then the metadata, then the
//     data (the rest of the frame).
//   - LEASE and METADATA_PUSH: no length field; when M is set the rest of the frame is metadata.
//     METADATA_PUSH requires M.
//
// # Validation
//
// Parse checks everything the accessors rely on, so accessors never panic on a Frame returned by Parse
// without error. It also enforces the stream-ID rules: SETUP, LEASE, KEEPALIVE, METADATA_PUSH, RESUME and
// RESUME_OK must use stream 0; REQUEST_*, REQUEST_N, CANCEL and PAYLOAD must use a stream > 0; ERROR and EXT
// may use any stream. Such violations match errors.Is(err, ErrMalformed) and errors.Is(err, ErrStreamID);
// the spec's "Handling the Unexpected" section says such frames (e.g. METADATA_PUSH on stream > 0,
// PAYLOAD/CANCEL on stream 0) MUST be ignored, so a connection may choose to drop them rather than fail.
// REQUEST_N and the initial N of REQUEST_STREAM/REQUEST_CHANNEL must be > 0. Frames longer than
// MaxFrameLen are rejected. Unknown frame types yield a *ParseError matching ErrUnknownType; the returned
// Frame is still usable for StreamID/Type/Flags so the caller can honour the I (ignore) flag
// (ParseError.Ignorable reports it too). Semantic checks (SETUP keepalive > 0, versions, error code ranges
// per stream) are left to the connection. Trailing bytes after the fixed fields of frames that carry no
// data (REQUEST_N, CANCEL, RESUME, RESUME_OK, LEASE without M) are tolerated and ignored, as are flags that
// a frame type does not define.
//
// # Encoding
//
// Append* functions append one whole frame (without length prefix) to dst and return the extended slice;
// they never allocate when dst has enough capacity. The M flag is set iff the metadata argument is non-nil
// (an empty non-nil slice encodes a zero-length metadata). Encoders do not check sizes: callers must keep
// the whole frame <= MaxFrameLen (metadata length is a 24-bit field), MIME types <= 255 bytes and resume
// tokens <= 65535 bytes (longer values are truncated).
//
// For zero-copy gather writes, AppendPrefix writes everything that precedes the metadata bytes of a
// REQUEST_RESPONSE/FNF/STREAM/CHANNEL or PAYLOAD frame; the caller then writes metadata and data as
// separate slices (PrefixLen gives the prefix size).
//
// # Fragmentation
//
// Fragmenter splits one logical request or payload into frames of at most MTU bytes following the spec's
// "Fragmentation And Reassembly" rules: the first fragment has the original type (with its initial N)
// and F set; continuation fragments are PAYLOAD frames; every fragment except the last has F; all metadata
// is sent before any data (a fragment may carry the end of the metadata and the start of the data);
// continuation PAYLOAD fragments carry N (they belong to one onNext item), and C is carried only by the
// last fragment when the original frame had C (PAYLOAD or REQUEST_CHANNEL). See Fragmenter.
package frame

import (
	"errors"
	"strconv"
)

// Type is the 6-bit frame type.
type Type uint8

// Frame types (RSocket 1.0 "Frame Types").
const (
	TypeReserved        Type = 0x00
	TypeSetup           Type = 0x01
	TypeLease           Type = 0x02
	TypeKeepalive       Type = 0x03
	TypeRequestResponse Type = 0x04
	TypeRequestFNF      Type = 0x05
	TypeRequestStream   Type = 0x06
	TypeRequestChannel  Type = 0x07
	TypeRequestN        Type = 0x08
	TypeCancel          Type = 0x09
	TypePayload         Type = 0x0A
	TypeError           Type = 0x0B
	TypeMetadataPush    Type = 0x0C
	TypeResume          Type = 0x0D
	TypeResumeOK        Type = 0x0E
	TypeExt             Type = 0x3F
)

var typeNames = [...]string{
	TypeReserved:        "RESERVED",
	TypeSetup:           "SETUP",
	TypeLease:           "LEASE",
	TypeKeepalive:       "KEEPALIVE",
	TypeRequestResponse: "REQUEST_RESPONSE",
	TypeRequestFNF:      "REQUEST_FNF",
	TypeRequestStream:   "REQUEST_STREAM",
	TypeRequestChannel:  "REQUEST_CHANNEL",
	TypeRequestN:        "REQUEST_N",
	TypeCancel:          "CANCEL",
	TypePayload:         "PAYLOAD",
	TypeError:           "ERROR",
	TypeMetadataPush:    "METADATA_PUSH",
	TypeResume:          "RESUME",
	TypeResumeOK:        "RESUME_OK",
}

// String returns the spec name ("REQUEST_STREAM"); unknown values print as "UNKNOWN_0x15".
func (t Type) String() string {
	if t == TypeExt {
		return "EXT"
	}
	if t >= TypeSetup && int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "UNKNOWN_0x" + hex2(uint64(t))
}

// Known reports whether t is a frame type defined by RSocket 1.0 (RESERVED is not).
func (t Type) Known() bool {
	return (t >= TypeSetup && t <= TypeResumeOK) || t == TypeExt
}

// IsStreamZeroOnly reports whether frames of this type must use stream 0
// (SETUP, LEASE, KEEPALIVE, METADATA_PUSH, RESUME, RESUME_OK).
func (t Type) IsStreamZeroOnly() bool {
	switch t {
	case TypeSetup, TypeLease, TypeKeepalive, TypeMetadataPush, TypeResume, TypeResumeOK:
		return true
	}
	return false
}

// IsStreamType reports whether frames of this type must use a stream > 0
// (REQUEST_*, REQUEST_N, CANCEL, PAYLOAD).
func (t Type) IsStreamType() bool {
	switch t {
	case TypeRequestResponse, TypeRequestFNF, TypeRequestStream, TypeRequestChannel,
		TypeRequestN, TypeCancel, TypePayload:
		return true
	}
	return false
}

// IsRequest reports whether t starts a stream (REQUEST_RESPONSE, REQUEST_FNF, REQUEST_STREAM, REQUEST_CHANNEL).
func (t Type) IsRequest() bool {
	return t >= TypeRequestResponse && t <= TypeRequestChannel
}

// HasInitialN reports whether t carries an initial request N (REQUEST_STREAM, REQUEST_CHANNEL).
func (t Type) HasInitialN() bool {
	return t == TypeRequestStream || t == TypeRequestChannel
}

// CanFragment reports whether frames of this type may be fragmented with the F flag
// (REQUEST_RESPONSE, REQUEST_FNF, REQUEST_STREAM, REQUEST_CHANNEL, PAYLOAD).
func (t Type) CanFragment() bool {
	return t.IsRequest() || t == TypePayload
}

// Flags holds the 10 flag bits of the header (I, M and 8 type-specific bits).
type Flags uint16

// Frame flags. Several type-specific flags share a bit.
const (
	FlagIgnore   Flags = 0x200 // I: ignore frame if not understood
	FlagMetadata Flags = 0x100 // M: metadata present
	FlagFollows  Flags = 0x80  // F: more fragments follow (REQUEST_*, PAYLOAD)
	FlagComplete Flags = 0x40  // C: stream complete (REQUEST_CHANNEL, PAYLOAD)
	FlagNext     Flags = 0x20  // N: payload carries an item (PAYLOAD)

	FlagResume  Flags = 0x80 // R on SETUP: resume enabled, token present
	FlagLease   Flags = 0x40 // L on SETUP: will honour LEASE
	FlagRespond Flags = 0x80 // R on KEEPALIVE: respond with a KEEPALIVE

	flagMask Flags = 0x3FF
)

// String prints the set flags with their generic names in header order, e.g. "M|F|C"; "0" when none.
// Bits without a generic name print as a hex value ("I|0x1F"). Frame.String uses type-specific names.
func (f Flags) String() string {
	if f == 0 {
		return "0"
	}
	var buf [32]byte
	b := buf[:0]
	add := func(s string) {
		if len(b) > 0 {
			b = append(b, '|')
		}
		b = append(b, s...)
	}
	if f&FlagIgnore != 0 {
		add("I")
	}
	if f&FlagMetadata != 0 {
		add("M")
	}
	if f&FlagFollows != 0 {
		add("F")
	}
	if f&FlagComplete != 0 {
		add("C")
	}
	if f&FlagNext != 0 {
		add("N")
	}
	if rest := f &^ (FlagIgnore | FlagMetadata | FlagFollows | FlagComplete | FlagNext); rest != 0 {
		add("0x" + hex2(uint64(rest)))
	}
	return string(b)
}

// ErrorCode is the 32-bit code of an ERROR frame.
type ErrorCode uint32

// Error codes (RSocket 1.0 "Error Codes").
const (
	CodeReserved         ErrorCode = 0x00000000
	CodeInvalidSetup     ErrorCode = 0x00000001
	CodeUnsupportedSetup ErrorCode = 0x00000002
	CodeRejectedSetup    ErrorCode = 0x00000003
	CodeRejectedResume   ErrorCode = 0x00000004
	CodeConnectionError  ErrorCode = 0x00000101
	CodeConnectionClose  ErrorCode = 0x00000102
	CodeApplicationError ErrorCode = 0x00000201
	CodeRejected         ErrorCode = 0x00000202
	CodeCanceled         ErrorCode = 0x00000203
	CodeInvalid          ErrorCode = 0x00000204
	CodeReservedExt      ErrorCode = 0xFFFFFFFF

	// Application-defined codes occupy MinApplicationCode..MaxApplicationCode.
	MinApplicationCode ErrorCode = 0x00000301
	MaxApplicationCode ErrorCode = 0xFFFFFFFE
)

// String returns the spec name ("APPLICATION_ERROR"); application-range codes print as
// "APPLICATION_CODE_0x301", anything else as "UNKNOWN_0x...".
func (c ErrorCode) String() string {
	switch c {
	case CodeInvalidSetup:
		return "INVALID_SETUP"
	case CodeUnsupportedSetup:
		return "UNSUPPORTED_SETUP"
	case CodeRejectedSetup:
		return "REJECTED_SETUP"
	case CodeRejectedResume:
		return "REJECTED_RESUME"
	case CodeConnectionError:
		return "CONNECTION_ERROR"
	case CodeConnectionClose:
		return "CONNECTION_CLOSE"
	case CodeApplicationError:
		return "APPLICATION_ERROR"
	case CodeRejected:
		return "REJECTED"
	case CodeCanceled:
		return "CANCELED"
	case CodeInvalid:
		return "INVALID"
	}
	if c.IsApplication() {
		return "APPLICATION_CODE_0x" + hex(uint64(c))
	}
	return "UNKNOWN_0x" + hex(uint64(c))
}

// IsConnectionLevel reports whether the code must be sent on stream 0 (INVALID_SETUP, UNSUPPORTED_SETUP,
// REJECTED_SETUP, REJECTED_RESUME, CONNECTION_ERROR, CONNECTION_CLOSE). Codes in the reserved range
// 0x005-0x1FF are treated as connection level too.
func (c ErrorCode) IsConnectionLevel() bool {
	return c >= CodeInvalidSetup && c < CodeApplicationError && c < 0x200
}

// IsSetupError reports whether the code rejects a SETUP/RESUME (INVALID_SETUP, UNSUPPORTED_SETUP,
// REJECTED_SETUP, REJECTED_RESUME).
func (c ErrorCode) IsSetupError() bool {
	return c >= CodeInvalidSetup && c <= CodeRejectedResume
}

// IsApplication reports whether the code is in the application-defined range 0x301..0xFFFFFFFE.
func (c ErrorCode) IsApplication() bool {
	return c >= MinApplicationCode && c <= MaxApplicationCode
}

// Sizes and limits.
const (
	HeaderLen      = 6
	MaxFrameLen    = 1<<24 - 1 // largest frame (24-bit length prefix on TCP)
	MaxMetadataLen = 1<<24 - 1
	MaxStreamID    = 1<<31 - 1
	MaxRequestN    = 1<<31 - 1
	MaxPosition    = 1<<63 - 1
	MajorVersion   = 1
	MinorVersion   = 0
	metadataLenLen = 3
)

// Sentinel errors matched by *ParseError via errors.Is.
var (
	// ErrMalformed: the frame violates the wire format (too short, bad lengths, wrong stream, N == 0, ...).
	ErrMalformed = errors.New("rsocket/frame: malformed frame")
	// ErrUnknownType: the frame type is not defined by RSocket 1.0 (check the I flag).
	ErrUnknownType = errors.New("rsocket/frame: unknown frame type")
	// ErrStreamID: a stream-0-only type on stream > 0 or a stream type on stream 0. Also matches ErrMalformed.
	ErrStreamID = errors.New("rsocket/frame: frame type not allowed on this stream")
)

// ParseError describes why Parse rejected a frame.
type ParseError struct {
	Type     Type
	Flags    Flags
	StreamID uint32
	Offset   int    // byte offset of the offending field (or the frame length for truncation)
	Reason   string // human-readable reason
	kind     uint8  // kindMalformed, kindUnknown, kindStream
}

const (
	kindMalformed = iota
	kindUnknown
	kindStream
)

func (e *ParseError) Error() string {
	return "rsocket/frame: " + e.Type.String() + " stream=" + strconv.FormatUint(uint64(e.StreamID), 10) +
		" offset=" + strconv.Itoa(e.Offset) + ": " + e.Reason
}

// Is reports whether target is ErrMalformed (malformed and wrong-stream frames), ErrStreamID (wrong stream)
// or ErrUnknownType (unknown type).
func (e *ParseError) Is(target error) bool {
	switch target {
	case ErrMalformed:
		return e.kind == kindMalformed || e.kind == kindStream
	case ErrStreamID:
		return e.kind == kindStream
	case ErrUnknownType:
		return e.kind == kindUnknown
	}
	return false
}

// Ignorable reports whether the frame had an unknown type and the I flag set, so it may be dropped.
func (e *ParseError) Ignorable() bool { return e.kind == kindUnknown && e.Flags&FlagIgnore != 0 }

const hexDigits = "0123456789ABCDEF"

// hex formats v in upper-case hex without padding.
func hex(v uint64) string {
	return toUpper(strconv.FormatUint(v, 16))
}

// hex2 formats v in upper-case hex, at least two digits.
func hex2(v uint64) string {
	if v < 0x100 {
		return string([]byte{hexDigits[v>>4], hexDigits[v&0xF]})
	}
	return hex(v)
}

func toUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'f' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// CountsForResume reports whether frames of type t count toward the implied position of resumption
// ("Resuming Operation": REQUEST_*, REQUEST_N, CANCEL, ERROR and PAYLOAD frames; the position is the
// sum of their lengths after fragmentation, without the transport's length prefix). A connection-level
// ERROR (stream 0) ends the session, so whether it counts never matters.
func CountsForResume(t Type) bool {
	switch t {
	case TypeRequestResponse, TypeRequestFNF, TypeRequestStream, TypeRequestChannel, TypeRequestN,
		TypeCancel, TypeError, TypePayload:
		return true
	}
	return false
}
