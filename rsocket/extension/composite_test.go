package extension

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// Golden composite metadata. Each is derived by hand from CompositeMetadata.md's layout
// ([M|id or len-1][name][u24 length][value]) or from what rsocket-js's @rsocket/composite-metadata produces
// (encodeCompositeMetadata, encodeWellKnownMetadataHeader, encodeCustomMetadataHeader, encodeRoute).
var compositeGolden = []struct {
	name    string
	wire    string
	entries []CompositeEntry
}{
	{
		// rsocket-js: encodeCompositeMetadata([[WellKnownMimeType.MESSAGE_RSOCKET_MIMETYPE, Buffer.from("test")]])
		// (its test expects first byte 250 = 122|128 and u24 length 4).
		name:    "js well-known mime-type entry",
		wire:    "\xfa\x00\x00\x04test",
		entries: []CompositeEntry{{MimeID: 0x7A, WellKnown: true, Value: []byte("test")}},
	},
	{
		// rsocket-js: encodeCompositeMetadata([["custom", Buffer.from("test")]]): length-1 = 5.
		name:    "js custom entry",
		wire:    "\x05custom\x00\x00\x04test",
		entries: []CompositeEntry{{Mime: []byte("custom"), Value: []byte("test")}},
	},
	{
		// rsocket-js: encodeCompositeMetadata([[WellKnownMimeType.MESSAGE_RSOCKET_ROUTING, encodeRoute("echo")]])
		name:    "js routing entry",
		wire:    "\xfe\x00\x00\x05\x04echo",
		entries: []CompositeEntry{{MimeID: 0x7E, WellKnown: true, Value: []byte("\x04echo")}},
	},
	{
		// routing "users.42" + bearer "tok" + custom message/x.rsgate.http.v0 (24 bytes, written as 23).
		name: "routing + bearer + custom",
		wire: "\xfe\x00\x00\x09\x08users.42" +
			"\xfc\x00\x00\x04\x81tok" +
			"\x17message/x.rsgate.http.v0\x00\x00\x02\x01\x01",
		entries: []CompositeEntry{
			{MimeID: 0x7E, WellKnown: true, Value: []byte("\x08users.42")},
			{MimeID: 0x7C, WellKnown: true, Value: []byte("\x81tok")},
			{Mime: []byte("message/x.rsgate.http.v0"), Value: []byte("\x01\x01")},
		},
	},
	{
		name:    "empty value and reserved id",
		wire:    "\xd0\x00\x00\x00",
		entries: []CompositeEntry{{MimeID: 0x50, WellKnown: true, Value: []byte{}}},
	},
	{
		// one-byte custom name: the 7 bits hold 0
		name:    "custom name of one byte",
		wire:    "\x00x\x00\x00\x01v",
		entries: []CompositeEntry{{Mime: []byte("x"), Value: []byte("v")}},
	},
	{
		name:    "custom name of 128 bytes",
		wire:    "\x7f" + strings.Repeat("a", 128) + "\x00\x00\x00",
		entries: []CompositeEntry{{Mime: []byte(strings.Repeat("a", 128)), Value: []byte{}}},
	},
	{name: "empty metadata", wire: ""},
}

func entryEqual(a, b CompositeEntry) bool {
	return a.MimeID == b.MimeID && a.WellKnown == b.WellKnown && bytes.Equal(a.Mime, b.Mime) &&
		bytes.Equal(a.Value, b.Value) && (a.Mime == nil) == (b.Mime == nil)
}

func decodeAll(t testing.TB, b []byte) []CompositeEntry {
	var out []CompositeEntry
	it := NewCompositeIter(b)
	for it.Next() {
		out = append(out, it.Entry())
	}
	if err := it.Err(); err != nil {
		t.Fatalf("decode % x: %v", b, err)
	}
	return out
}

func TestCompositeGoldenDecode(t *testing.T) {
	for _, tc := range compositeGolden {
		t.Run(tc.name, func(t *testing.T) {
			got := decodeAll(t, []byte(tc.wire))
			if len(got) != len(tc.entries) {
				t.Fatalf("got %d entries, want %d", len(got), len(tc.entries))
			}
			for i := range got {
				if !entryEqual(got[i], tc.entries[i]) {
					t.Errorf("entry %d = %+v, want %+v", i, got[i], tc.entries[i])
				}
			}
		})
	}
}

func TestCompositeGoldenEncode(t *testing.T) {
	for _, tc := range compositeGolden {
		t.Run(tc.name, func(t *testing.T) {
			var b []byte
			for _, e := range tc.entries {
				b = AppendCompositeEntryRef(b, e.MimeRef(), e.Value)
			}
			if string(b) != tc.wire {
				t.Errorf("encoded\n % x\nwant\n % x", b, tc.wire)
			}
		})
	}
}

func TestCompositeEncodeAPI(t *testing.T) {
	// the spec case with the public helpers, as the gateway writes it
	b := AppendCompositeEntry(nil, MimeRouting, AppendRouting(nil, "users.42"))
	b = AppendCompositeEntry(b, MimeAuth, AppendAuthBearer(nil, []byte("tok")))
	b = AppendCompositeEntry(b, "message/x.rsgate.http.v0", []byte{1, 1})
	if string(b) != compositeGolden[3].wire {
		t.Fatalf("AppendCompositeEntry\n % x\nwant\n % x", b, compositeGolden[3].wire)
	}

	b2, err := AppendCompositeRoute(nil, []byte("users.42"))
	if err != nil {
		t.Fatal(err)
	}
	b2, err = AppendCompositeBearer(b2, []byte("tok"))
	if err != nil {
		t.Fatal(err)
	}
	b2 = AppendCompositeHeader(b2, "message/x.rsgate.http.v0", 2)
	b2 = append(b2, 1, 1)
	if !bytes.Equal(b, b2) {
		t.Errorf("AppendCompositeRoute/Bearer/Header\n % x\nwant\n % x", b2, b)
	}

	b3 := AppendCompositeEntryID(nil, 0x7A, []byte("test"))
	if string(b3) != "\xfa\x00\x00\x04test" {
		t.Errorf("AppendCompositeEntryID = % x", b3)
	}
	// rsocket-js encodeCustomMetadataHeader("test", 4) === "03 74657374 000004"
	if h := AppendCompositeHeader(nil, "test", 4); string(h) != "\x03test\x00\x00\x04" {
		t.Errorf("AppendCompositeHeader(test) = % x", h)
	}
	if h := AppendCompositeHeader(nil, "application/json", 0x123456); string(h) != "\x85\x12\x34\x56" {
		t.Errorf("AppendCompositeHeader(json) = % x", h)
	}
}

func TestCompositeBeginEnd(t *testing.T) {
	b := []byte("prefix")
	b, mark := BeginCompositeEntry(b, "message/x.rsgate.http.v0")
	b = append(b, 1, 1)
	b, err := EndCompositeEntry(b, mark)
	if err != nil {
		t.Fatal(err)
	}
	if want := "prefix\x17message/x.rsgate.http.v0\x00\x00\x02\x01\x01"; string(b) != want {
		t.Errorf("got % x\nwant % x", b, want)
	}
	b, mark = BeginCompositeEntry(b[:0], MimeRouting)
	b = AppendRoutingTag(b, []byte("echo"))
	if b, err = EndCompositeEntry(b, mark); err != nil || string(b) != "\xfe\x00\x00\x05\x04echo" {
		t.Errorf("got % x, %v", b, err)
	}
	big := make([]byte, 0, MaxCompositeValueLen+16)
	big, mark = BeginCompositeEntry(big, MimeRouting)
	big = big[:len(big)+MaxCompositeValueLen+1]
	big, err = EndCompositeEntry(big, mark)
	if !errors.Is(err, ErrInvalid) || len(big) != 0 {
		t.Errorf("oversized entry: len %d, err %v", len(big), err)
	}
}

func TestCompositeEncodeErrors(t *testing.T) {
	cases := []struct {
		mime string
		n    int
	}{
		{"", 0},
		{strings.Repeat("a", 129), 0},
		{"text/é", 0},
		{"application/json", MaxCompositeValueLen + 1},
		{"application/json", -1},
	}
	for _, c := range cases {
		dst := []byte("keep")
		out, err := EncodeCompositeHeader(dst, c.mime, c.n)
		var ae *ArgError
		if !errors.Is(err, ErrInvalid) || !errors.As(err, &ae) || string(out) != "keep" {
			t.Errorf("EncodeCompositeHeader(%q, %d) = % x, %v", c.mime, c.n, out, err)
		}
		if _, err := EncodeCompositeEntry(nil, c.mime, nil); c.n == 0 && err == nil {
			t.Errorf("EncodeCompositeEntry(%q) accepted", c.mime)
		}
		func() {
			defer func() {
				if r := recover(); r == nil {
					t.Errorf("AppendCompositeHeader(%q, %d) did not panic", c.mime, c.n)
				} else if e, ok := r.(error); !ok || !errors.Is(e, ErrInvalid) {
					t.Errorf("panic value %v is not an ErrInvalid error", r)
				}
			}()
			AppendCompositeHeader(nil, c.mime, c.n)
		}()
	}
	if _, err := EncodeCompositeHeader(nil, strings.Repeat("a", 128), MaxCompositeValueLen); err != nil {
		t.Errorf("128-byte name and max length rejected: %v", err)
	}
	mustPanic(t, "AppendCompositeHeaderID(0x80)", func() { AppendCompositeHeaderID(nil, 0x80, 0) })
	mustPanic(t, "AppendCompositeEntryRef(empty)", func() { AppendCompositeEntryRef(nil, MimeRef{Name: []byte{}}, nil) })
	if _, err := AppendCompositeRoute(nil, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("AppendCompositeRoute(empty) err = %v", err)
	}
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s did not panic", what)
		}
	}()
	f()
}

func TestCompositeDecodeErrors(t *testing.T) {
	cases := []struct {
		name   string
		wire   string
		good   int // entries before the error
		offset int
	}{
		{"custom name truncated", "\x05cus", 0, 0},
		{"length truncated", "\xfe\x00\x00", 0, 1},
		{"length missing after name", "\x00x", 0, 2},
		{"value past end", "\xfe\x00\x00\x05\x04ec", 0, 1},
		{"non-ASCII name", "\x01\xc3\xa9\x00\x00\x00", 0, 1},
		{"second entry truncated", "\xfe\x00\x00\x01\x00\x85\x00", 1, 6},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			it := NewCompositeIter([]byte(c.wire))
			n := 0
			for it.Next() {
				n++
			}
			err := it.Err()
			var de *DecodeError
			if !errors.Is(err, ErrMalformed) || !errors.As(err, &de) {
				t.Fatalf("err = %v, want a *DecodeError matching ErrMalformed", err)
			}
			if n != c.good || de.Offset != c.offset || de.Codec != "composite" {
				t.Errorf("entries %d offset %d codec %q; want %d, %d", n, de.Offset, de.Codec, c.good, c.offset)
			}
			if it.Next() {
				t.Error("Next after an error returned true")
			}
			if _, ok := FindComposite([]byte(c.wire), "never"); ok {
				t.Error("FindComposite found something in malformed metadata")
			}
		})
	}
}

func TestFindComposite(t *testing.T) {
	md := []byte(compositeGolden[3].wire)
	if v, ok := FindComposite(md, MimeAuth); !ok || string(v) != "\x81tok" {
		t.Errorf("FindComposite(auth) = % x, %v", v, ok)
	}
	if v, ok := FindComposite(md, "message/x.rsgate.http.v0"); !ok || string(v) != "\x01\x01" {
		t.Errorf("FindComposite(custom) = % x, %v", v, ok)
	}
	if v, ok := FindCompositeID(md, IDRouting); !ok || string(v) != "\x08users.42" {
		t.Errorf("FindCompositeID(routing) = % x, %v", v, ok)
	}
	if _, ok := FindComposite(md, MimeTracingZipkin); ok {
		t.Error("FindComposite found a missing entry")
	}
	// a peer that spells a well-known type out as a custom name still matches
	spelled := AppendCompositeEntryRef(nil, MimeRef{Name: []byte(MimeRouting)}, []byte("\x01a"))
	if v, ok := FindComposite(spelled, MimeRouting); !ok || string(v) != "\x01a" {
		t.Errorf("FindComposite(spelled-out routing) = % x, %v", v, ok)
	}
	if _, ok := FindCompositeID(spelled, IDRouting); ok {
		t.Error("FindCompositeID matched a spelled-out name")
	}
	// the first of two matching entries wins
	two := AppendCompositeEntryID(AppendCompositeEntryID(nil, IDRouting, []byte("\x01a")), IDRouting, []byte("\x01b"))
	if v, _ := FindComposite(two, MimeRouting); string(v) != "\x01a" {
		t.Errorf("FindComposite returned % x, want the first entry", v)
	}
}

func TestCompositeEntryMime(t *testing.T) {
	it := NewCompositeIter([]byte(compositeGolden[3].wire))
	want := []string{MimeRouting, MimeAuth, "message/x.rsgate.http.v0"}
	for i := 0; it.Next(); i++ {
		e := it.Entry()
		if e.MimeString() != want[i] || !e.Is(want[i]) || e.Is(MimeComposite) {
			t.Errorf("entry %d: MimeString %q", i, e.MimeString())
		}
	}
	// values are capped views: appending must not overwrite the next entry
	md := []byte(compositeGolden[3].wire)
	it = NewCompositeIter(md)
	it.Next()
	_ = append(it.Entry().Value, 'X')
	if string(md) != compositeGolden[3].wire {
		t.Error("appending to a Value overwrote the metadata")
	}
}
