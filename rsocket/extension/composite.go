package extension

// Composite metadata (CompositeMetadata.md), one entry:
//
//	[M:1|MIME id or len-1:7] [MIME name if M=0] [value length u24] [value]

// MaxCompositeValueLen is the largest value of one composite entry (24-bit length).
const MaxCompositeValueLen = 1<<24 - 1

const codecComposite = "composite"

// AppendCompositeEntry appends one entry: mime as its well-known id when the table has it, otherwise as a custom
// name (length-1, see the package comment), then the u24 length and value. It panics with *ArgError if a custom
// mime is not 1..128 US-ASCII bytes or value is longer than MaxCompositeValueLen; EncodeCompositeEntry returns
// the error instead.
func AppendCompositeEntry(dst []byte, mime string, value []byte) []byte {
	dst = AppendCompositeHeader(dst, mime, len(value))
	return append(dst, value...)
}

// EncodeCompositeEntry is AppendCompositeEntry returning an *ArgError (dst unchanged) instead of panicking.
func EncodeCompositeEntry(dst []byte, mime string, value []byte) ([]byte, error) {
	dst, err := EncodeCompositeHeader(dst, mime, len(value))
	if err != nil {
		return dst, err
	}
	return append(dst, value...), nil
}

// AppendCompositeEntryID appends one entry with a well-known MIME id (0..127, reserved ids included). It
// panics with *ArgError if id > 127 or value is too long.
func AppendCompositeEntryID(dst []byte, id uint8, value []byte) []byte {
	dst = AppendCompositeHeaderID(dst, id, len(value))
	return append(dst, value...)
}

// AppendCompositeEntryRef appends one entry with the MIME field exactly as m holds it (a custom name stays a
// name even when the table knows it), so that re-encoding decoded entries reproduces the input bytes. It panics
// with *ArgError on a bad m (id > 127, name not 1..128 US-ASCII bytes) or a value that is too long.
func AppendCompositeEntryRef(dst []byte, m MimeRef, value []byte) []byte {
	if len(value) > MaxCompositeValueLen {
		panic(argErr(codecComposite, "value length out of range 0..16777215"))
	}
	if m.WellKnown {
		return AppendCompositeEntryID(dst, m.ID, value)
	}
	if err := checkCustomName(codecComposite, "custom MIME type", m.Name); err != nil {
		panic(err)
	}
	dst = append(dst, byte(len(m.Name)-1))
	dst = append(dst, m.Name...)
	dst = appendU24(dst, len(value))
	return append(dst, value...)
}

// AppendCompositeHeader appends an entry header announcing valueLen bytes; the caller appends exactly valueLen
// value bytes next. Panics as AppendCompositeEntry does.
func AppendCompositeHeader(dst []byte, mime string, valueLen int) []byte {
	dst, err := EncodeCompositeHeader(dst, mime, valueLen)
	if err != nil {
		panic(err)
	}
	return dst
}

// EncodeCompositeHeader is AppendCompositeHeader returning an *ArgError (dst unchanged) instead of panicking.
func EncodeCompositeHeader(dst []byte, mime string, valueLen int) ([]byte, error) {
	if valueLen < 0 || valueLen > MaxCompositeValueLen {
		return dst, argErr(codecComposite, "value length out of range 0..16777215")
	}
	out, aerr := appendMimeField(dst, codecComposite, mime)
	if aerr != nil {
		return dst, aerr
	}
	return appendU24(out, valueLen), nil
}

// AppendCompositeHeaderID appends an entry header with a well-known id. It panics with *ArgError if id > 127
// or valueLen is out of range.
func AppendCompositeHeaderID(dst []byte, id uint8, valueLen int) []byte {
	if id > MaxWellKnownMimeID {
		panic(argErr(codecComposite, "well-known MIME id above 0x7F"))
	}
	if valueLen < 0 || valueLen > MaxCompositeValueLen {
		panic(argErr(codecComposite, "value length out of range 0..16777215"))
	}
	dst = append(dst, id|wellKnownMask)
	return appendU24(dst, valueLen)
}

// BeginCompositeEntry appends the header of an entry whose value length is not known yet (a zero placeholder)
// and returns the mark to pass to EndCompositeEntry once the value has been appended. It panics as
// AppendCompositeHeader does for a bad mime.
func BeginCompositeEntry(dst []byte, mime string) (out []byte, mark int) {
	mark = len(dst)
	return AppendCompositeHeader(dst, mime, 0), mark
}

// EndCompositeEntry patches the length of the entry started at mark by BeginCompositeEntry to cover everything
// appended since. If the value is longer than MaxCompositeValueLen it removes the whole entry (returns
// dst[:mark]) and an *ArgError.
func EndCompositeEntry(dst []byte, mark int) ([]byte, error) {
	lenAt := mark + 1
	if h := dst[mark]; h&wellKnownMask == 0 {
		lenAt += int(h) + 1
	}
	n := len(dst) - (lenAt + 3)
	if n > MaxCompositeValueLen {
		return dst[:mark], argErr(codecComposite, "value longer than 16777215 bytes")
	}
	putU24(dst[lenAt:], n)
	return dst, nil
}

// AppendCompositeRoute appends a complete routing entry (well-known id 0x7E) holding one tag. It checks the
// tag like AppendRoutingTagChecked and returns dst unchanged with an *ArgError if it is invalid.
func AppendCompositeRoute(dst []byte, tag []byte) ([]byte, error) {
	if err := CheckRoutingTag(tag); err != nil {
		return dst, err
	}
	dst = AppendCompositeHeaderID(dst, IDRouting, 1+len(tag))
	return AppendRoutingTag(dst, tag), nil
}

// AppendCompositeBearer appends a complete authentication entry (well-known id 0x7C) with a bearer token.
// It returns dst unchanged with an *ArgError if the token does not fit in one entry.
func AppendCompositeBearer(dst []byte, token []byte) ([]byte, error) {
	if 1+len(token) > MaxCompositeValueLen {
		return dst, argErr(codecComposite, "bearer token too long")
	}
	dst = AppendCompositeHeaderID(dst, IDAuth, 1+len(token))
	return AppendAuthBearer(dst, token), nil
}

// CompositeEntry is one decoded entry. Mime and Value are views into the composite bytes.
type CompositeEntry struct {
	MimeID    uint8  // well-known id when WellKnown (possibly a reserved one), else 0
	WellKnown bool   // the M bit
	Mime      []byte // custom MIME name (1..128 US-ASCII bytes), nil when WellKnown
	Value     []byte
}

// MimeString returns the entry's MIME type: the table name for a well-known id ("" if reserved), otherwise
// the custom name, copied (one allocation). Use Is to compare without allocating.
func (e CompositeEntry) MimeString() string {
	if e.WellKnown {
		return mimeNames[e.MimeID&0x7F]
	}
	return string(e.Mime)
}

// Is reports whether the entry's MIME type is mime, whether the entry uses the id or spells the name out.
func (e CompositeEntry) Is(mime string) bool {
	return mimeIs(e.WellKnown, e.MimeID, e.Mime, mime)
}

// MimeRef returns the entry's MIME field as a MimeRef.
func (e CompositeEntry) MimeRef() MimeRef {
	return MimeRef{ID: e.MimeID, WellKnown: e.WellKnown, Name: e.Mime}
}

// CompositeIter walks the entries of composite metadata without allocating:
//
//	it := extension.NewCompositeIter(md)
//	for it.Next() { e := it.Entry(); ... }
//	if err := it.Err(); err != nil { ... }
//
// It stops at the first malformed entry; Err then returns a *DecodeError. Entries already returned stay valid.
type CompositeIter struct {
	b   []byte
	off int
	e   CompositeEntry
	err error
}

// NewCompositeIter returns an iterator over the composite metadata b.
func NewCompositeIter(b []byte) CompositeIter { return CompositeIter{b: b} }

// Next advances to the next entry and reports whether there is one.
func (it *CompositeIter) Next() bool {
	if it.err != nil || it.off >= len(it.b) {
		return false
	}
	b, start := it.b, it.off
	var e CompositeEntry
	p := start + 1
	if h := b[start]; h&wellKnownMask != 0 {
		e.WellKnown = true
		e.MimeID = h &^ wellKnownMask
	} else {
		n := int(h) + 1
		if len(b)-p < n {
			it.err = malformed(codecComposite, b, start, "custom MIME name truncated")
			return false
		}
		e.Mime = b[p : p+n : p+n]
		if !isASCII(e.Mime) {
			it.err = malformed(codecComposite, b, p, "custom MIME name is not US-ASCII")
			return false
		}
		p += n
	}
	if len(b)-p < 3 {
		it.err = malformed(codecComposite, b, p, "value length truncated")
		return false
	}
	n := getU24(b[p:])
	p += 3
	if len(b)-p < n {
		it.err = malformed(codecComposite, b, p-3, "value longer than the remaining metadata")
		return false
	}
	e.Value = b[p : p+n : p+n]
	it.e = e
	it.off = p + n
	return true
}

// Entry returns the entry Next moved to.
func (it *CompositeIter) Entry() CompositeEntry { return it.e }

// Err returns the decoding error that stopped the iteration, or nil.
func (it *CompositeIter) Err() error { return it.err }

// Offset returns the offset of the byte after the current entry.
func (it *CompositeIter) Offset() int { return it.off }

// FindComposite returns the value of the first entry whose MIME type is mime (by id or by name). ok is false
// when there is none or the metadata is malformed before one is found.
func FindComposite(b []byte, mime string) (value []byte, ok bool) {
	id, known := mimeIDs[mime]
	it := NewCompositeIter(b)
	for it.Next() {
		e := &it.e
		if e.WellKnown {
			if known && e.MimeID == id {
				return e.Value, true
			}
		} else if string(e.Mime) == mime {
			return e.Value, true
		}
	}
	return nil, false
}

// FindCompositeID returns the value of the first entry with the well-known id (only entries that use the id
// form match).
func FindCompositeID(b []byte, id uint8) (value []byte, ok bool) {
	it := NewCompositeIter(b)
	for it.Next() {
		if it.e.WellKnown && it.e.MimeID == id {
			return it.e.Value, true
		}
	}
	return nil, false
}

func appendU24(dst []byte, n int) []byte {
	return append(dst, byte(n>>16), byte(n>>8), byte(n))
}

func putU24(b []byte, n int) {
	_ = b[2]
	b[0], b[1], b[2] = byte(n>>16), byte(n>>8), byte(n)
}

func getU24(b []byte) int {
	_ = b[2]
	return int(b[0])<<16 | int(b[1])<<8 | int(b[2])
}
