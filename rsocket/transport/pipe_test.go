package transport

import (
	"errors"
	"io"
	"testing"
	"time"
)

func TestPipe(t *testing.T) {
	a, b := Pipe()
	defer a.Close()
	defer b.Close()
	testExchange(t, a, b)
	testCloseSemantics(t, a, b)
}

func TestPipeCopiesOnWrite(t *testing.T) {
	a, b := Pipe()
	defer a.Close()
	defer b.Close()
	buf := []byte("hello")
	if err := a.WriteFrame(buf, nil, nil); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXX")
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	f, err := b.ReadFrame()
	if err != nil || string(f) != "hello" {
		t.Fatalf("got %q, %v", f, err)
	}
}

func TestPipeBoundedAndPeerClose(t *testing.T) {
	a, b := Pipe()
	defer a.Close()
	for range PipeCapacity + 1 {
		if err := a.WriteFrame([]byte("f"), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- a.Flush() }()
	select {
	case err := <-errc:
		t.Fatalf("Flush of PipeCapacity+1 unread frames returned early: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	b.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("blocked Flush after peer Close: got %v, want io.ErrClosedPipe", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("blocked Flush not released by peer Close")
	}
	if _, err := b.ReadFrame(); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadFrame on closed end: got %v, want ErrClosed", err)
	}
}

func TestPipeMaxFrameLen(t *testing.T) {
	a, b := Pipe()
	defer a.Close()
	defer b.Close()
	if err := a.WriteFrame(make([]byte, MaxFrameLen), nil, []byte{1}); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("got %v, want ErrFrameTooLarge", err)
	}
}
