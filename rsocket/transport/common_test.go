package transport

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

// testExchange sends frames both ways: one large (1 MiB, split over head/metadata/data), many
// small ones in one batch, and checks content and order.
func testExchange(t *testing.T, a, b Conn) {
	t.Helper()
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	const small = 1000
	done := make(chan error, 1)
	go func() {
		// b echoes everything back, flushing whenever its reads catch up.
		for i := 0; i < small+1; i++ {
			f, err := b.ReadFrame()
			if err != nil {
				done <- err
				return
			}
			if err := b.WriteFrame(f, nil, nil); err != nil {
				done <- err
				return
			}
			if err := b.Flush(); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		if err := a.WriteFrame(big[:10], big[10:1000], big[1000:]); err != nil {
			t.Error(err)
		}
		if err := a.Flush(); err != nil {
			t.Error(err)
		}
		for i := range small {
			if err := a.WriteFrame([]byte{byte(i), byte(i >> 8)}, nil, []byte("payload")); err != nil {
				t.Error(err)
			}
		}
		if err := a.Flush(); err != nil {
			t.Error(err)
		}
	}()
	deadline := time.AfterFunc(20*time.Second, func() { a.Close(); b.Close() })
	defer deadline.Stop()
	f, err := a.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f, big) {
		t.Fatalf("big frame: got %d bytes, content equal=%v", len(f), bytes.Equal(f, big))
	}
	for i := range small {
		f, err := a.ReadFrame()
		if err != nil {
			t.Fatalf("small frame %d: %v", i, err)
		}
		if want := string([]byte{byte(i), byte(i >> 8)}) + "payload"; string(f) != want {
			t.Fatalf("small frame %d: got %q want %q", i, f, want)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	<-wrote
}

// testCloseSemantics: frames flushed before Close arrive, then the peer reads io.EOF; writes on
// the closed side fail with ErrClosed.
func testCloseSemantics(t *testing.T, a, b Conn) {
	t.Helper()
	if err := a.WriteFrame([]byte("last"), nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	type res struct {
		f   []byte
		err error
	}
	ch := make(chan res, 2)
	go func() {
		for range 2 {
			f, err := b.ReadFrame()
			ch <- res{append([]byte(nil), f...), err}
		}
	}()
	for i, want := range []res{{[]byte("last"), nil}, {nil, io.EOF}} {
		select {
		case r := <-ch:
			if !bytes.Equal(r.f, want.f) || !errors.Is(r.err, want.err) || (want.err == nil) != (r.err == nil) {
				t.Fatalf("read %d after peer Close: got %q, %v; want %q, %v", i, r.f, r.err, want.f, want.err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("read %d after peer Close: timeout", i)
		}
	}
	if err := a.WriteFrame([]byte("x"), nil, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("WriteFrame after Close: got %v, want ErrClosed", err)
	}
	if err := a.Flush(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Flush after Close: got %v, want ErrClosed", err)
	}
}

// readFrames reads n frames from c on its own goroutine; the channel then receives nil, or the first
// read error.
func readFrames(c Conn, n int) <-chan error {
	done := make(chan error, 1)
	go func() {
		for range n {
			if _, err := c.ReadFrame(); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	return done
}

// closeUnblocksRead closes c while a ReadFrame waits on it: that ReadFrame must return soon, with an
// error matching want.
func closeUnblocksRead(t *testing.T, c Conn, want error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := c.ReadFrame()
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	c.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, want) {
			t.Fatalf("got %v, want %v", err, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadFrame not unblocked by Close")
	}
}
