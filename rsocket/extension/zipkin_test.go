package extension

import (
	"errors"
	"testing"
)

// Golden tracing values from Tracing-Zipkin.md's layout with rsocket-java TracingMetadataCodec's flag bits:
// encode64(traceId, spanId, SAMPLE), encode64 with a parent and NOT_SAMPLE, encode128(..., DEBUG) with a
// parent, and encodeEmpty(NOT_SAMPLE).
var zipkinGolden = []struct {
	name string
	wire string
	z    Zipkin
}{
	{
		name: "64-bit sampled",
		wire: "\xa0" + "\x00\x00\x00\x00\x00\x00\x00\x01" + "\x00\x00\x00\x00\x00\x00\x00\x02",
		z:    Zipkin{Flags: 0xa0, TraceID: 1, SpanID: 2},
	},
	{
		name: "64-bit not sampled with parent",
		wire: "\x94" + "\x11\x22\x33\x44\x55\x66\x77\x88" + "\x99\xaa\xbb\xcc\xdd\xee\xff\x00" + "\x01\x02\x03\x04\x05\x06\x07\x08",
		z:    Zipkin{Flags: 0x94, TraceID: 0x1122334455667788, SpanID: 0x99aabbccddeeff00, ParentID: 0x0102030405060708},
	},
	{
		name: "128-bit debug with parent",
		wire: "\xcc" + "\xff\xff\xff\xff\xff\xff\xff\xfe" + "\x00\x00\x00\x00\x00\x00\x00\x03" +
			"\x00\x00\x00\x00\x00\x00\x00\x04" + "\x00\x00\x00\x00\x00\x00\x00\x05",
		z: Zipkin{Flags: 0xcc, TraceIDHigh: 0xfffffffffffffffe, TraceID: 3, SpanID: 4, ParentID: 5},
	},
	{name: "empty, not sampled", wire: "\x10", z: Zipkin{Flags: 0x10}},
	{name: "empty, undecided", wire: "\x00", z: Zipkin{}},
}

func TestZipkinGolden(t *testing.T) {
	for _, tc := range zipkinGolden {
		t.Run(tc.name, func(t *testing.T) {
			if b := AppendZipkin(nil, &tc.z); string(b) != tc.wire {
				t.Errorf("AppendZipkin = % x\nwant % x", b, tc.wire)
			}
			if tc.z.Len() != len(tc.wire) {
				t.Errorf("Len = %d, want %d", tc.z.Len(), len(tc.wire))
			}
			z, err := ParseZipkin([]byte(tc.wire))
			if err != nil || z != tc.z {
				t.Errorf("ParseZipkin = %+v, %v", z, err)
			}
		})
	}
	if ZipkinFlagIDsSet != 0x80 || ZipkinFlagDebug != 0x40 || ZipkinFlagSampled != 0x20 ||
		ZipkinFlagNotSampled != 0x10 || ZipkinFlagTraceID128 != 0x08 || ZipkinFlagParent != 0x04 {
		t.Error("zipkin flag values differ from rsocket-java's TracingMetadataCodec")
	}
}

func TestZipkinErrors(t *testing.T) {
	cases := []string{
		"",
		"\x80\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00",               // span id one byte short
		"\x88" + "\x00\x00\x00\x00\x00\x00\x00\x01" + "\x00\x00\x00\x00\x00\x00\x00\x02", // 128-bit: span missing
		"\x10\x00", // trailing byte without ids
		"\xa0" + "\x00\x00\x00\x00\x00\x00\x00\x01" + "\x00\x00\x00\x00\x00\x00\x00\x02" + "\x00", // trailing
	}
	for _, wire := range cases {
		if _, err := ParseZipkin([]byte(wire)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseZipkin(% x) err = %v", wire, err)
		}
	}
}

func TestZipkinSampled(t *testing.T) {
	cases := []struct {
		flags            uint8
		sampled, decided bool
	}{
		{0x00, false, false}, {ZipkinFlagSampled, true, true}, {ZipkinFlagNotSampled, false, true},
		{ZipkinFlagDebug, true, true}, {ZipkinFlagIDsSet | ZipkinFlagParent, false, false},
	}
	for _, c := range cases {
		z := Zipkin{Flags: c.flags}
		if s, d := z.Sampled(); s != c.sampled || d != c.decided {
			t.Errorf("flags %#x: Sampled = %v, %v", c.flags, s, d)
		}
	}
}

// The example of the W3C Trace Context recommendation, section "traceparent Header".
const w3cExample = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestTraceparent(t *testing.T) {
	z, ok := ZipkinFromTraceparent([]byte(w3cExample))
	want := Zipkin{Flags: 0xa8, TraceIDHigh: 0x4bf92f3577b34da6, TraceID: 0xa3ce929d0e0e4736, SpanID: 0x00f067aa0ba902b7}
	if !ok || z != want {
		t.Fatalf("ZipkinFromTraceparent = %+v, %v; want %+v", z, ok, want)
	}
	wire := "\xa8\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6\xa3\xce\x92\x9d\x0e\x0e\x47\x36\x00\xf0\x67\xaa\x0b\xa9\x02\xb7"
	if b := AppendZipkin(nil, &z); string(b) != wire {
		t.Errorf("zipkin bytes % x", b)
	}
	if b, ok := AppendTraceparent(nil, &z); !ok || string(b) != w3cExample {
		t.Errorf("AppendTraceparent = %q, %v", b, ok)
	}
	z, ok = ZipkinFromTraceparent([]byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"))
	if !ok || z.Flags != 0x98 {
		t.Errorf("not sampled: flags %#x, %v", z.Flags, ok)
	}
	// a later version may append fields after a '-'
	if _, ok := ZipkinFromTraceparent([]byte("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra")); !ok {
		t.Error("version 01 with extra fields rejected")
	}
	// 64-bit zipkin ids go out with zero high bits; debug counts as sampled
	z64 := Zipkin{Flags: ZipkinFlagIDsSet | ZipkinFlagDebug, TraceID: 0x1f, SpanID: 0x2}
	if b, ok := AppendTraceparent([]byte("x"), &z64); !ok ||
		string(b) != "x00-0000000000000000000000000000001f-0000000000000002-01" {
		t.Errorf("64-bit AppendTraceparent = %q", b)
	}

	invalid := []string{
		"",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",    // short
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", // version 00 with extra
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // version ff
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   // upper case
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",   // zero trace id
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   // zero span id
		"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // separator
		"00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
		"0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // bad version hex
		"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",  // bad hex in trace id
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",  // bad flags
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", // later version, no '-'
	}
	for _, s := range invalid {
		if z, ok := ZipkinFromTraceparent([]byte(s)); ok {
			t.Errorf("ZipkinFromTraceparent(%q) accepted: %+v", s, z)
		}
	}
	for _, z := range []Zipkin{{Flags: ZipkinFlagSampled}, {Flags: ZipkinFlagIDsSet, SpanID: 1}, {Flags: ZipkinFlagIDsSet, TraceID: 1}} {
		if b, ok := AppendTraceparent([]byte("k"), &z); ok || string(b) != "k" {
			t.Errorf("AppendTraceparent(%+v) = %q, %v", z, b, ok)
		}
	}
}
