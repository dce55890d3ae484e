package extension

import (
	"errors"
	"strings"
	"testing"
)

// Golden routing values from Routing.md's layout ([u8 length][UTF-8 tag] repeated) and from rsocket-js's
// encodeRoute / encodeRoutes (length byte then the UTF-8 bytes).
var routingGolden = []struct {
	name string
	wire string
	tags []string
}{
	{"js encodeRoute(echo)", "\x04echo", []string{"echo"}},
	{"js encodeRoutes(a, bc)", "\x01a\x02bc", []string{"a", "bc"}},
	{"spring style", "\x08users.42", []string{"users.42"}},
	{"path style and client tag", "\x09/person/1\x0aios-client", []string{"/person/1", "ios-client"}},
	{"multi-byte UTF-8", "\x05caf\xc3\xa9", []string{"café"}},
	{"255 bytes", "\xff" + strings.Repeat("t", 255), []string{strings.Repeat("t", 255)}},
	{"empty metadata", "", nil},
}

func TestRoutingGolden(t *testing.T) {
	for _, tc := range routingGolden {
		t.Run(tc.name, func(t *testing.T) {
			if got := AppendRouting(nil, tc.tags...); string(got) != tc.wire {
				t.Errorf("AppendRouting = % x, want % x", got, tc.wire)
			}
			if got, err := EncodeRouting(nil, tc.tags...); err != nil || string(got) != tc.wire {
				t.Errorf("EncodeRouting = % x, %v", got, err)
			}
			var b []byte
			for _, tag := range tc.tags {
				b = AppendRoutingTag(b, []byte(tag))
			}
			if string(b) != tc.wire {
				t.Errorf("AppendRoutingTag = % x", b)
			}
			var got []string
			it := NewRoutingIter([]byte(tc.wire))
			for it.Next() {
				got = append(got, string(it.Tag()))
			}
			if it.Err() != nil || strings.Join(got, "|") != strings.Join(tc.tags, "|") || len(got) != len(tc.tags) {
				t.Errorf("decoded %q, %v; want %q", got, it.Err(), tc.tags)
			}
			first, err := FirstRoutingTag([]byte(tc.wire))
			if len(tc.tags) == 0 {
				if !errors.Is(err, ErrNoRoutingTag) {
					t.Errorf("FirstRoutingTag(empty) err = %v", err)
				}
			} else if err != nil || string(first) != tc.tags[0] {
				t.Errorf("FirstRoutingTag = %q, %v", first, err)
			}
		})
	}
}

func TestRoutingEncodeErrors(t *testing.T) {
	bad := []string{"", strings.Repeat("x", 256), "bad\xff"}
	for _, tag := range bad {
		out, err := EncodeRouting([]byte("keep"), "ok", tag)
		if !errors.Is(err, ErrInvalid) || string(out) != "keep" {
			t.Errorf("EncodeRouting(%q) = % x, %v", tag, out, err)
		}
		if _, err := AppendRoutingTagChecked(nil, []byte(tag)); !errors.Is(err, ErrInvalid) {
			t.Errorf("AppendRoutingTagChecked(%q) err = %v", tag, err)
		}
		if err := CheckRoutingTagString(tag); !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckRoutingTagString(%q) err = %v", tag, err)
		}
	}
	mustPanic(t, "AppendRoutingTag(empty)", func() { AppendRoutingTag(nil, nil) })
	mustPanic(t, "AppendRoutingTag(256)", func() { AppendRoutingTag(nil, make([]byte, 256)) })
	mustPanic(t, "AppendRouting(256)", func() { AppendRouting(nil, strings.Repeat("x", 256)) })
	if b, err := AppendRoutingTagChecked([]byte("\x01a"), []byte("bc")); err != nil || string(b) != "\x01a\x02bc" {
		t.Errorf("AppendRoutingTagChecked = % x, %v", b, err)
	}
}

func TestRoutingBeginEnd(t *testing.T) {
	b, mark := BeginRoutingTag([]byte("\x01a"))
	b = append(b, "users."...)
	b = append(b, "42"...)
	b, err := EndRoutingTag(b, mark)
	if err != nil || string(b) != "\x01a\x08users.42" {
		t.Errorf("got % x, %v", b, err)
	}
	b, mark = BeginRoutingTag(b)
	b = append(b, strings.Repeat("z", 256)...)
	b, err = EndRoutingTag(b, mark)
	if !errors.Is(err, ErrInvalid) || string(b) != "\x01a\x08users.42" {
		t.Errorf("oversized tag: % x, %v", b, err)
	}
	b, mark = BeginRoutingTag(b)
	if b, err = EndRoutingTag(b, mark); !errors.Is(err, ErrInvalid) || len(b) != 11 {
		t.Errorf("empty tag: % x, %v", b, err)
	}
}

func TestRoutingDecodeErrors(t *testing.T) {
	cases := []struct {
		name, wire string
		good, off  int
	}{
		{"zero length tag", "\x00", 0, 0},
		{"truncated tag", "\x05abc", 0, 0},
		{"invalid UTF-8", "\x02\xff\xfe", 0, 1},
		{"bad second tag", "\x01a\x03bc", 1, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			it := NewRoutingIter([]byte(c.wire))
			n := 0
			for it.Next() {
				n++
			}
			var de *DecodeError
			if !errors.As(it.Err(), &de) || !errors.Is(it.Err(), ErrMalformed) || n != c.good || de.Offset != c.off {
				t.Errorf("n=%d err=%v; want %d tags then an error at %d", n, it.Err(), c.good, c.off)
			}
			if _, err := FirstRoutingTag([]byte(c.wire)); !errors.Is(err, ErrMalformed) {
				t.Errorf("FirstRoutingTag err = %v", err)
			}
		})
	}
}
