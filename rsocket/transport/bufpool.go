package transport

import (
	"math/bits"
	"sync"
)

// Large frame buffers are shared through per-size-class pools so that a connection that once
// received a 10 MiB frame does not keep 10 MiB while idle, and so that repeated large frames do
// not allocate in steady state. Classes are powers of two from 4 KiB to 16 MiB.
const (
	minClassShift = 12
	maxClassShift = 24
)

var bigPools [maxClassShift - minClassShift + 1]sync.Pool

func classOf(n int) int {
	if n <= 1<<minClassShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minClassShift
}

// getBig returns a pooled buffer with len >= n; n must be <= 1<<maxClassShift.
func getBig(n int) *[]byte {
	c := classOf(n)
	if p, _ := bigPools[c].Get().(*[]byte); p != nil {
		return p
	}
	b := make([]byte, 1<<(c+minClassShift))
	return &b
}

// putBig gives a buffer from getBig back. The caller must not use it afterwards.
func putBig(p *[]byte) {
	bigPools[classOf(len(*p))].Put(p)
}
