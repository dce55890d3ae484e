package transport

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// splitReader returns the first cut bytes in 1-byte reads, then the rest in reads of at most
// chunk bytes, so the fuzzer exercises both split and whole-buffer paths.
type splitReader struct {
	b          []byte
	cut, chunk int
}

func (s *splitReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := s.chunk
	if s.cut > 0 {
		n = 1
		s.cut--
	}
	n = min(n, len(p), len(s.b))
	copy(p, s.b[:n])
	s.b = s.b[n:]
	return n, nil
}

func FuzzTCPRead(f *testing.F) {
	f.Add([]byte(goldenTwoFrames), 0, 7, 64)
	f.Add([]byte(goldenTwoFrames), 5, 1, 64)
	f.Add([]byte("\x00\x00"), 0, 100, 0)
	f.Add([]byte("\x00\x00\x00\x00\x00\x00"), 1, 2, 64)
	f.Add([]byte("\xff\xff\xff"), 0, 3, 0)
	f.Add(append([]byte("\x00\x00\x50"), make([]byte, 0x50)...), 3, 9, 64)
	f.Add(append([]byte("\x00\x01\x00"), make([]byte, 200)...), 0, 50, 64)
	f.Fuzz(func(t *testing.T, in []byte, cut, chunk, rbs int) {
		max := 1 << 10
		c := newStreamConn(rwc{Reader: &splitReader{b: in, cut: cut % 64, chunk: 1 + abs(chunk%4096)}, Writer: io.Discard},
			Options{ReadBufferSize: rbs % 2048, MaxFrameLen: max}, false)
		// Reference parse of the same bytes.
		rest := in
		for {
			f, err := c.ReadFrame()
			if len(rest) < prefixLen {
				want := io.ErrUnexpectedEOF
				if len(rest) == 0 {
					want = io.EOF
				}
				if err != want {
					t.Fatalf("%d bytes left: got %v, want %v", len(rest), err, want)
				}
				return
			}
			n := int(rest[0])<<16 | int(rest[1])<<8 | int(rest[2])
			switch {
			case n > max:
				if !errors.Is(err, ErrFrameTooLarge) {
					t.Fatalf("frame of %d over limit: got %v", n, err)
				}
				return
			case len(rest)-prefixLen < n:
				if err != io.ErrUnexpectedEOF {
					t.Fatalf("truncated frame: got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("valid frame of %d bytes: %v", n, err)
			}
			if len(f) != n || !bytes.Equal(f, rest[prefixLen:prefixLen+n]) {
				t.Fatalf("frame: got %d bytes, want %d", len(f), n)
			}
			rest = rest[prefixLen+n:]
		}
	})
}

// FuzzTCPRoundTrip: whatever frames are written come back identical through the reader.
func FuzzTCPRoundTrip(f *testing.F) {
	f.Add([]byte("hello"), []byte("md"), []byte("data"), 3, 0)
	f.Add([]byte{}, []byte{}, []byte{}, 1, -1)
	f.Add(make([]byte, 600), make([]byte, 10), make([]byte, 3000), 5, 100)
	f.Fuzz(func(t *testing.T, head, md, data []byte, count, copyMax int) {
		count = 1 + abs(count%4)
		var wire bytes.Buffer
		w := newStreamConn(rwc{Reader: bytes.NewReader(nil), Writer: &wire}, Options{WriteCopyThreshold: copyMax % 5000}, false)
		for range count {
			if err := w.WriteFrame(head, md, data); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		want := append(append(append([]byte{}, head...), md...), data...)
		r := newStreamConn(rwc{Reader: &splitReader{b: wire.Bytes(), cut: 5, chunk: 37}, Writer: io.Discard}, Options{ReadBufferSize: 64}, false)
		for i := range count {
			f, err := r.ReadFrame()
			if err != nil || !bytes.Equal(f, want) {
				t.Fatalf("frame %d: %d bytes, %v", i, len(f), err)
			}
		}
		if _, err := r.ReadFrame(); err != io.EOF {
			t.Fatalf("after frames: %v", err)
		}
	})
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
