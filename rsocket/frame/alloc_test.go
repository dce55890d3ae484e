//go:build !race

package frame

import (
	"bytes"
	"testing"
)

// The encode and parse hot paths must not allocate when dst has capacity.
func TestZeroAllocs(t *testing.T) {
	md := []byte("\xfe\x00\x00\x06routeA")
	data := bytes.Repeat([]byte("x"), 1024)
	buf := make([]byte, 0, 2048)
	rr := AppendRequestResponse(nil, 1, false, md, data)
	pl := AppendPayload(nil, 1, FlagNext|FlagComplete, md, data)
	var sink int
	cases := []struct {
		name string
		fn   func()
	}{
		{"AppendRequestResponse", func() { buf = AppendRequestResponse(buf[:0], 1, false, md, data) }},
		{"AppendPayload", func() { buf = AppendPayload(buf[:0], 1, FlagNext|FlagComplete, md, data) }},
		{"AppendRequestStream", func() { buf = AppendRequestStream(buf[:0], 1, 8, false, md, data) }},
		{"AppendRequestChannel", func() { buf = AppendRequestChannel(buf[:0], 1, 8, false, true, md, data) }},
		{"AppendRequestFNF", func() { buf = AppendRequestFNF(buf[:0], 1, false, md, data) }},
		{"AppendRequestN", func() { buf = AppendRequestN(buf[:0], 1, 8) }},
		{"AppendCancel", func() { buf = AppendCancel(buf[:0], 1) }},
		{"AppendError", func() { buf = AppendError(buf[:0], 1, CodeApplicationError, "boom") }},
		{"AppendKeepalive", func() { buf = AppendKeepalive(buf[:0], true, 7, nil) }},
		{"AppendSetup", func() {
			buf = AppendSetup(buf[:0], &Setup{Major: 1, Keepalive: 1, Lifetime: 2, MetadataMIME: "a", DataMIME: "b"}, md, data)
		}},
		{"AppendPrefix", func() { buf = AppendPrefix(buf[:0], TypePayload, 1, FlagNext, 0, len(md), true) }},
		{"ParseRequestResponse", func() {
			f, err := Parse(rr)
			if err != nil {
				panic(err)
			}
			sink += len(f.Metadata()) + len(f.Data()) + int(f.StreamID())
		}},
		{"ParsePayload", func() {
			f, err := Parse(pl)
			if err != nil {
				panic(err)
			}
			sink += len(f.Metadata()) + len(f.Data()) + int(f.Flags())
		}},
		{"Fragmenter", func() {
			fr := NewFragmenter(256, TypePayload, FlagNext, 0, md, data)
			for f, ok := fr.Next(); ok; f, ok = fr.Next() {
				buf = f.AppendPrefix(buf[:0], 1)
			}
		}},
		{"TypeString", func() { sink += len(TypePayload.String()) + len(CodeApplicationError.String()) }},
	}
	for _, c := range cases {
		if a := testing.AllocsPerRun(1000, c.fn); a != 0 {
			t.Errorf("%s: %v allocs/op, want 0", c.name, a)
		}
	}
	_ = sink
}
