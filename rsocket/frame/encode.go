package frame

func appendHeader(dst []byte, id uint32, t Type, fl Flags) []byte {
	fl &= flagMask
	return append(dst, byte(id>>24)&0x7F, byte(id>>16), byte(id>>8), byte(id), byte(t)<<2|byte(fl>>8), byte(fl))
}

func append31(dst []byte, v uint32) []byte {
	return append(dst, byte(v>>24)&0x7F, byte(v>>16), byte(v>>8), byte(v))
}

func append32(dst []byte, v uint32) []byte {
	return append(dst, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func append63(dst []byte, v uint64) []byte {
	return append(dst, byte(v>>56)&0x7F, byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func append24(dst []byte, v int) []byte {
	return append(dst, byte(v>>16), byte(v>>8), byte(v))
}

// PrefixLen returns the number of bytes AppendPrefix writes for type t: the header, plus the initial N for
// REQUEST_STREAM/REQUEST_CHANNEL, plus the 24-bit metadata length when hasMetadata.
func PrefixLen(t Type, hasMetadata bool) int {
	n := HeaderLen
	if t.HasInitialN() {
		n += 4
	}
	if hasMetadata {
		n += metadataLenLen
	}
	return n
}

// AppendPrefix appends everything that precedes the metadata bytes of a REQUEST_RESPONSE, REQUEST_FNF,
// REQUEST_STREAM, REQUEST_CHANNEL or PAYLOAD frame: the header with flags (M is set iff hasMetadata,
// whatever flags says), the initial N for REQUEST_STREAM/REQUEST_CHANNEL (initialN is ignored otherwise),
// and the 24-bit metadataLen when hasMetadata. The frame is complete once the caller appends (or writes)
// metadataLen bytes of metadata followed by the data. The whole frame must not exceed MaxFrameLen.
func AppendPrefix(dst []byte, t Type, id uint32, flags Flags, initialN uint32, metadataLen int, hasMetadata bool) []byte {
	flags &^= FlagMetadata
	if hasMetadata {
		flags |= FlagMetadata
	}
	dst = appendHeader(dst, id, t, flags)
	if t.HasInitialN() {
		dst = append31(dst, initialN)
	}
	if hasMetadata {
		dst = append24(dst, metadataLen)
	}
	return dst
}

// grow extends dst by n bytes (reusing capacity when possible) and returns the extended slice.
func grow(dst []byte, n int) []byte {
	l := len(dst)
	if cap(dst)-l < n {
		return append(dst, make([]byte, n)...)
	}
	return dst[:l+n]
}

// appendPayloadLike encodes header [+ initial N] [+ metadata length + metadata] + data with one capacity
// check and direct stores (the hot path for REQUEST_* and PAYLOAD).
func appendPayloadLike(dst []byte, t Type, id uint32, flags Flags, initialN uint32, metadata, data []byte) []byte {
	flags &= flagMask &^ FlagMetadata
	n := HeaderLen
	hasN := t.HasInitialN()
	if hasN {
		n += 4
	}
	if metadata != nil {
		flags |= FlagMetadata
		n += metadataLenLen + len(metadata)
	}
	l := len(dst)
	dst = grow(dst, n+len(data))
	b := dst[l:]
	_ = b[HeaderLen-1]
	b[0], b[1], b[2], b[3] = byte(id>>24)&0x7F, byte(id>>16), byte(id>>8), byte(id)
	b[4], b[5] = byte(t)<<2|byte(flags>>8), byte(flags)
	b = b[HeaderLen:]
	if hasN {
		_ = b[3]
		b[0], b[1], b[2], b[3] = byte(initialN>>24)&0x7F, byte(initialN>>16), byte(initialN>>8), byte(initialN)
		b = b[4:]
	}
	if metadata != nil {
		m := len(metadata)
		_ = b[2]
		b[0], b[1], b[2] = byte(m>>16), byte(m>>8), byte(m)
		b = b[metadataLenLen+copy(b[metadataLenLen:], metadata):]
	}
	copy(b, data)
	return dst
}

func boolFlag(b bool, f Flags) Flags {
	if b {
		return f
	}
	return 0
}

// Setup holds the fixed fields of a SETUP frame. Keepalive and Lifetime are in milliseconds (31 bits).
// The R flag is set (and the token written) iff Token != nil; the L flag iff Lease.
type Setup struct {
	Major, Minor           uint16
	Keepalive, Lifetime    uint32
	Token                  []byte
	Lease                  bool
	MetadataMIME, DataMIME string
}

// AppendSetup appends a SETUP frame on stream 0.
func AppendSetup(dst []byte, s *Setup, metadata, data []byte) []byte {
	fl := boolFlag(metadata != nil, FlagMetadata) | boolFlag(s.Token != nil, FlagResume) | boolFlag(s.Lease, FlagLease)
	dst = appendHeader(dst, 0, TypeSetup, fl)
	dst = append(dst, byte(s.Major>>8), byte(s.Major), byte(s.Minor>>8), byte(s.Minor))
	dst = append31(dst, s.Keepalive)
	dst = append31(dst, s.Lifetime)
	if s.Token != nil {
		tok := s.Token
		if len(tok) > 0xFFFF {
			tok = tok[:0xFFFF]
		}
		dst = append(dst, byte(len(tok)>>8), byte(len(tok)))
		dst = append(dst, tok...)
	}
	dst = appendMIME(dst, s.MetadataMIME)
	dst = appendMIME(dst, s.DataMIME)
	if metadata != nil {
		dst = append24(dst, len(metadata))
		dst = append(dst, metadata...)
	}
	return append(dst, data...)
}

func appendMIME(dst []byte, m string) []byte {
	if len(m) > 0xFF {
		m = m[:0xFF]
	}
	dst = append(dst, byte(len(m)))
	return append(dst, m...)
}

// AppendLease appends a LEASE frame on stream 0; metadata (if non-nil) is the rest of the frame.
func AppendLease(dst []byte, ttlMillis, requests uint32, metadata []byte) []byte {
	dst = appendHeader(dst, 0, TypeLease, boolFlag(metadata != nil, FlagMetadata))
	dst = append31(dst, ttlMillis)
	dst = append31(dst, requests)
	return append(dst, metadata...)
}

// AppendKeepalive appends a KEEPALIVE frame on stream 0 (R flag iff respond).
func AppendKeepalive(dst []byte, respond bool, position uint64, data []byte) []byte {
	dst = appendHeader(dst, 0, TypeKeepalive, boolFlag(respond, FlagRespond))
	dst = append63(dst, position)
	return append(dst, data...)
}

// AppendRequestResponse appends a REQUEST_RESPONSE frame.
func AppendRequestResponse(dst []byte, id uint32, follows bool, metadata, data []byte) []byte {
	return appendPayloadLike(dst, TypeRequestResponse, id, boolFlag(follows, FlagFollows), 0, metadata, data)
}

// AppendRequestFNF appends a REQUEST_FNF frame.
func AppendRequestFNF(dst []byte, id uint32, follows bool, metadata, data []byte) []byte {
	return appendPayloadLike(dst, TypeRequestFNF, id, boolFlag(follows, FlagFollows), 0, metadata, data)
}

// AppendRequestStream appends a REQUEST_STREAM frame (initialN must be > 0 to be valid).
func AppendRequestStream(dst []byte, id, initialN uint32, follows bool, metadata, data []byte) []byte {
	return appendPayloadLike(dst, TypeRequestStream, id, boolFlag(follows, FlagFollows), initialN, metadata, data)
}

// AppendRequestChannel appends a REQUEST_CHANNEL frame (initialN must be > 0 to be valid).
func AppendRequestChannel(dst []byte, id, initialN uint32, follows, complete bool, metadata, data []byte) []byte {
	fl := boolFlag(follows, FlagFollows) | boolFlag(complete, FlagComplete)
	return appendPayloadLike(dst, TypeRequestChannel, id, fl, initialN, metadata, data)
}

// AppendRequestN appends a REQUEST_N frame (n must be > 0 to be valid).
func AppendRequestN(dst []byte, id, n uint32) []byte {
	dst = appendHeader(dst, id, TypeRequestN, 0)
	return append31(dst, n)
}

// AppendCancel appends a CANCEL frame.
func AppendCancel(dst []byte, id uint32) []byte {
	return appendHeader(dst, id, TypeCancel, 0)
}

// AppendPayload appends a PAYLOAD frame. Only F, C and N of flags are used; M is set iff metadata != nil.
func AppendPayload(dst []byte, id uint32, flags Flags, metadata, data []byte) []byte {
	return appendPayloadLike(dst, TypePayload, id, flags&(FlagFollows|FlagComplete|FlagNext), 0, metadata, data)
}

// AppendError appends an ERROR frame (stream 0 for connection errors).
func AppendError(dst []byte, id uint32, code ErrorCode, message string) []byte {
	dst = appendHeader(dst, id, TypeError, 0)
	dst = append32(dst, uint32(code))
	return append(dst, message...)
}

// AppendMetadataPush appends a METADATA_PUSH frame on stream 0 (M always set; no metadata length field).
func AppendMetadataPush(dst []byte, metadata []byte) []byte {
	dst = appendHeader(dst, 0, TypeMetadataPush, FlagMetadata)
	return append(dst, metadata...)
}

// AppendResume appends a RESUME frame on stream 0.
func AppendResume(dst []byte, major, minor uint16, token []byte, lastReceivedServer, firstAvailableClient uint64) []byte {
	dst = appendHeader(dst, 0, TypeResume, 0)
	dst = append(dst, byte(major>>8), byte(major), byte(minor>>8), byte(minor))
	if len(token) > 0xFFFF {
		token = token[:0xFFFF]
	}
	dst = append(dst, byte(len(token)>>8), byte(len(token)))
	dst = append(dst, token...)
	dst = append63(dst, lastReceivedServer)
	return append63(dst, firstAvailableClient)
}

// AppendResumeOK appends a RESUME_OK frame on stream 0.
func AppendResumeOK(dst []byte, lastReceivedClient uint64) []byte {
	dst = appendHeader(dst, 0, TypeResumeOK, 0)
	return append63(dst, lastReceivedClient)
}

// AppendExt appends an EXT frame: header (I iff ignore, M iff metadata != nil), the 31-bit extended type,
// then (this package's convention, as for PAYLOAD) the 24-bit metadata length and metadata when M is set,
// then data.
func AppendExt(dst []byte, id uint32, ignore bool, extType uint32, metadata, data []byte) []byte {
	dst = appendHeader(dst, id, TypeExt, boolFlag(ignore, FlagIgnore)|boolFlag(metadata != nil, FlagMetadata))
	dst = append31(dst, extType)
	if metadata != nil {
		dst = append24(dst, len(metadata))
		dst = append(dst, metadata...)
	}
	return append(dst, data...)
}
