// Package bufpool is the one byte-buffer pool of package rsocket and its transports: received payloads
// handed to callers (rsocket.Message), reassembly buffers, and the transports' buffers for large frames
// (rsocket/transport) live in *Buffer values taken from here.
//
// Ownership: Get hands out a *Buffer that the caller owns until it calls Put exactly once. After Put
// the caller must not touch the Buffer or any slice of its bytes. Buffers are grouped in power-of-two
// size classes from 256 B to 16 MiB, one sync.Pool per class (pointer values: no boxing allocation);
// larger buffers are allocated directly and dropped on Put.
//
// Tracking: tests call EnableTracking before starting any goroutine; from then on Get and Put keep an
// outstanding count (Outstanding) so that test teardown can prove every buffer came back. In production
// the count is off and costs one predictable branch per call.
package bufpool

import (
	"math/bits"
	"sync"
	"sync/atomic"
)

const (
	minShift = 8  // 256 B
	maxShift = 24 // 16 MiB
)

// Buffer is a pooled byte slice. B has the length asked for in Get; its capacity is the size class.
type Buffer struct {
	B       []byte
	class   int8 // pool class, -1 when not pooled (too large)
	counted bool // taken with Get while tracking: Put uncounts it
}

var (
	pools       [maxShift - minShift + 1]sync.Pool
	tracking    bool
	outstanding atomic.Int64
)

// EnableTracking turns on the outstanding-buffer count. Call it before any Get (TestMain).
func EnableTracking() { tracking = true }

// Outstanding returns the number of buffers taken by Get and not yet returned by Put (0 when tracking
// is off).
func Outstanding() int64 { return outstanding.Load() }

func classOf(n int) int {
	if n <= 1<<minShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minShift
}

// Get returns a buffer with len(B) == n.
func Get(n int) *Buffer {
	b := get(n)
	if tracking {
		outstanding.Add(1)
		b.counted = true
	}
	return b
}

// GetUncounted is Get for buffers that are not counted by Outstanding: a transport's read buffer, which
// it holds until its next read (so possibly past the end of the connection that used it).
func GetUncounted(n int) *Buffer { return get(n) }

func get(n int) *Buffer {
	c := classOf(n)
	if c >= len(pools) {
		return &Buffer{B: make([]byte, n), class: -1}
	}
	if b, _ := pools[c].Get().(*Buffer); b != nil {
		b.B = b.B[:n]
		return b
	}
	return &Buffer{B: make([]byte, n, 1<<(c+minShift)), class: int8(c)}
}

// Grow returns a buffer holding b's bytes with room for at least n more (len unchanged). It may return
// b itself or a new buffer, in which case b has been Put.
func Grow(b *Buffer, n int) *Buffer {
	if cap(b.B)-len(b.B) >= n {
		return b
	}
	nb := get(len(b.B) + n)
	if b.counted {
		outstanding.Add(1)
		nb.counted = true
	}
	nb.B = nb.B[:copy(nb.B, b.B)]
	Put(b)
	return nb
}

// Put returns b to its pool. b must have come from Get and must not be used afterwards.
func Put(b *Buffer) {
	if b == nil {
		return
	}
	if b.counted {
		outstanding.Add(-1)
		b.counted = false
	}
	if b.class < 0 {
		return
	}
	b.B = b.B[:0]
	pools[b.class].Put(b)
}
