package extension

import "testing"

// wellKnownMimeTypesMd is the table of rsocket/rsocket Extensions/WellKnownMimeTypes.md (current text, which
// adds 0x26..0x2A to the first published list), written out independently of mime.go.
var wellKnownMimeTypesMd = []struct {
	name string
	id   uint8
}{
	{"application/avro", 0x00}, {"application/cbor", 0x01}, {"application/graphql", 0x02},
	{"application/gzip", 0x03}, {"application/javascript", 0x04}, {"application/json", 0x05},
	{"application/octet-stream", 0x06}, {"application/pdf", 0x07},
	{"application/vnd.apache.thrift.binary", 0x08}, {"application/vnd.google.protobuf", 0x09},
	{"application/xml", 0x0A}, {"application/zip", 0x0B}, {"audio/aac", 0x0C}, {"audio/mp3", 0x0D},
	{"audio/mp4", 0x0E}, {"audio/mpeg3", 0x0F}, {"audio/mpeg", 0x10}, {"audio/ogg", 0x11},
	{"audio/opus", 0x12}, {"audio/vorbis", 0x13}, {"image/bmp", 0x14}, {"image/gif", 0x15},
	{"image/heic-sequence", 0x16}, {"image/heic", 0x17}, {"image/heif-sequence", 0x18},
	{"image/heif", 0x19}, {"image/jpeg", 0x1A}, {"image/png", 0x1B}, {"image/tiff", 0x1C},
	{"multipart/mixed", 0x1D}, {"text/css", 0x1E}, {"text/csv", 0x1F}, {"text/html", 0x20},
	{"text/plain", 0x21}, {"text/xml", 0x22}, {"video/H264", 0x23}, {"video/H265", 0x24},
	{"video/VP8", 0x25}, {"application/x-hessian", 0x26}, {"application/x-java-object", 0x27},
	{"application/cloudevents+json", 0x28}, {"application/x-capnp", 0x29},
	{"application/x-flatbuffers", 0x2A},
	{"message/x.rsocket.mime-type.v0", 0x7A}, {"message/x.rsocket.accept-mime-types.v0", 0x7B},
	{"message/x.rsocket.authentication.v0", 0x7C}, {"message/x.rsocket.tracing-zipkin.v0", 0x7D},
	{"message/x.rsocket.routing.v0", 0x7E}, {"message/x.rsocket.composite-metadata.v0", 0x7F},
}

func TestWellKnownMimeTable(t *testing.T) {
	seen := map[uint8]bool{}
	for _, w := range wellKnownMimeTypesMd {
		seen[w.id] = true
		if id, ok := MimeID(w.name); !ok || id != w.id {
			t.Errorf("MimeID(%q) = %#x, %v; want %#x", w.name, id, ok, w.id)
		}
		if id, ok := MimeIDBytes([]byte(w.name)); !ok || id != w.id {
			t.Errorf("MimeIDBytes(%q) = %#x, %v; want %#x", w.name, id, ok, w.id)
		}
		if name, ok := MimeName(w.id); !ok || name != w.name {
			t.Errorf("MimeName(%#x) = %q, %v; want %q", w.id, name, ok, w.name)
		}
	}
	for id := 0; id < 256; id++ {
		if seen[uint8(id)] {
			continue
		}
		if name, ok := MimeName(uint8(id)); ok || name != "" {
			t.Errorf("MimeName(%#x) = %q, %v; want reserved", id, name, ok)
		}
	}
	for _, s := range []string{"", "application/JSON", "application/json; charset=utf-8", "text/x-custom"} {
		if id, ok := MimeID(s); ok {
			t.Errorf("MimeID(%q) = %#x, want not found", s, id)
		}
	}
	consts := map[string]uint8{MimeComposite: IDComposite, MimeRouting: IDRouting, MimeAuth: IDAuth,
		MimeTracingZipkin: IDTracingZipkin, MimeMimeType: IDMimeType, MimeAcceptMimeTypes: IDAcceptMimeTypes,
		"application/json": IDApplicationJSON, "application/octet-stream": IDOctetStream, "text/plain": IDTextPlain}
	for name, id := range consts {
		if got, _ := MimeID(name); got != id {
			t.Errorf("constant for %q is %#x, table says %#x", name, id, got)
		}
	}
}

func TestMimeRef(t *testing.T) {
	wk := MimeRef{ID: IDRouting, WellKnown: true}
	if wk.String() != MimeRouting || !wk.Is(MimeRouting) || wk.Is(MimeAuth) {
		t.Errorf("well-known MimeRef: %q", wk.String())
	}
	reserved := MimeRef{ID: 0x50, WellKnown: true}
	if reserved.String() != "" || reserved.Is("") {
		t.Errorf("reserved MimeRef matched or named: %q", reserved.String())
	}
	custom := MimeRef{Name: []byte(MimeRouting)}
	if !custom.Is(MimeRouting) || custom.Is("x") || custom.String() != MimeRouting {
		t.Errorf("custom MimeRef spelled as a well-known name")
	}
}
