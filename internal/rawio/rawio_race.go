//go:build linux && race

package rawio

import (
	"syscall"
	"unsafe"
)

// Writev is the race-detector build's writev: the buffers of iov in order, one write(2) each (see
// rawio_plain.go); it stops at the first short write, and reports an error only when nothing was written.
func Writev(fd uintptr, iov []syscall.Iovec) (int, syscall.Errno) {
	total := 0
	for _, v := range iov {
		b := unsafeSlice(v)
		n, errno := Write(fd, b)
		if errno != 0 {
			if total > 0 {
				return total, 0 // the error (or EAGAIN) comes back on the next call
			}
			return 0, errno
		}
		total += n
		if n < len(b) {
			return total, 0
		}
	}
	return total, 0
}

func unsafeSlice(v syscall.Iovec) []byte { return unsafe.Slice(v.Base, v.Len) }
