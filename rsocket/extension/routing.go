package extension

import "unicode/utf8"

// Routing metadata (Routing.md): any number of [tag length u8][UTF-8 tag].

// MaxRoutingTagLen is the longest routing tag in bytes.
const MaxRoutingTagLen = 255

const codecRouting = "routing"

// CheckRoutingTag returns an *ArgError unless tag is 1..255 bytes of valid UTF-8.
func CheckRoutingTag(tag []byte) error {
	if err := checkTagLen(len(tag)); err != nil {
		return err
	}
	if !utf8.Valid(tag) {
		return argErr(codecRouting, "tag is not valid UTF-8")
	}
	return nil
}

// CheckRoutingTagString is CheckRoutingTag for a string.
func CheckRoutingTagString(tag string) error {
	if err := checkTagLen(len(tag)); err != nil {
		return err
	}
	if !utf8.ValidString(tag) {
		return argErr(codecRouting, "tag is not valid UTF-8")
	}
	return nil
}

func checkTagLen(n int) error {
	if n == 0 {
		return argErr(codecRouting, "empty tag")
	}
	if n > MaxRoutingTagLen {
		return argErr(codecRouting, "tag longer than 255 bytes")
	}
	return nil
}

// AppendRoutingTag appends [len][tag]. It panics with *ArgError if tag is empty or longer than 255 bytes (it
// does not check UTF-8); use AppendRoutingTagChecked or EncodeRouting for tags built from request data.
func AppendRoutingTag(dst []byte, tag []byte) []byte {
	if len(tag) == 0 || len(tag) > MaxRoutingTagLen {
		panic(argErr(codecRouting, "tag length out of range 1..255"))
	}
	dst = append(dst, byte(len(tag)))
	return append(dst, tag...)
}

// AppendRoutingTagChecked appends [len][tag] after CheckRoutingTag; on error dst is returned unchanged.
func AppendRoutingTagChecked(dst []byte, tag []byte) ([]byte, error) {
	if err := CheckRoutingTag(tag); err != nil {
		return dst, err
	}
	dst = append(dst, byte(len(tag)))
	return append(dst, tag...), nil
}

// AppendRouting appends every tag as [len][tag]. It panics as AppendRoutingTag does.
func AppendRouting(dst []byte, tags ...string) []byte {
	for _, t := range tags {
		if len(t) == 0 || len(t) > MaxRoutingTagLen {
			panic(argErr(codecRouting, "tag length out of range 1..255"))
		}
		dst = append(dst, byte(len(t)))
		dst = append(dst, t...)
	}
	return dst
}

// EncodeRouting appends every tag after CheckRoutingTag; on error dst is returned unchanged (no partial tags).
func EncodeRouting(dst []byte, tags ...string) ([]byte, error) {
	for _, t := range tags {
		if err := CheckRoutingTagString(t); err != nil {
			return dst, err
		}
	}
	return AppendRouting(dst, tags...), nil
}

// BeginRoutingTag reserves the length byte of a tag the caller appends next (for tags rendered from a
// template straight into the buffer); pass the mark to EndRoutingTag.
func BeginRoutingTag(dst []byte) (out []byte, mark int) {
	return append(dst, 0), len(dst)
}

// EndRoutingTag patches the length byte reserved at mark. If the tag appended since is not 1..255 bytes of
// valid UTF-8 it returns dst[:mark] (the tag removed) and an *ArgError.
func EndRoutingTag(dst []byte, mark int) ([]byte, error) {
	tag := dst[mark+1:]
	if err := CheckRoutingTag(tag); err != nil {
		return dst[:mark], err
	}
	dst[mark] = byte(len(tag))
	return dst, nil
}

// RoutingIter walks the tags of routing metadata without allocating. A tag of length 0, a tag running past the
// end, or a tag that is not valid UTF-8 stops it with a *DecodeError from Err.
type RoutingIter struct {
	b   []byte
	off int
	tag []byte
	err error
}

// NewRoutingIter returns an iterator over routing metadata b.
func NewRoutingIter(b []byte) RoutingIter { return RoutingIter{b: b} }

// Next advances to the next tag and reports whether there is one.
func (it *RoutingIter) Next() bool {
	if it.err != nil || it.off >= len(it.b) {
		return false
	}
	b, off := it.b, it.off
	n := int(b[off])
	if n == 0 {
		it.err = malformed(codecRouting, b, off, "empty tag")
		return false
	}
	p := off + 1
	if len(b)-p < n {
		it.err = malformed(codecRouting, b, off, "tag truncated")
		return false
	}
	tag := b[p : p+n : p+n]
	if !utf8.Valid(tag) {
		it.err = malformed(codecRouting, b, p, "tag is not valid UTF-8")
		return false
	}
	it.tag = tag
	it.off = p + n
	return true
}

// Tag returns the tag Next moved to (a view into the metadata).
func (it *RoutingIter) Tag() []byte { return it.tag }

// Err returns the decoding error that stopped the iteration, or nil.
func (it *RoutingIter) Err() error { return it.err }

// FirstRoutingTag returns the first tag of routing metadata (the one Spring @MessageMapping and rsocket-js
// rsocket-messaging route on). The whole value is validated: a malformed later tag is an error too. Empty
// metadata returns ErrNoRoutingTag.
func FirstRoutingTag(b []byte) ([]byte, error) {
	it := NewRoutingIter(b)
	if !it.Next() {
		if it.err != nil {
			return nil, it.err
		}
		return nil, ErrNoRoutingTag
	}
	first := it.tag
	for it.Next() {
	}
	if it.err != nil {
		return nil, it.err
	}
	return first, nil
}
