package httpmeta

import (
	"bytes"
	"errors"
	"testing"
)

// The example of docs/METADATA.md, byte for byte.
const exampleRequest = "\x01\x01" + // version 1, kind request
	"\x04POST" + // method
	"\x00\x0d/api/echo?x=1" + // target
	"\x00\x02" + // 2 headers
	"\x0ccontent-type\x00\x10application/json" +
	"\x0ax-trace-id\x00\x03abc"

const exampleResponse = "\x01\x02" + // version 1, kind response
	"\x00\xc9" + // status 201
	"\x00\x01" + // 1 header
	"\x08location\x00\x0a/api/users"

func TestAppendRequestWireBytes(t *testing.T) {
	got, err := AppendRequest(nil, []byte("POST"), []byte("/api/echo?x=1"),
		Header{[]byte("Content-Type"), []byte("application/json")},
		Header{[]byte("X-Trace-ID"), []byte("abc")})
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != exampleRequest {
		t.Fatalf("got  %q\nwant %q", got, exampleRequest)
	}
}

func TestAppendResponseWireBytes(t *testing.T) {
	got, err := AppendResponse([]byte("prefix"), 201, Header{[]byte("Location"), []byte("/api/users")})
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "prefix"+exampleResponse {
		t.Fatalf("got  %q\nwant %q", got, exampleResponse)
	}
}

func TestParseRequest(t *testing.T) {
	v, err := ParseRequest([]byte(exampleRequest))
	if err != nil {
		t.Fatal(err)
	}
	if string(v.Method) != "POST" || string(v.Target) != "/api/echo?x=1" || v.Headers.Len() != 2 {
		t.Fatalf("view %q %q %d", v.Method, v.Target, v.Headers.Len())
	}
	if val, ok := v.Headers.Get("X-TRACE-ID"); !ok || string(val) != "abc" {
		t.Fatalf("Get = %q %v", val, ok)
	}
	if _, ok := v.Headers.Get("x-missing"); ok {
		t.Fatal("found a missing header")
	}
	it := v.Headers
	var names []string
	for it.Next() {
		names = append(names, string(it.Name())+"="+string(it.Value()))
	}
	if len(names) != 2 || names[0] != "content-type=application/json" || names[1] != "x-trace-id=abc" {
		t.Fatalf("headers %v", names)
	}
	if it.Next() {
		t.Fatal("Next after the end")
	}
}

func TestParseResponse(t *testing.T) {
	v, err := ParseResponse([]byte(exampleResponse + "\xff")) // trailing bytes are ignored
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != 201 {
		t.Fatalf("status %d", v.Status)
	}
	if loc, ok := v.Headers.Get("location"); !ok || string(loc) != "/api/users" {
		t.Fatalf("location %q", loc)
	}
}

func TestTruncatedIsMalformed(t *testing.T) {
	for _, tc := range []struct {
		name  string
		entry string
		parse func([]byte) error
	}{
		{"request", exampleRequest, func(b []byte) error { _, err := ParseRequest(b); return err }},
		{"response", exampleResponse, func(b []byte) error { _, err := ParseResponse(b); return err }},
	} {
		for n := 0; n < len(tc.entry); n++ {
			err := tc.parse([]byte(tc.entry[:n]))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("%s truncated to %d: err = %v, want ErrMalformed", tc.name, n, err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Offset < 0 || pe.Offset > n {
				t.Fatalf("%s truncated to %d: bad ParseError %#v", tc.name, n, err)
			}
		}
	}
}

func TestVersionAndKind(t *testing.T) {
	if _, err := ParseRequest([]byte("\x02" + exampleRequest[1:])); !errors.Is(err, ErrVersion) || errors.Is(err, ErrMalformed) {
		t.Fatalf("version 2: %v", err)
	}
	if _, err := ParseRequest([]byte(exampleResponse)); !errors.Is(err, ErrVersion) {
		t.Fatalf("response parsed as request: %v", err)
	}
	if _, err := ParseResponse([]byte(exampleRequest)); !errors.Is(err, ErrVersion) {
		t.Fatalf("request parsed as response: %v", err)
	}
}

func TestEncodeLimits(t *testing.T) {
	long := bytes.Repeat([]byte("a"), 256)
	if _, err := AppendRequest(nil, long, nil); !errors.Is(err, ErrTooLong) {
		t.Fatalf("long method: %v", err)
	}
	if _, err := AppendRequest(nil, []byte("GET"), bytes.Repeat([]byte("/"), 65536)); !errors.Is(err, ErrTooLong) {
		t.Fatalf("long target: %v", err)
	}
	dst := []byte("keep")
	out, err := AppendRequest(dst, []byte("GET"), []byte("/"), Header{long, nil})
	if !errors.Is(err, ErrTooLong) || string(out) != "keep" {
		t.Fatalf("long name: %v %q", err, out)
	}
	if _, err := AppendResponse(nil, 70000); !errors.Is(err, ErrTooLong) {
		t.Fatalf("status 70000: %v", err)
	}
	b, at, _ := AppendResponseHead(nil, 200)
	if err := SetHeaderCount(b, at, MaxHeaders+1); !errors.Is(err, ErrTooManyHeaders) {
		t.Fatalf("count: %v", err)
	}
	// The maximum lengths themselves are fine and round-trip.
	maxv := bytes.Repeat([]byte("v"), MaxValueLen)
	b, err = AppendRequest(nil, long[:MaxMethodLen], maxv, Header{long[:MaxNameLen], maxv})
	if err != nil {
		t.Fatal(err)
	}
	v, err := ParseRequest(b)
	if err != nil || len(v.Method) != MaxMethodLen || len(v.Target) != MaxValueLen {
		t.Fatalf("max lengths: %v", err)
	}
	if got, ok := v.Headers.Get(string(long[:MaxNameLen])); !ok || len(got) != MaxValueLen {
		t.Fatalf("max header: %v %d", ok, len(got))
	}
}

func TestIncrementalMatchesWhole(t *testing.T) {
	b, at, err := AppendRequestHead(make([]byte, 0, 64), []byte("GET"), []byte("/x"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = AppendHeader(b, []byte("A"), []byte("1"))
	b, _ = AppendHeader(b, []byte("b"), []byte(""))
	if err := SetHeaderCount(b, at, 2); err != nil {
		t.Fatal(err)
	}
	whole, _ := AppendRequest(nil, []byte("GET"), []byte("/x"), Header{[]byte("a"), []byte("1")}, Header{[]byte("B"), nil})
	if !bytes.Equal(b, whole) {
		t.Fatalf("incremental %q != whole %q", b, whole)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(exampleRequest))
	f.Add([]byte(exampleResponse))
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := ParseRequest(b); err == nil {
			hs := make([]Header, 0, v.Headers.Len())
			it := v.Headers
			for it.Next() {
				hs = append(hs, Header{it.Name(), it.Value()})
			}
			out, err := AppendRequest(nil, v.Method, v.Target, hs...)
			if err != nil {
				t.Fatal(err)
			}
			v2, err := ParseRequest(out)
			if err != nil || !bytes.Equal(v2.Method, v.Method) || !bytes.Equal(v2.Target, v.Target) || v2.Headers.Len() != len(hs) {
				t.Fatalf("round trip: %v", err)
			}
		}
		if v, err := ParseResponse(b); err == nil {
			it := v.Headers
			for it.Next() {
				_ = it.Value()
			}
		}
	})
}
