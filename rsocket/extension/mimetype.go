package extension

// Per-stream data MIME types (PerStreamDataMimeTypesDefinition.md):
//
//	mime-type.v0:         exactly one  [M:1|id or len-1:7][name if M=0]
//	accept-mime-types.v0: one or more  [M:1|id or len-1:7][name if M=0]
//
// Custom names use length-1 like composite metadata (rsocket-java MimeTypeMetadataCodec does).

const (
	codecMimeType        = "mime-type"
	codecAcceptMimeTypes = "accept-mime-types"
)

// AppendMimeType appends a mime-type.v0 value: the well-known id when the table has mime, else [len-1][name].
// It panics with *ArgError unless a custom mime is 1..128 US-ASCII bytes; EncodeMimeType returns the error.
func AppendMimeType(dst []byte, mime string) []byte {
	dst, err := EncodeMimeType(dst, mime)
	if err != nil {
		panic(err)
	}
	return dst
}

// EncodeMimeType is AppendMimeType returning an *ArgError (dst unchanged) instead of panicking.
func EncodeMimeType(dst []byte, mime string) ([]byte, error) {
	out, err := appendMimeField(dst, codecMimeType, mime)
	if err != nil {
		return dst, err
	}
	return out, nil
}

// AppendMimeTypeID appends a mime-type.v0 value with a well-known id; it panics with *ArgError if id > 127.
func AppendMimeTypeID(dst []byte, id uint8) []byte {
	if id > MaxWellKnownMimeID {
		panic(argErr(codecMimeType, "well-known MIME id above 0x7F"))
	}
	return append(dst, id|wellKnownMask)
}

// AppendMimeRef appends one MIME field exactly as m holds it (id or custom name). It panics with *ArgError if
// m.ID > 127 or a custom name is not 1..128 US-ASCII bytes.
func AppendMimeRef(dst []byte, m MimeRef) []byte {
	if m.WellKnown {
		return AppendMimeTypeID(dst, m.ID)
	}
	if err := checkCustomName(codecMimeType, "custom MIME type", m.Name); err != nil {
		panic(err)
	}
	dst = append(dst, byte(len(m.Name)-1))
	return append(dst, m.Name...)
}

// ParseMimeTypeRef decodes a mime-type.v0 value without allocating. Anything after the one entry is an error.
func ParseMimeTypeRef(b []byte) (MimeRef, error) {
	m, off, err := decodeMimeRef(codecMimeType, b, 0)
	if err != nil {
		return MimeRef{}, err
	}
	if off != len(b) {
		return MimeRef{}, malformed(codecMimeType, b, off, "trailing bytes after the MIME type")
	}
	return m, nil
}

// ParseMimeType decodes a mime-type.v0 value to its MIME type. A well-known id returns the table's string (no
// allocation); a reserved id fails with ErrUnknownMime; a custom name is copied.
func ParseMimeType(b []byte) (string, error) {
	m, err := ParseMimeTypeRef(b)
	if err != nil {
		return "", err
	}
	if m.WellKnown && mimeNames[m.ID] == "" {
		return "", decodeErr(ErrUnknownMime, codecMimeType, b, 0, "reserved well-known MIME id")
	}
	return m.String(), nil
}

// AppendAcceptMimeTypes appends an accept-mime-types.v0 value. It panics as AppendMimeType does.
func AppendAcceptMimeTypes(dst []byte, mimes ...string) []byte {
	dst, err := EncodeAcceptMimeTypes(dst, mimes...)
	if err != nil {
		panic(err)
	}
	return dst
}

// EncodeAcceptMimeTypes is AppendAcceptMimeTypes returning an *ArgError (dst unchanged) instead of panicking.
// An empty list is an error: the value would be empty.
func EncodeAcceptMimeTypes(dst []byte, mimes ...string) ([]byte, error) {
	if len(mimes) == 0 {
		return dst, argErr(codecAcceptMimeTypes, "no MIME types")
	}
	out := dst
	for _, m := range mimes {
		var err *ArgError
		out, err = appendMimeField(out, codecAcceptMimeTypes, m)
		if err != nil {
			return dst, err
		}
	}
	return out, nil
}

// MimeIter walks the entries of an accept-mime-types.v0 value without allocating; it stops at the first
// malformed entry with a *DecodeError from Err. Reserved well-known ids are returned, not rejected.
type MimeIter struct {
	b   []byte
	off int
	m   MimeRef
	err error
}

// NewMimeIter returns an iterator over an accept-mime-types.v0 value.
func NewMimeIter(b []byte) MimeIter { return MimeIter{b: b} }

// Next advances to the next MIME type and reports whether there is one.
func (it *MimeIter) Next() bool {
	if it.err != nil || it.off >= len(it.b) {
		return false
	}
	m, off, err := decodeMimeRef(codecAcceptMimeTypes, it.b, it.off)
	if err != nil {
		it.err = err
		return false
	}
	it.m, it.off = m, off
	return true
}

// Mime returns the entry Next moved to.
func (it *MimeIter) Mime() MimeRef { return it.m }

// Err returns the decoding error that stopped the iteration, or nil.
func (it *MimeIter) Err() error { return it.err }

// ParseAcceptMimeTypes decodes an accept-mime-types.v0 value to MIME type strings (allocates the slice and
// custom names). An empty value, a malformed entry, or a reserved well-known id is an error.
func ParseAcceptMimeTypes(b []byte) ([]string, error) {
	if len(b) == 0 {
		return nil, malformed(codecAcceptMimeTypes, b, 0, "empty value")
	}
	var out []string
	it := NewMimeIter(b)
	for it.Next() {
		m := it.m
		if m.WellKnown && mimeNames[m.ID] == "" {
			return nil, decodeErr(ErrUnknownMime, codecAcceptMimeTypes, b, it.off-1, "reserved well-known MIME id")
		}
		out = append(out, m.String())
	}
	if it.err != nil {
		return nil, it.err
	}
	return out, nil
}
