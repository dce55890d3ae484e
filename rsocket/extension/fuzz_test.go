package extension

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// Every fuzz target checks: no panic on any input; errors are typed; and for accepted input,
// decode -> encode reproduces the input bytes and decode again gives the same values.

func FuzzComposite(f *testing.F) {
	for _, g := range compositeGolden {
		f.Add([]byte(g.wire))
	}
	f.Add([]byte("\x05cus"))
	f.Add([]byte("\xfe\x00\x00\x05\x04ec"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var entries []CompositeEntry
		it := NewCompositeIter(data)
		for it.Next() {
			entries = append(entries, it.Entry())
		}
		var re []byte
		for _, e := range entries {
			re = AppendCompositeEntryRef(re, e.MimeRef(), e.Value)
		}
		if err := it.Err(); err != nil {
			var de *DecodeError
			if !errors.Is(err, ErrMalformed) || !errors.As(err, &de) {
				t.Fatalf("untyped error %v", err)
			}
			// the entries before the error are exactly the bytes before it
			if !bytes.HasPrefix(data, re) {
				t.Fatalf("entries before the error re-encode to % x, not a prefix of % x", re, data)
			}
			return
		}
		if !bytes.Equal(re, data) {
			t.Fatalf("re-encoded % x\nwant % x", re, data)
		}
		again := decodeAll(t, re)
		if len(again) != len(entries) {
			t.Fatalf("second decode: %d entries, want %d", len(again), len(entries))
		}
		for i := range again {
			if !entryEqual(again[i], entries[i]) {
				t.Fatalf("entry %d: %+v != %+v", i, again[i], entries[i])
			}
		}
		// the public by-name encoder gives entries that denote the same MIME types
		var byName []byte
		for _, e := range entries {
			if e.WellKnown {
				if _, known := MimeName(e.MimeID); !known {
					byName = AppendCompositeEntryID(byName, e.MimeID, e.Value)
					continue
				}
			}
			byName = AppendCompositeEntry(byName, e.MimeString(), e.Value)
		}
		named := decodeAll(t, byName)
		for i := range named {
			if named[i].MimeString() != entries[i].MimeString() || !bytes.Equal(named[i].Value, entries[i].Value) {
				t.Fatalf("by-name entry %d: %q != %q", i, named[i].MimeString(), entries[i].MimeString())
			}
		}
		if len(entries) > 0 && entries[0].MimeString() != "" {
			v, ok := FindComposite(data, entries[0].MimeString())
			if !ok || !bytes.Equal(v, entries[0].Value) {
				t.Fatalf("FindComposite(first entry's MIME) = % x, %v", v, ok)
			}
		}
	})
}

func FuzzRouting(f *testing.F) {
	for _, g := range routingGolden {
		f.Add([]byte(g.wire))
	}
	f.Add([]byte("\x00"))
	f.Add([]byte("\x02\xff\xfe"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var tags []string
		it := NewRoutingIter(data)
		for it.Next() {
			tags = append(tags, string(it.Tag()))
		}
		first, ferr := FirstRoutingTag(data)
		if err := it.Err(); err != nil {
			if !errors.Is(err, ErrMalformed) || !errors.Is(ferr, ErrMalformed) {
				t.Fatalf("errors %v / %v", err, ferr)
			}
			return
		}
		re, err := EncodeRouting(nil, tags...)
		if err != nil {
			t.Fatalf("decoded tags %q do not encode: %v", tags, err)
		}
		if !bytes.Equal(re, data) {
			t.Fatalf("re-encoded % x\nwant % x", re, data)
		}
		var again []string
		it = NewRoutingIter(re)
		for it.Next() {
			again = append(again, string(it.Tag()))
		}
		if it.Err() != nil || !slices.Equal(again, tags) {
			t.Fatalf("second decode %q, %v", again, it.Err())
		}
		switch {
		case len(tags) == 0 && !errors.Is(ferr, ErrNoRoutingTag):
			t.Fatalf("FirstRoutingTag(empty) err = %v", ferr)
		case len(tags) > 0 && (ferr != nil || string(first) != tags[0]):
			t.Fatalf("FirstRoutingTag = %q, %v", first, ferr)
		}
	})
}

func FuzzAuth(f *testing.F) {
	for _, s := range []string{"\x81token", "\x80\x00\x04userpass", "\x05custompayload", "\x80\x00\x05user", "", "\x05cus"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseAuth(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if re := AppendAuth(nil, &a); !bytes.Equal(re, data) {
			t.Fatalf("re-encoded % x\nwant % x", re, data)
		}
		b, err := ParseAuth(AppendAuth(nil, &a))
		if err != nil || b.Type != a.Type || b.WellKnown != a.WellKnown || !bytes.Equal(b.CustomType, a.CustomType) ||
			!bytes.Equal(b.Payload, a.Payload) {
			t.Fatalf("second decode %+v, %v; want %+v", b, err, a)
		}
		user, pass, serr := a.Simple()
		switch {
		case serr == nil:
			re, err := EncodeAuthSimple(nil, user, pass)
			if err != nil || !bytes.Equal(re, data) {
				t.Fatalf("simple re-encoded % x, %v", re, err)
			}
		case a.WellKnown && a.Type == AuthSimple:
			if !errors.Is(serr, ErrMalformed) {
				t.Fatalf("Simple err %v", serr)
			}
		case !errors.Is(serr, ErrAuthType):
			t.Fatalf("Simple on type %+v err %v", a, serr)
		}
		if tok, err := a.Bearer(); err == nil {
			if re := AppendAuthBearer(nil, tok); !bytes.Equal(re, data) {
				t.Fatalf("bearer re-encoded % x", re)
			}
		}
	})
}

func FuzzMimeType(f *testing.F) {
	for _, s := range []string{"\x85", "\xaa", "\x09text/x-foo", "\x85\x09text/x-foo\xfe", "\xab", "", "\x05abc", "\x01\xc3\xa9"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if m, err := ParseMimeTypeRef(data); err == nil {
			if re := AppendMimeRef(nil, m); !bytes.Equal(re, data) {
				t.Fatalf("mime-type re-encoded % x, want % x", re, data)
			}
			s, err := ParseMimeType(data)
			if err == nil {
				// by name: same MIME type, possibly in the shorter id form
				if again, err := ParseMimeType(AppendMimeType(nil, s)); err != nil || again != s {
					t.Fatalf("by-name round trip %q -> %q, %v", s, again, err)
				}
			} else if !errors.Is(err, ErrUnknownMime) {
				t.Fatalf("ParseMimeType err %v", err)
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("untyped error %v", err)
		}

		var refs []MimeRef
		it := NewMimeIter(data)
		for it.Next() {
			refs = append(refs, it.Mime())
		}
		if it.Err() != nil {
			if !errors.Is(it.Err(), ErrMalformed) {
				t.Fatalf("untyped error %v", it.Err())
			}
			return
		}
		var re []byte
		for _, m := range refs {
			re = AppendMimeRef(re, m)
		}
		if !bytes.Equal(re, data) {
			t.Fatalf("accept-mime-types re-encoded % x, want % x", re, data)
		}
		list, err := ParseAcceptMimeTypes(data)
		if err != nil {
			if !errors.Is(err, ErrUnknownMime) && !(len(data) == 0 && errors.Is(err, ErrMalformed)) {
				t.Fatalf("ParseAcceptMimeTypes err %v", err)
			}
			return
		}
		again, err := ParseAcceptMimeTypes(AppendAcceptMimeTypes(nil, list...))
		if err != nil || !slices.Equal(again, list) {
			t.Fatalf("by-name round trip %q -> %q, %v", list, again, err)
		}
	})
}

func FuzzZipkin(f *testing.F) {
	for _, g := range zipkinGolden {
		f.Add([]byte(g.wire))
	}
	f.Add([]byte(w3cExample))
	f.Add([]byte("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"))
	f.Add([]byte("\x88\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		z, err := ParseZipkin(data)
		if err == nil {
			re := AppendZipkin(nil, &z)
			if !bytes.Equal(re, data) || z.Len() != len(data) {
				t.Fatalf("re-encoded % x (Len %d), want % x", re, z.Len(), data)
			}
			if again, err := ParseZipkin(re); err != nil || again != z {
				t.Fatalf("second decode %+v, %v; want %+v", again, err, z)
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("untyped error %v", err)
		}

		tz, ok := ZipkinFromTraceparent(data)
		if !ok {
			return
		}
		tp, ok := AppendTraceparent(nil, &tz)
		if !ok {
			t.Fatalf("AppendTraceparent refused %+v from %q", tz, data)
		}
		// version 00 with flags 00 or 01 comes back byte for byte (other flag bits are not carried)
		if string(data[:2]) == "00" && string(data[53:54]) == "0" && data[54] <= '1' && !bytes.Equal(tp, data) {
			t.Fatalf("traceparent round trip %q -> %q", data, tp)
		}
		if again, ok := ZipkinFromTraceparent(tp); !ok || again != tz {
			t.Fatalf("traceparent second decode %+v, %v; want %+v", again, ok, tz)
		}
		if again, err := ParseZipkin(AppendZipkin(nil, &tz)); err != nil || again != tz {
			t.Fatalf("zipkin from traceparent does not round trip: %+v, %v", again, err)
		}
	})
}
