//go:build !race

package httpmeta

import "testing"

func TestAllocs(t *testing.T) {
	buf := make([]byte, 0, 256)
	method, target := []byte("POST"), []byte("/api/echo?x=1")
	name, value := []byte("Content-Type"), []byte("application/json")
	entry := []byte(exampleRequest)
	n := testing.AllocsPerRun(100, func() {
		b, at, _ := AppendRequestHead(buf[:0], method, target)
		b, _ = AppendHeader(b, name, value)
		_ = SetHeaderCount(b, at, 1)
		v, err := ParseRequest(entry)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := v.Headers.Get("x-trace-id"); !ok {
			t.Fatal("missing")
		}
	})
	if n != 0 {
		t.Fatalf("%v allocs per run, want 0", n)
	}
}

func BenchmarkAppendRequest(b *testing.B) {
	buf := make([]byte, 0, 256)
	method, target := []byte("POST"), []byte("/api/echo?x=1")
	name, value := []byte("Content-Type"), []byte("application/json")
	b.ReportAllocs()
	for b.Loop() {
		out, at, _ := AppendRequestHead(buf[:0], method, target)
		out, _ = AppendHeader(out, name, value)
		_ = SetHeaderCount(out, at, 1)
	}
}

func BenchmarkParseRequest(b *testing.B) {
	entry := []byte(exampleRequest)
	b.ReportAllocs()
	for b.Loop() {
		v, _ := ParseRequest(entry)
		for v.Headers.Next() {
		}
	}
}
