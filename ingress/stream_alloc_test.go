//go:build !race

package ingress

import (
	"bufio"
	"io"
	"testing"

	"github.com/valyala/bytebufferpool"
)

// TestWriteItemsAllocs: writing stream items (resumable SSE ids, plain SSE, NDJSON) allocates nothing.
func TestWriteItemsAllocs(t *testing.T) {
	items := []*bytebufferpool.ByteBuffer{{B: []byte(`{"tick":1}`)}, {B: []byte("a\nb")}}
	w := bufio.NewWriter(io.Discard)
	done := make(chan struct{})
	for _, sr := range []*streamer{{format: formatSSE, rs: &resumable{}}, {format: formatSSE}, {format: formatNDJSON}} {
		if n := testing.AllocsPerRun(100, func() { _, _ = sr.writeItems(w, items, 7, done) }); n != 0 {
			t.Errorf("format %d resumable %v: %v allocs per batch", sr.format, sr.rs != nil, n)
		}
	}
}
