//go:build unix

package transport

import (
	"bytes"
	"fmt"
	"net"
	"testing"
	"time"
)

// TestRawTCPBigBatch: one Flush of more iovecs than one writev takes (IOV_MAX) and more bytes than the
// socket buffers hold, with a reader that starts late, so the raw writev path goes through partial writes
// and waits for writability; every frame arrives whole and in order.
func TestRawTCPBigBatch(t *testing.T) {
	client, server := loopbackPair(t, Options{WriteCopyThreshold: -1}) // nothing copied: one iovec per piece
	if sc, ok := client.(*streamConn); !ok || sc.raw == nil {
		t.Fatalf("client %T does not use the raw TCP path", client)
	}
	const frames = 1500
	payload := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 1+(i*7919)%9000) }
	for i := range frames {
		if err := client.WriteFrame([]byte(fmt.Sprintf("h%05d", i)), []byte("md"), payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	flushed := make(chan error, 1)
	go func() { flushed <- client.Flush() }()
	time.Sleep(50 * time.Millisecond) // let the writer fill the socket buffers and wait
	readAllThenFlushed(t, server, frames, func(i int) []byte {
		return append(append([]byte(fmt.Sprintf("h%05d", i)), "md"...), payload(i)...)
	}, flushed)
}

// readAllThenFlushed reads frames frames from server, each equal to want(i), then waits for the
// concurrent Flush to report on flushed.
func readAllThenFlushed(t *testing.T, server Conn, frames int, want func(i int) []byte, flushed <-chan error) {
	t.Helper()
	for i := range frames {
		f, err := server.ReadFrame()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if w := want(i); !bytes.Equal(f, w) {
			t.Fatalf("frame %d: %d bytes, want %d (head %q)", i, len(f), len(w), f[:min(len(f), 6)])
		}
	}
	select {
	case err := <-flushed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Flush did not return")
	}
}

// TestRawTCPFlushAllocs: a Flush of a few frames on the raw path allocates nothing.
func TestRawTCPFlushAllocs(t *testing.T) {
	client, server := loopbackPair(t, Options{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, err := server.ReadFrame(); err != nil {
				return
			}
		}
	}()
	head, data := []byte("head"), make([]byte, 1024)
	allocs := testing.AllocsPerRun(200, func() {
		for range 4 {
			if err := client.WriteFrame(head, nil, data); err != nil {
				t.Fatal(err)
			}
		}
		if err := client.Flush(); err != nil {
			t.Fatal(err)
		}
	})
	client.Close()
	<-done
	if allocs > 0 {
		t.Fatalf("%.1f allocations per Flush, want 0", allocs)
	}
}

// TestRawTCPTryFlush: TryFlush writes what the socket takes and returns at once when it is full (done
// false, no error, no wait); a Flush afterwards writes the rest, and the peer gets every frame whole and
// in order. With room in the socket TryFlush writes the whole batch (done true).
func TestRawTCPTryFlush(t *testing.T) {
	client, server := loopbackPair(t, Options{WriteCopyThreshold: -1})
	rf := ReaderFlusherOf(client)
	if rf == nil {
		t.Fatalf("client %T is not a ReaderFlusher", client)
	}
	if err := client.WriteFrame([]byte("small!"), nil, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if done, err := rf.TryFlush(); !done || err != nil {
		t.Fatalf("TryFlush of one small frame: done=%v err=%v, want done", done, err)
	}
	if f, err := server.ReadFrame(); err != nil || string(f) != "small!x" {
		t.Fatalf("small frame: %q, %v", f, err)
	}

	// More than the socket buffers hold (set small: no autotuning), nobody reading: TryFlush must stop
	// at a full socket.
	_ = server.(*streamConn).nc.(*net.TCPConn).SetReadBuffer(64 << 10)
	_ = client.(*streamConn).nc.(*net.TCPConn).SetWriteBuffer(64 << 10)
	const frames = 200
	payload := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 64<<10) }
	for i := range frames {
		if err := client.WriteFrame([]byte(fmt.Sprintf("h%05d", i)), nil, payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	done, err := rf.TryFlush()
	if err != nil || done {
		t.Fatalf("TryFlush of 12.5 MiB to a peer that does not read: done=%v err=%v, want not done", done, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("TryFlush took %v: it waited for the peer", d)
	}
	flushed := make(chan error, 1)
	go func() { flushed <- client.Flush() }()
	readAllThenFlushed(t, server, frames, func(i int) []byte {
		return append([]byte(fmt.Sprintf("h%05d", i)), payload(i)...)
	}, flushed)
}
