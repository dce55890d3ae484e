package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// rwc adapts a reader and a writer into an io.ReadWriter for driving streamConn directly.
type rwc struct {
	io.Reader
	io.Writer
}

// oneByteReader returns at most one byte per Read, forcing every split-read path.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

// Two frames written then flushed: exact bytes on the wire (RSocket 1.0 "Framing Format":
// 24-bit frame length not counting itself, big-endian).
const goldenTwoFrames = "\x00\x00\x0a" + "\x00\x00\x00\x01\x28\x00" + "md" + "hi" +
	"\x00\x00\x06" + "\x00\x00\x00\x00\x0c\x00"

func TestTCPWriteGolden(t *testing.T) {
	for _, copyMax := range []int{-1, 0, 1, 3, 1 << 20} {
		var out bytes.Buffer
		c := newStreamConn(rwc{Reader: bytes.NewReader(nil), Writer: &out}, Options{WriteCopyThreshold: copyMax}, false)
		if err := c.WriteFrame([]byte("\x00\x00\x00\x01\x28\x00"), []byte("md"), []byte("hi")); err != nil {
			t.Fatal(err)
		}
		if err := c.WriteFrame([]byte("\x00\x00\x00\x00\x0c\x00"), nil, nil); err != nil {
			t.Fatal(err)
		}
		if out.Len() != 0 {
			t.Fatalf("copyMax=%d: WriteFrame wrote %d bytes before Flush", copyMax, out.Len())
		}
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
		if got := out.String(); got != goldenTwoFrames {
			t.Fatalf("copyMax=%d: wire bytes\n got %q\nwant %q", copyMax, got, goldenTwoFrames)
		}
		for i, b := range c.bufs[:cap(c.bufs)] {
			if b != nil {
				t.Fatalf("copyMax=%d: bufs[%d] still referenced after Flush", copyMax, i)
			}
		}
	}
}

func TestTCPReadGolden(t *testing.T) {
	want := [][]byte{[]byte("\x00\x00\x00\x01\x28\x00mdhi"), []byte("\x00\x00\x00\x00\x0c\x00")}
	readers := map[string]func() io.Reader{
		"whole":   func() io.Reader { return bytes.NewReader([]byte(goldenTwoFrames)) },
		"onebyte": func() io.Reader { return oneByteReader{bytes.NewReader([]byte(goldenTwoFrames))} },
	}
	for name, mk := range readers {
		for _, rbs := range []int{0, 64} { // default buffer, and the minimum
			t.Run(name, func(t *testing.T) {
				c := newStreamConn(rwc{Reader: mk(), Writer: io.Discard}, Options{ReadBufferSize: rbs}, false)
				for i, w := range want {
					f, err := c.ReadFrame()
					if err != nil {
						t.Fatalf("frame %d: %v", i, err)
					}
					if !bytes.Equal(f, w) {
						t.Fatalf("frame %d: got %q want %q", i, f, w)
					}
				}
				if _, err := c.ReadFrame(); err != io.EOF {
					t.Fatalf("after last frame: got %v, want io.EOF", err)
				}
			})
		}
	}
}

func TestTCPReadLargeFrameSplit(t *testing.T) {
	// Frames larger than the read buffer go through the pooled buffer path; mix sizes around
	// the buffer size and read one byte at a time.
	sizes := []int{0, 1, 63, 64, 65, 200, 5000, 64}
	var wire bytes.Buffer
	w := newStreamConn(rwc{Reader: bytes.NewReader(nil), Writer: &wire}, Options{}, false)
	var frames [][]byte
	for i, n := range sizes {
		f := bytes.Repeat([]byte{byte(i + 1)}, n)
		frames = append(frames, f)
		if err := w.WriteFrame(nil, nil, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, split := range []bool{false, true} {
		var r io.Reader = bytes.NewReader(wire.Bytes())
		if split {
			r = oneByteReader{r}
		}
		c := newStreamConn(rwc{Reader: r, Writer: io.Discard}, Options{ReadBufferSize: 64}, false)
		for i, want := range frames {
			f, err := c.ReadFrame()
			if err != nil {
				t.Fatalf("split=%v frame %d: %v", split, i, err)
			}
			if !bytes.Equal(f, want) {
				t.Fatalf("split=%v frame %d: got %d bytes, want %d", split, i, len(f), len(want))
			}
		}
		if _, err := c.ReadFrame(); err != io.EOF {
			t.Fatalf("split=%v: got %v, want io.EOF", split, err)
		}
	}
}

func TestTCPReadTruncated(t *testing.T) {
	cases := map[string]string{
		"partial prefix":         "\x00\x00",
		"prefix only":            "\x00\x00\x06",
		"partial body":           "\x00\x00\x06\x00\x00\x00",
		"partial large body":     "\x00\x01\x00" + string(make([]byte, 100)),
		"second frame truncated": "\x00\x00\x01A\x00",
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			c := newStreamConn(rwc{Reader: bytes.NewReader([]byte(in)), Writer: io.Discard}, Options{ReadBufferSize: 64}, false)
			var err error
			for range 3 {
				if _, err = c.ReadFrame(); err != nil {
					break
				}
			}
			if err != io.ErrUnexpectedEOF {
				t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
			}
			if _, err2 := c.ReadFrame(); err2 != err {
				t.Fatalf("error not sticky: got %v", err2)
			}
		})
	}
}

func TestTCPMaxFrameLen(t *testing.T) {
	// Read: a prefix announcing 11 bytes with a limit of 10 fails before reading the body.
	c := newStreamConn(rwc{Reader: bytes.NewReader([]byte("\x00\x00\x0a0123456789\x00\x00\x0b")), Writer: io.Discard}, Options{MaxFrameLen: 10}, false)
	if f, err := c.ReadFrame(); err != nil || string(f) != "0123456789" {
		t.Fatalf("frame at the limit: %q, %v", f, err)
	}
	_, err := c.ReadFrame()
	var fse *FrameSizeError
	if !errors.Is(err, ErrFrameTooLarge) || !errors.As(err, &fse) || fse.Size != 11 || fse.Limit != 10 || fse.Op != "read" {
		t.Fatalf("got %v, want FrameSizeError{read, 11, 10}", err)
	}

	// Write: the total of the three pieces counts; a rejected frame leaves the batch intact.
	var out bytes.Buffer
	w := newStreamConn(rwc{Reader: bytes.NewReader(nil), Writer: &out}, Options{MaxFrameLen: 10}, false)
	if err := w.WriteFrame([]byte("0123"), []byte("456"), []byte("789")); err != nil {
		t.Fatal(err)
	}
	err = w.WriteFrame([]byte("0123"), []byte("456"), []byte("789A"))
	if !errors.As(err, &fse) || fse.Size != 11 || fse.Op != "write" {
		t.Fatalf("got %v, want write FrameSizeError of 11", err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "\x00\x00\x0a0123456789" {
		t.Fatalf("wire: %q", out.String())
	}

	// The default limit is the 24-bit maximum and larger options are clamped to it.
	big := make([]byte, MaxFrameLen+1)
	w = newStreamConn(rwc{Reader: bytes.NewReader(nil), Writer: io.Discard}, Options{MaxFrameLen: 1 << 30}, false)
	if err := w.WriteFrame(nil, nil, big); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("frame of 1<<24 bytes: got %v", err)
	}
	if err := w.WriteFrame(nil, nil, big[:MaxFrameLen]); err != nil {
		t.Fatalf("frame of MaxFrameLen bytes: %v", err)
	}
}

func TestTCPScratchChunkGrowth(t *testing.T) {
	// Many small frames overflow the first scratch chunk; earlier entries must stay intact.
	var out bytes.Buffer
	c := newStreamConn(rwc{Reader: bytes.NewReader(nil), Writer: &out}, Options{}, false)
	var want bytes.Buffer
	for i := range 3000 {
		d := []byte{byte(i), byte(i >> 8), 'x'}
		if err := c.WriteFrame(d[:2], nil, d[2:]); err != nil {
			t.Fatal(err)
		}
		want.Write([]byte{0, 0, 3})
		want.Write(d)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want.Bytes()) {
		t.Fatal("wire bytes differ after scratch growth")
	}
}

// loopbackPair returns a connected pair over 127.0.0.1 TCP.
func loopbackPair(t testing.TB, opts Options) (client, server Conn) {
	t.Helper()
	ln, err := ListenTCPWith("127.0.0.1:0", nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, err = DialTCPWith(ctx, ln.Addr().String(), nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { client.Close(); r.c.Close() })
	return client, r.c
}

func TestTCPLoopback(t *testing.T) {
	client, server := loopbackPair(t, Options{})
	testExchange(t, client, server)
	testCloseSemantics(t, client, server)
}

func TestTCPLocalCloseUnblocksRead(t *testing.T) {
	client, _ := loopbackPair(t, Options{})
	closeUnblocksRead(t, client, net.ErrClosed)
	if err := client.WriteFrame([]byte("x"), nil, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("WriteFrame after Close: %v", err)
	}
	if err := client.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// After a frame larger than the read buffer, the next ReadFrame gives the big buffer back so
// that an idle connection does not pin it.
func TestTCPLargeBufferReleased(t *testing.T) {
	var wire bytes.Buffer
	w := newStreamConn(rwc{Reader: bytes.NewReader(nil), Writer: &wire}, Options{}, false)
	w.WriteFrame(nil, nil, make([]byte, 1<<20))
	w.WriteFrame([]byte("small"), nil, nil)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	c := newStreamConn(rwc{Reader: &wire, Writer: io.Discard}, Options{}, false)
	if f, err := c.ReadFrame(); err != nil || len(f) != 1<<20 {
		t.Fatalf("large frame: %d bytes, %v", len(f), err)
	}
	if c.big == nil || cap(c.big.B) < 1<<20 {
		t.Fatal("large frame not read into a pooled buffer")
	}
	if f, err := c.ReadFrame(); err != nil || string(f) != "small" {
		t.Fatalf("small frame: %q, %v", f, err)
	}
	if c.big != nil || len(c.rbuf) != defaultReadBufferSize {
		t.Fatalf("after a small frame: big buffer held=%v, read buffer %d bytes", c.big != nil, len(c.rbuf))
	}
}

// TestTCPBuffered: Buffered reports a whole frame in the read buffer (the next ReadFrame reads nothing from
// the connection), not a prefix alone or a frame cut short.
func TestTCPBuffered(t *testing.T) {
	// goldenTwoFrames, then the prefix and part of a third frame of 6 bytes.
	wire := goldenTwoFrames + "\x00\x00\x06" + "\x00\x00"
	c := newStreamConn(rwc{Reader: bytes.NewReader([]byte(wire)), Writer: io.Discard}, Options{}, false)
	if c.Buffered() {
		t.Fatal("Buffered before any read")
	}
	for i, want := range []bool{true, false} {
		if _, err := c.ReadFrame(); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if got := c.Buffered(); got != want {
			t.Fatalf("after frame %d: Buffered %v, want %v (buffered %q)", i, got, want, c.rbuf[c.rpos:c.rend])
		}
	}
	if ReaderFlusherOf(c) != nil {
		t.Fatal("a stream Conn without the raw TCP path is a ReaderFlusher: its writes cannot stop at a full socket")
	}
	p, _ := Pipe()
	if ReaderFlusherOf(p) != nil {
		t.Fatal("the pipe is a ReaderFlusher")
	}
}
