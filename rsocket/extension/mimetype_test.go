package extension

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// Golden values from PerStreamDataMimeTypesDefinition.md ([M|id or len-1][name if M=0]), with length-1 as
// rsocket-java's MimeTypeMetadataCodec writes it.
func TestMimeTypeGolden(t *testing.T) {
	cases := []struct{ mime, wire string }{
		{"application/json", "\x85"},
		{"application/x-flatbuffers", "\xaa"},
		{MimeComposite, "\xff"},
		{"text/x-foo", "\x09text/x-foo"},
		{"a", "\x00a"},
		{strings.Repeat("m", 128), "\x7f" + strings.Repeat("m", 128)},
	}
	for _, c := range cases {
		if b := AppendMimeType(nil, c.mime); string(b) != c.wire {
			t.Errorf("AppendMimeType(%q) = % x, want % x", c.mime, b, c.wire)
		}
		got, err := ParseMimeType([]byte(c.wire))
		if err != nil || got != c.mime {
			t.Errorf("ParseMimeType(% x) = %q, %v", c.wire, got, err)
		}
	}
	if b := AppendMimeTypeID(nil, IDOctetStream); string(b) != "\x86" {
		t.Errorf("AppendMimeTypeID = % x", b)
	}
	list := []string{"application/json", "text/x-foo", MimeRouting}
	wire := "\x85\x09text/x-foo\xfe"
	if b := AppendAcceptMimeTypes(nil, list...); string(b) != wire {
		t.Errorf("AppendAcceptMimeTypes = % x", b)
	}
	got, err := ParseAcceptMimeTypes([]byte(wire))
	if err != nil || !slices.Equal(got, list) {
		t.Errorf("ParseAcceptMimeTypes = %q, %v", got, err)
	}
	it := NewMimeIter([]byte(wire))
	var refs []MimeRef
	for it.Next() {
		refs = append(refs, it.Mime())
	}
	if it.Err() != nil || len(refs) != 3 || !refs[0].WellKnown || refs[0].ID != 5 || string(refs[1].Name) != "text/x-foo" {
		t.Errorf("MimeIter = %+v, %v", refs, it.Err())
	}
}

func TestMimeTypeErrors(t *testing.T) {
	for _, wire := range []string{"", "\x05abc", "\x85\x85", "\x01\xc3\xa9"} {
		if _, err := ParseMimeType([]byte(wire)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseMimeType(% x) err = %v", wire, err)
		}
	}
	if _, err := ParseMimeType([]byte("\xab")); !errors.Is(err, ErrUnknownMime) || errors.Is(err, ErrMalformed) {
		t.Errorf("ParseMimeType(reserved 0x2B) err = %v", err)
	}
	if m, err := ParseMimeTypeRef([]byte("\xab")); err != nil || !m.WellKnown || m.ID != 0x2B {
		t.Errorf("ParseMimeTypeRef(reserved) = %+v, %v", m, err)
	}
	for _, wire := range []string{"", "\x85\x05abc"} {
		if _, err := ParseAcceptMimeTypes([]byte(wire)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseAcceptMimeTypes(% x) err = %v", wire, err)
		}
	}
	if _, err := ParseAcceptMimeTypes([]byte("\x85\xd0")); !errors.Is(err, ErrUnknownMime) {
		t.Errorf("ParseAcceptMimeTypes(reserved) err = %v", err)
	}
	for _, m := range []string{"", strings.Repeat("m", 129), "text/ü"} {
		if out, err := EncodeMimeType([]byte("k"), m); !errors.Is(err, ErrInvalid) || string(out) != "k" {
			t.Errorf("EncodeMimeType(%q) = %q, %v", m, out, err)
		}
		if out, err := EncodeAcceptMimeTypes([]byte("k"), "application/json", m); !errors.Is(err, ErrInvalid) || string(out) != "k" {
			t.Errorf("EncodeAcceptMimeTypes(%q) = %q, %v", m, out, err)
		}
	}
	if _, err := EncodeAcceptMimeTypes(nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("EncodeAcceptMimeTypes() err = %v", err)
	}
	mustPanic(t, "AppendMimeType(empty)", func() { AppendMimeType(nil, "") })
	mustPanic(t, "AppendAcceptMimeTypes()", func() { AppendAcceptMimeTypes(nil) })
	mustPanic(t, "AppendMimeTypeID(0x80)", func() { AppendMimeTypeID(nil, 0x80) })
	mustPanic(t, "AppendMimeRef(long)", func() { AppendMimeRef(nil, MimeRef{Name: make([]byte, 129)}) })
}
