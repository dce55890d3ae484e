package frame

import (
	"encoding/binary"
	"strconv"
)

// Frame is a flyweight view over one frame's bytes (without length prefix). It is valid as long as the
// underlying bytes are. Accessors never panic on a Frame returned by Parse (without error, or with
// ErrUnknownType): an accessor of another frame type's field returns its zero value (0, nil), so
// Parse(AppendCancel(nil, 1)).ErrorCode() is 0. On byte slices that did not come from Parse they may panic.
type Frame []byte

func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
func be24(b []byte) int    { return int(b[0])<<16 | int(b[1])<<8 | int(b[2]) }
func be31(b []byte) uint32 { return binary.BigEndian.Uint32(b) & 0x7FFFFFFF }
func be63(b []byte) uint64 { return binary.BigEndian.Uint64(b) & 0x7FFFFFFFFFFFFFFF }

// Fixed lengths (header included) of the fields preceding metadata/data, per type.
const (
	setupFixedLen     = HeaderLen + 4 + 4 + 4 // version, keepalive, lifetime
	leaseLen          = HeaderLen + 4 + 4
	keepaliveLen      = HeaderLen + 8
	requestNLen       = HeaderLen + 4
	errorLen          = HeaderLen + 4
	resumeFixedLen    = HeaderLen + 4 + 2 // version, token length
	resumeOKLen       = HeaderLen + 8
	extLen            = HeaderLen + 4
	requestInitialLen = HeaderLen + 4
)

func perr(b []byte, kind uint8, off int, reason string) *ParseError {
	e := &ParseError{Offset: off, Reason: reason, kind: kind}
	if len(b) >= HeaderLen {
		f := Frame(b)
		e.Type, e.Flags, e.StreamID = f.Type(), f.Flags(), f.StreamID()
	}
	return e
}

// Parse validates b as one whole frame (no length prefix) and returns it as a Frame (sharing b).
// See the package documentation for the checks. Errors are *ParseError matching ErrMalformed (and
// ErrStreamID for stream-ID rule violations) or ErrUnknownType; for ErrUnknownType the returned Frame is
// non-nil and its StreamID, Type and Flags may be used (e.g. to honour the I flag).
func Parse(b []byte) (Frame, error) {
	n := len(b)
	if n < HeaderLen {
		return nil, perr(b, kindMalformed, n, "frame shorter than the 6-byte header")
	}
	if n > MaxFrameLen {
		return nil, perr(b, kindMalformed, MaxFrameLen, "frame longer than 16,777,215 bytes")
	}
	f := Frame(b)
	t := f.Type()
	id := f.StreamID()
	if t.IsStreamZeroOnly() {
		if id != 0 {
			return nil, perr(b, kindStream, 0, "frame type requires stream 0")
		}
	} else if t.IsStreamType() {
		if id == 0 {
			return nil, perr(b, kindStream, 0, "frame type requires a stream > 0")
		}
	}
	hasMD := f.Flags()&FlagMetadata != 0
	off := HeaderLen // start of optional metadata length
	switch t {
	case TypeSetup:
		if n < setupFixedLen {
			return nil, perr(b, kindMalformed, n, "SETUP truncated in fixed fields")
		}
		off = setupFixedLen
		if f.Flags()&FlagResume != 0 {
			if n < off+2 {
				return nil, perr(b, kindMalformed, n, "SETUP truncated in resume token length")
			}
			tl := int(be16(b[off:]))
			off += 2
			if n < off+tl {
				return nil, perr(b, kindMalformed, off-2, "SETUP resume token overflows frame")
			}
			off += tl
		}
		for i := 0; i < 2; i++ {
			if n < off+1 {
				return nil, perr(b, kindMalformed, n, "SETUP truncated in MIME length")
			}
			ml := int(b[off])
			off++
			if n < off+ml {
				return nil, perr(b, kindMalformed, off-1, "SETUP MIME type overflows frame")
			}
			off += ml
		}
	case TypeLease:
		if n < leaseLen {
			return nil, perr(b, kindMalformed, n, "LEASE truncated")
		}
		return f, nil
	case TypeKeepalive:
		if n < keepaliveLen {
			return nil, perr(b, kindMalformed, n, "KEEPALIVE truncated")
		}
		return f, nil
	case TypeRequestResponse, TypeRequestFNF, TypePayload:
	case TypeRequestStream, TypeRequestChannel:
		if n < requestInitialLen {
			return nil, perr(b, kindMalformed, n, "initial request N missing")
		}
		if be31(b[HeaderLen:]) == 0 {
			return nil, perr(b, kindMalformed, HeaderLen, "initial request N is 0")
		}
		off = requestInitialLen
	case TypeRequestN:
		if n < requestNLen {
			return nil, perr(b, kindMalformed, n, "REQUEST_N truncated")
		}
		if be31(b[HeaderLen:]) == 0 {
			return nil, perr(b, kindMalformed, HeaderLen, "REQUEST_N is 0")
		}
		return f, nil
	case TypeCancel:
		return f, nil
	case TypeError:
		if n < errorLen {
			return nil, perr(b, kindMalformed, n, "ERROR truncated")
		}
		return f, nil
	case TypeMetadataPush:
		if !hasMD {
			return nil, perr(b, kindMalformed, 4, "METADATA_PUSH without M flag")
		}
		return f, nil
	case TypeResume:
		if n < resumeFixedLen {
			return nil, perr(b, kindMalformed, n, "RESUME truncated")
		}
		tl := int(be16(b[HeaderLen+4:]))
		if n < resumeFixedLen+tl+16 {
			return nil, perr(b, kindMalformed, HeaderLen+4, "RESUME token and positions overflow frame")
		}
		return f, nil
	case TypeResumeOK:
		if n < resumeOKLen {
			return nil, perr(b, kindMalformed, n, "RESUME_OK truncated")
		}
		return f, nil
	case TypeExt:
		if n < extLen {
			return nil, perr(b, kindMalformed, n, "EXT truncated")
		}
		off = extLen
	default:
		return f, perr(b, kindUnknown, 4, "unknown frame type")
	}
	if hasMD {
		if n < off+metadataLenLen {
			return nil, perr(b, kindMalformed, n, "metadata length truncated")
		}
		if off+metadataLenLen+be24(b[off:]) > n {
			return nil, perr(b, kindMalformed, off, "metadata length overflows frame")
		}
	}
	return f, nil
}

// StreamID returns the stream ID (reserved top bit masked).
func (f Frame) StreamID() uint32 { return binary.BigEndian.Uint32(f) & 0x7FFFFFFF }

// Type returns the frame type.
func (f Frame) Type() Type { return Type(f[4] >> 2) }

// Flags returns all 10 flag bits.
func (f Frame) Flags() Flags { return Flags(be16(f[4:])) & flagMask }

// Has reports whether all flags in fl are set.
func (f Frame) Has(fl Flags) bool { return f.Flags()&fl == fl }

// mdOffset returns the offset of the optional 24-bit metadata length for types using it, else -1.
func (f Frame) mdOffset() int {
	switch f.Type() {
	case TypeRequestResponse, TypeRequestFNF, TypePayload:
		return HeaderLen
	case TypeRequestStream, TypeRequestChannel, TypeExt:
		return HeaderLen + 4
	case TypeSetup:
		off := setupFixedLen
		if f.Flags()&FlagResume != 0 {
			off += 2 + int(be16(f[off:]))
		}
		off += 1 + int(f[off])
		off += 1 + int(f[off])
		return off
	}
	return -1
}

// Metadata returns the metadata: nil when the M flag is clear (or the type carries no metadata), non-nil
// (maybe empty) when set. For LEASE and METADATA_PUSH it is the rest of the frame.
func (f Frame) Metadata() []byte {
	if f.Flags()&FlagMetadata == 0 {
		return nil
	}
	switch t := f.Type(); t {
	case TypeLease:
		return f[leaseLen:len(f):len(f)]
	case TypeMetadataPush:
		return f[HeaderLen:len(f):len(f)]
	}
	off := f.mdOffset()
	if off < 0 {
		return nil
	}
	l := be24(f[off:])
	off += metadataLenLen
	return f[off : off+l : off+l]
}

// Data returns the data part (possibly empty): the payload data of SETUP, REQUEST_*, PAYLOAD and EXT, the
// KEEPALIVE data, the ERROR data (same as ErrorMessage); nil for types without data.
func (f Frame) Data() []byte {
	switch f.Type() {
	case TypeKeepalive:
		return f[keepaliveLen:]
	case TypeError:
		return f[errorLen:]
	}
	off := f.mdOffset()
	if off < 0 {
		return nil
	}
	if f.Flags()&FlagMetadata != 0 {
		off += metadataLenLen + be24(f[off:])
	}
	return f[off:]
}

// InitialRequestN returns the initial request N of REQUEST_STREAM and REQUEST_CHANNEL (0 for other types).
func (f Frame) InitialRequestN() uint32 {
	if !f.Type().HasInitialN() {
		return 0
	}
	return be31(f[HeaderLen:])
}

// RequestN returns the N of a REQUEST_N frame (0 for other types).
func (f Frame) RequestN() uint32 {
	if f.Type() != TypeRequestN {
		return 0
	}
	return be31(f[HeaderLen:])
}

// ErrorCode returns the code of an ERROR frame.
func (f Frame) ErrorCode() ErrorCode {
	if f.Type() != TypeError {
		return 0
	}
	return ErrorCode(binary.BigEndian.Uint32(f[HeaderLen:]))
}

// ErrorMessage returns the error data (UTF-8 by convention) of an ERROR frame.
func (f Frame) ErrorMessage() []byte {
	if f.Type() != TypeError {
		return nil
	}
	return f[errorLen:]
}

// SetupVersion returns the protocol version of a SETUP frame.
func (f Frame) SetupVersion() (major, minor uint16) {
	if f.Type() != TypeSetup {
		return 0, 0
	}
	return be16(f[HeaderLen:]), be16(f[HeaderLen+2:])
}

// SetupKeepalive returns the time between KEEPALIVE frames in milliseconds.
func (f Frame) SetupKeepalive() uint32 {
	if f.Type() != TypeSetup {
		return 0
	}
	return be31(f[HeaderLen+4:])
}

// SetupLifetime returns the max lifetime in milliseconds.
func (f Frame) SetupLifetime() uint32 {
	if f.Type() != TypeSetup {
		return 0
	}
	return be31(f[HeaderLen+8:])
}

// SetupToken returns the resume identification token (nil unless the R flag is set).
func (f Frame) SetupToken() []byte {
	if f.Type() != TypeSetup || f.Flags()&FlagResume == 0 {
		return nil
	}
	l := int(be16(f[setupFixedLen:]))
	s := setupFixedLen + 2
	return f[s : s+l : s+l]
}

func (f Frame) setupMIMEOffset() int {
	off := setupFixedLen
	if f.Flags()&FlagResume != 0 {
		off += 2 + int(be16(f[off:]))
	}
	return off
}

// SetupMetadataMIME returns the metadata encoding MIME type.
func (f Frame) SetupMetadataMIME() []byte {
	if f.Type() != TypeSetup {
		return nil
	}
	off := f.setupMIMEOffset()
	l := int(f[off])
	return f[off+1 : off+1+l : off+1+l]
}

// SetupDataMIME returns the data encoding MIME type.
func (f Frame) SetupDataMIME() []byte {
	if f.Type() != TypeSetup {
		return nil
	}
	off := f.setupMIMEOffset()
	off += 1 + int(f[off])
	l := int(f[off])
	return f[off+1 : off+1+l : off+1+l]
}

// LeaseTTL returns the LEASE time-to-live in milliseconds.
func (f Frame) LeaseTTL() uint32 {
	if f.Type() != TypeLease {
		return 0
	}
	return be31(f[HeaderLen:])
}

// LeaseRequests returns the LEASE number of requests.
func (f Frame) LeaseRequests() uint32 {
	if f.Type() != TypeLease {
		return 0
	}
	return be31(f[HeaderLen+4:])
}

// KeepalivePosition returns the KEEPALIVE last received position (63 bits).
func (f Frame) KeepalivePosition() uint64 {
	if f.Type() != TypeKeepalive {
		return 0
	}
	return be63(f[HeaderLen:])
}

// ResumeVersion returns the protocol version of a RESUME frame.
func (f Frame) ResumeVersion() (major, minor uint16) {
	if f.Type() != TypeResume {
		return 0, 0
	}
	return be16(f[HeaderLen:]), be16(f[HeaderLen+2:])
}

// ResumeToken returns the resume identification token of a RESUME frame.
func (f Frame) ResumeToken() []byte {
	if f.Type() != TypeResume {
		return nil
	}
	l := int(be16(f[HeaderLen+4:]))
	return f[resumeFixedLen : resumeFixedLen+l : resumeFixedLen+l]
}

// ResumeLastReceivedServerPosition returns the RESUME last received server position.
func (f Frame) ResumeLastReceivedServerPosition() uint64 {
	if f.Type() != TypeResume {
		return 0
	}
	return be63(f[resumeFixedLen+int(be16(f[HeaderLen+4:])):])
}

// ResumeFirstAvailableClientPosition returns the RESUME first available client position.
func (f Frame) ResumeFirstAvailableClientPosition() uint64 {
	if f.Type() != TypeResume {
		return 0
	}
	return be63(f[resumeFixedLen+int(be16(f[HeaderLen+4:]))+8:])
}

// ResumeOKPosition returns the RESUME_OK last received client position.
func (f Frame) ResumeOKPosition() uint64 {
	if f.Type() != TypeResumeOK {
		return 0
	}
	return be63(f[HeaderLen:])
}

// ExtendedType returns the extended type of an EXT frame.
func (f Frame) ExtendedType() uint32 {
	if f.Type() != TypeExt {
		return 0
	}
	return be31(f[HeaderLen:])
}

// flagsString prints flags with the type-specific names (R/L for SETUP, R for KEEPALIVE).
func flagsString(t Type, fl Flags) string {
	switch t {
	case TypeSetup, TypeKeepalive:
		if fl&0xFF == 0 {
			return fl.String()
		}
		var parts []byte
		add := func(s string) {
			if len(parts) > 0 {
				parts = append(parts, '|')
			}
			parts = append(parts, s...)
		}
		if fl&FlagIgnore != 0 {
			add("I")
		}
		if fl&FlagMetadata != 0 {
			add("M")
		}
		if fl&0x80 != 0 {
			add("R")
		}
		rest := fl & 0x7F
		if t == TypeSetup && fl&FlagLease != 0 {
			add("L")
			rest &^= FlagLease
		}
		if rest != 0 {
			add("0x" + hex2(uint64(rest)))
		}
		return string(parts)
	}
	return fl.String()
}

// String describes the frame for debugging, e.g. "REQUEST_STREAM stream=3 flags=M|F n=5 md=12B data=3B".
// It does not panic on invalid frames (it reports them as such).
func (f Frame) String() string {
	if len(f) < HeaderLen {
		return "INVALID(" + strconv.Itoa(len(f)) + "B)"
	}
	t := f.Type()
	s := t.String() + " stream=" + strconv.FormatUint(uint64(f.StreamID()), 10) + " flags=" + flagsString(t, f.Flags())
	if _, err := Parse(f); err != nil {
		return s + " len=" + strconv.Itoa(len(f)) + " invalid: " + err.(*ParseError).Reason
	}
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	switch t {
	case TypeSetup:
		ma, mi := f.SetupVersion()
		s += " version=" + u(uint64(ma)) + "." + u(uint64(mi)) + " keepalive=" + u(uint64(f.SetupKeepalive())) +
			"ms lifetime=" + u(uint64(f.SetupLifetime())) + "ms mdmime=" + strconv.Quote(string(f.SetupMetadataMIME())) +
			" datamime=" + strconv.Quote(string(f.SetupDataMIME()))
		if tok := f.SetupToken(); tok != nil {
			s += " token=" + strconv.Itoa(len(tok)) + "B"
		}
	case TypeLease:
		s += " ttl=" + u(uint64(f.LeaseTTL())) + "ms requests=" + u(uint64(f.LeaseRequests()))
	case TypeKeepalive:
		s += " position=" + u(f.KeepalivePosition())
	case TypeRequestStream, TypeRequestChannel:
		s += " n=" + u(uint64(f.InitialRequestN()))
	case TypeRequestN:
		s += " n=" + u(uint64(f.RequestN()))
	case TypeError:
		msg := f.ErrorMessage()
		if len(msg) > 64 {
			msg = msg[:64]
		}
		s += " code=" + f.ErrorCode().String() + " msg=" + strconv.Quote(string(msg))
	case TypeResume:
		ma, mi := f.ResumeVersion()
		s += " version=" + u(uint64(ma)) + "." + u(uint64(mi)) + " token=" + strconv.Itoa(len(f.ResumeToken())) +
			"B server=" + u(f.ResumeLastReceivedServerPosition()) + " client=" + u(f.ResumeFirstAvailableClientPosition())
	case TypeResumeOK:
		s += " position=" + u(f.ResumeOKPosition())
	case TypeExt:
		s += " ext=" + u(uint64(f.ExtendedType()))
	}
	if md := f.Metadata(); md != nil {
		s += " md=" + strconv.Itoa(len(md)) + "B"
	}
	switch t {
	case TypeSetup, TypeKeepalive, TypeRequestResponse, TypeRequestFNF, TypeRequestStream, TypeRequestChannel,
		TypePayload, TypeExt:
		s += " data=" + strconv.Itoa(len(f.Data())) + "B"
	}
	return s
}
