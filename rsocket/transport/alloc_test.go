//go:build !race

package transport

import (
	"testing"
)

// Steady state over real loopback TCP: queuing and flushing a frame, and reading one, allocate
// nothing (small frames come from the read buffer, large ones from the size-class pool).
func TestTCPAllocs(t *testing.T) {
	client, server := loopbackPair(t, Options{})
	head := []byte("\x00\x00\x00\x01\x28\x00")
	meta := make([]byte, 100)
	for _, size := range []int{16, 1 << 10, 64 << 10, 1 << 20} {
		data := make([]byte, size)
		roundTrip := func() {
			if err := client.WriteFrame(head, meta, data); err != nil {
				t.Fatal(err)
			}
			if err := client.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		errc := make(chan error, 1)
		const runs = 50
		// The reader runs in its own goroutine (large frames exceed the socket buffers);
		// AllocsPerRun measures the whole process, so it counts the reader too.
		read := func(n int) {
			for range n {
				f, err := server.ReadFrame()
				if err == nil && len(f) != len(head)+len(meta)+size {
					t.Errorf("frame of %d bytes, want %d", len(f), len(head)+len(meta)+size)
				}
				if err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}
		go read(1 + runs + 1) // AllocsPerRun calls the function once more as a warm-up
		roundTrip()
		allocs := testing.AllocsPerRun(runs, roundTrip)
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if allocs != 0 {
			t.Errorf("%d-byte frame: %.1f allocs per WriteFrame+Flush+ReadFrame, want 0", size, allocs)
		}
	}
}

func TestTCPReadAllocs(t *testing.T) {
	client, server := loopbackPair(t, Options{})
	frame := make([]byte, 1<<10)
	const runs = 100
	for range runs + 2 {
		if err := client.WriteFrame(frame, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	go client.Flush()
	if _, err := server.ReadFrame(); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(runs, func() {
		if _, err := server.ReadFrame(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("ReadFrame: %.1f allocs, want 0", allocs)
	}
}

// The in-memory pipe that the in-process benchmarks of the whole gateway path run over recycles frame
// buffers from the reader back to the writer: a steady exchange allocates nothing, so those benchmarks
// count the gateway's allocations, not the test transport's.
func TestPipeAllocs(t *testing.T) {
	a, b := Pipe()
	defer a.Close()
	defer b.Close()
	head := []byte("\x00\x00\x00\x01\x28\x00")
	meta, data := make([]byte, 40), make([]byte, 1<<10)
	exchange := func() {
		for _, c := range [][2]Conn{{a, b}, {b, a}} { // request one way, answer the other
			if err := c[0].WriteFrame(head, meta, data); err != nil {
				t.Fatal(err)
			}
			if err := c[0].Flush(); err != nil {
				t.Fatal(err)
			}
			f, err := c[1].ReadFrame()
			if err != nil || len(f) != len(head)+len(meta)+len(data) {
				t.Fatalf("read %d bytes, %v", len(f), err)
			}
		}
	}
	for range 10 {
		exchange()
	}
	if n := testing.AllocsPerRun(200, exchange); n != 0 {
		t.Fatalf("pipe exchange: %v allocs, want 0", n)
	}
}
