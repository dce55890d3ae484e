package extension

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// Sinks keep results alive so the compiler cannot drop the measured work.
var (
	sinkBytes []byte
	sinkBool  bool
	sinkInt   int
)

func BenchmarkBuildComposite(b *testing.B) {
	buf := make([]byte, 0, 512)
	tag := []byte("users.42")
	token := []byte("eyJhbGciOiJIUzI1NiJ9.e30.signature")
	b.ReportAllocs()
	for b.Loop() {
		out, _ := AppendCompositeRoute(buf[:0], tag)
		out, _ = AppendCompositeBearer(out, token)
		sinkBytes = out
	}
}

// BenchmarkBuildCompositeBytesBuffer is the standard-library alternative for comparison: a bytes.Buffer per
// request with the same bytes written.
func BenchmarkBuildCompositeBytesBuffer(b *testing.B) {
	tag := []byte("users.42")
	token := []byte("eyJhbGciOiJIUzI1NiJ9.e30.signature")
	b.ReportAllocs()
	for b.Loop() {
		var w bytes.Buffer
		var l [4]byte
		w.WriteByte(IDRouting | 0x80)
		binary.BigEndian.PutUint32(l[:], uint32(1+len(tag)))
		w.Write(l[1:])
		w.WriteByte(byte(len(tag)))
		w.Write(tag)
		w.WriteByte(IDAuth | 0x80)
		binary.BigEndian.PutUint32(l[:], uint32(1+len(token)))
		w.Write(l[1:])
		w.WriteByte(0x81)
		w.Write(token)
		sinkBytes = w.Bytes()
	}
}

func BenchmarkCompositeIter(b *testing.B) {
	md := []byte(compositeGolden[3].wire)
	b.ReportAllocs()
	b.SetBytes(int64(len(md)))
	for b.Loop() {
		it := NewCompositeIter(md)
		n := 0
		for it.Next() {
			n += len(it.Entry().Value)
		}
		sinkInt = n
	}
}

func BenchmarkFirstRoutingTag(b *testing.B) {
	md := []byte(compositeGolden[3].wire)
	b.ReportAllocs()
	for b.Loop() {
		r, _ := FindComposite(md, MimeRouting)
		sinkBytes, _ = FirstRoutingTag(r)
	}
}

func BenchmarkMimeID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_, sinkBool = MimeID("application/json")
	}
}

func BenchmarkZipkinFromTraceparent(b *testing.B) {
	tp := []byte(w3cExample)
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		z, _ := ZipkinFromTraceparent(tp)
		sinkBytes = AppendZipkin(buf[:0], &z)
	}
}
