package extension

// MIME types of the RSocket extensions themselves.
const (
	MimeComposite       = "message/x.rsocket.composite-metadata.v0"
	MimeRouting         = "message/x.rsocket.routing.v0"
	MimeAuth            = "message/x.rsocket.authentication.v0"
	MimeTracingZipkin   = "message/x.rsocket.tracing-zipkin.v0"
	MimeMimeType        = "message/x.rsocket.mime-type.v0"
	MimeAcceptMimeTypes = "message/x.rsocket.accept-mime-types.v0"
)

// Well-known MIME ids used by the gateway (the full table is in MimeName/MimeID).
const (
	IDApplicationJSON  uint8 = 0x05
	IDOctetStream      uint8 = 0x06
	IDTextPlain        uint8 = 0x21
	IDMimeType         uint8 = 0x7A
	IDAcceptMimeTypes  uint8 = 0x7B
	IDAuth             uint8 = 0x7C
	IDTracingZipkin    uint8 = 0x7D
	IDRouting          uint8 = 0x7E
	IDComposite        uint8 = 0x7F
	MaxWellKnownMimeID uint8 = 0x7F
)

// MaxCustomMimeLen is the longest custom MIME (or auth type) name: 7 bits holding length-1.
const MaxCustomMimeLen = 128

// wellKnownMask marks a well-known id in the first byte of a MIME (or auth type) field.
const wellKnownMask = 0x80

// mimeNames is the table of WellKnownMimeTypes.md; "" marks a reserved id.
var mimeNames = [128]string{
	0x00: "application/avro",
	0x01: "application/cbor",
	0x02: "application/graphql",
	0x03: "application/gzip",
	0x04: "application/javascript",
	0x05: "application/json",
	0x06: "application/octet-stream",
	0x07: "application/pdf",
	0x08: "application/vnd.apache.thrift.binary",
	0x09: "application/vnd.google.protobuf",
	0x0A: "application/xml",
	0x0B: "application/zip",
	0x0C: "audio/aac",
	0x0D: "audio/mp3",
	0x0E: "audio/mp4",
	0x0F: "audio/mpeg3",
	0x10: "audio/mpeg",
	0x11: "audio/ogg",
	0x12: "audio/opus",
	0x13: "audio/vorbis",
	0x14: "image/bmp",
	0x15: "image/gif",
	0x16: "image/heic-sequence",
	0x17: "image/heic",
	0x18: "image/heif-sequence",
	0x19: "image/heif",
	0x1A: "image/jpeg",
	0x1B: "image/png",
	0x1C: "image/tiff",
	0x1D: "multipart/mixed",
	0x1E: "text/css",
	0x1F: "text/csv",
	0x20: "text/html",
	0x21: "text/plain",
	0x22: "text/xml",
	0x23: "video/H264",
	0x24: "video/H265",
	0x25: "video/VP8",
	0x26: "application/x-hessian",
	0x27: "application/x-java-object",
	0x28: "application/cloudevents+json",
	0x29: "application/x-capnp",
	0x2A: "application/x-flatbuffers",
	0x7A: MimeMimeType,
	0x7B: MimeAcceptMimeTypes,
	0x7C: MimeAuth,
	0x7D: MimeTracingZipkin,
	0x7E: MimeRouting,
	0x7F: MimeComposite,
}

// mimeIDs is the reverse of mimeNames, built once at init and read-only afterwards.
var mimeIDs = func() map[string]uint8 {
	m := make(map[string]uint8, 64)
	for id, name := range mimeNames {
		if name != "" {
			m[name] = uint8(id)
		}
	}
	return m
}()

// MimeID returns the well-known id of mime (exact, case-sensitive match as in the table). It does not
// allocate.
func MimeID(mime string) (id uint8, ok bool) {
	id, ok = mimeIDs[mime]
	return id, ok
}

// MimeIDBytes is MimeID for a byte slice; it does not allocate.
func MimeIDBytes(mime []byte) (id uint8, ok bool) {
	id, ok = mimeIDs[string(mime)]
	return id, ok
}

// MimeName returns the MIME type of a well-known id; ok is false for reserved ids and ids above 0x7F.
func MimeName(id uint8) (string, bool) {
	if id > MaxWellKnownMimeID {
		return "", false
	}
	s := mimeNames[id]
	return s, s != ""
}

// isASCII reports whether every byte of s is below 0x80.
func isASCII[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// checkCustomName validates a custom MIME or auth type name: 1..128 US-ASCII bytes.
func checkCustomName[T string | []byte](codec, what string, name T) *ArgError {
	if len(name) == 0 {
		return argErr(codec, "empty "+what)
	}
	if len(name) > MaxCustomMimeLen {
		return argErr(codec, what+" longer than 128 bytes")
	}
	if !isASCII(name) {
		return argErr(codec, what+" is not US-ASCII")
	}
	return nil
}

// appendCustomName writes [len-1][name]; the caller has checked the name.
func appendCustomName(dst []byte, name string) []byte {
	dst = append(dst, byte(len(name)-1))
	return append(dst, name...)
}

// MimeRef is one decoded MIME field ([M|id-or-len] [name if M=0]): either a well-known id or a custom name.
// Name is a view into the decoded bytes (see the package comment on lifetimes).
type MimeRef struct {
	ID        uint8  // well-known id; 0 for custom names
	WellKnown bool   // the M bit
	Name      []byte // custom name (1..128 US-ASCII bytes); nil when WellKnown
}

// String returns the MIME type: the table name for a well-known id ("" if the id is reserved), otherwise the
// custom name. Custom names are copied (one allocation); use Is to compare without allocating.
func (m MimeRef) String() string {
	if m.WellKnown {
		return mimeNames[m.ID&0x7F]
	}
	return string(m.Name)
}

// Is reports whether m denotes mime, whichever form (id or name) either side uses. It does not allocate.
func (m MimeRef) Is(mime string) bool {
	return mimeIs(m.WellKnown, m.ID, m.Name, mime)
}

func mimeIs(wellKnown bool, id uint8, name []byte, mime string) bool {
	if wellKnown {
		n := mimeNames[id&0x7F]
		return n != "" && n == mime
	}
	return string(name) == mime
}

// decodeMimeRef reads one MIME field at b[off:] and returns it with the offset after it.
func decodeMimeRef(codec string, b []byte, off int) (MimeRef, int, error) {
	if off >= len(b) {
		return MimeRef{}, off, malformed(codec, b, off, "missing MIME id/length byte")
	}
	h := b[off]
	if h&wellKnownMask != 0 {
		return MimeRef{ID: h &^ wellKnownMask, WellKnown: true}, off + 1, nil
	}
	n := int(h) + 1 // length-1 on the wire, see the package comment
	p := off + 1
	if len(b)-p < n {
		return MimeRef{}, off, malformed(codec, b, off, "MIME name truncated")
	}
	name := b[p : p+n : p+n]
	if !isASCII(name) {
		return MimeRef{}, off, malformed(codec, b, p, "MIME name is not US-ASCII")
	}
	return MimeRef{Name: name}, p + n, nil
}

// appendMimeField writes mime as a well-known id when the table has it, else as [len-1][name].
func appendMimeField(dst []byte, codec, mime string) ([]byte, *ArgError) {
	if id, ok := mimeIDs[mime]; ok {
		return append(dst, id|wellKnownMask), nil
	}
	if err := checkCustomName(codec, "custom MIME type", mime); err != nil {
		return dst, err
	}
	return appendCustomName(dst, mime), nil
}
