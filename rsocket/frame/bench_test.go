package frame

import (
	"bytes"
	"testing"
)

var (
	benchMD   = []byte("\xfe\x00\x00\x0d\x0cuser.getById") // small composite metadata (routing)
	benchData = bytes.Repeat([]byte("d"), 1024)
	benchSink int
)

func BenchmarkEncodeRequestResponse(b *testing.B) {
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	b.SetBytes(int64(FrameLen(TypeRequestResponse, len(benchMD), len(benchData), true)))
	ct := startCPU(b)
	for i := 0; i < b.N; i++ {
		buf = AppendRequestResponse(buf[:0], uint32(i)|1, false, benchMD, benchData)
	}
	ct.stop(b)
	benchSink += len(buf)
}

func BenchmarkEncodePayload(b *testing.B) {
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	b.SetBytes(int64(FrameLen(TypePayload, len(benchMD), len(benchData), true)))
	ct := startCPU(b)
	for i := 0; i < b.N; i++ {
		buf = AppendPayload(buf[:0], uint32(i)|1, FlagNext|FlagComplete, benchMD, benchData)
	}
	ct.stop(b)
	benchSink += len(buf)
}

// Gather path: only the prefix is encoded; metadata and data are written by the transport as-is.
func BenchmarkEncodePayloadPrefix(b *testing.B) {
	buf := make([]byte, 0, 16)
	b.ReportAllocs()
	ct := startCPU(b)
	for i := 0; i < b.N; i++ {
		buf = AppendPrefix(buf[:0], TypePayload, uint32(i)|1, FlagNext|FlagComplete, 0, len(benchMD), true)
	}
	ct.stop(b)
	benchSink += len(buf)
}

func BenchmarkParseRequestResponse(b *testing.B) {
	fr := AppendRequestResponse(nil, 1, false, benchMD, benchData)
	b.ReportAllocs()
	b.SetBytes(int64(len(fr)))
	ct := startCPU(b)
	for i := 0; i < b.N; i++ {
		f, err := Parse(fr)
		if err != nil {
			b.Fatal(err)
		}
		benchSink += len(f.Metadata()) + len(f.Data()) + int(f.StreamID()) + int(f.Type())
	}
	ct.stop(b)
}

func BenchmarkParsePayload(b *testing.B) {
	fr := AppendPayload(nil, 1, FlagNext|FlagComplete, benchMD, benchData)
	b.ReportAllocs()
	b.SetBytes(int64(len(fr)))
	ct := startCPU(b)
	for i := 0; i < b.N; i++ {
		f, err := Parse(fr)
		if err != nil {
			b.Fatal(err)
		}
		benchSink += len(f.Metadata()) + len(f.Data()) + int(f.StreamID()) + int(f.Flags())
	}
	ct.stop(b)
}

func BenchmarkFragmentPayload64K(b *testing.B) {
	data := bytes.Repeat([]byte("d"), 64<<10)
	buf := make([]byte, 0, 16)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		fr := NewFragmenter(16<<10, TypePayload, FlagNext|FlagComplete, 0, benchMD, data)
		for f, ok := fr.Next(); ok; f, ok = fr.Next() {
			buf = f.AppendPrefix(buf[:0], 1)
		}
	}
	benchSink += len(buf)
}
