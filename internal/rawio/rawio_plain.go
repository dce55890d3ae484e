//go:build unix && (!linux || race)

package rawio

import (
	"syscall"
	"unsafe"
)

// The ordinary calls: on Unix systems other than Linux, and on Linux with the race detector, for which
// syscall.Read and syscall.Write tell it that I/O orders memory accesses between goroutines (tests
// synchronise through sockets); raw calls would hide that and turn correct programs into reported races.

// Read is read(2) on fd into p, retried on EINTR (see rawio_linux.go).
func Read(fd uintptr, p []byte) (int, syscall.Errno) {
	for {
		n, err := syscall.Read(int(fd), p)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return 0, err.(syscall.Errno)
		}
		return n, 0
	}
}

// Write is write(2) of p on fd, retried on EINTR; it may write less than len(p).
func Write(fd uintptr, p []byte) (int, syscall.Errno) {
	for {
		n, err := syscall.Write(int(fd), p)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return 0, err.(syscall.Errno)
		}
		return n, 0
	}
}

// Writev writes the buffers of iov in order, one write(2) each; it stops at the first short write, and
// reports an error only when nothing was written (it comes back on the next call otherwise).
func Writev(fd uintptr, iov []syscall.Iovec) (int, syscall.Errno) {
	total := 0
	for _, v := range iov {
		b := unsafe.Slice(v.Base, v.Len)
		n, errno := Write(fd, b)
		if errno != 0 {
			if total > 0 {
				return total, 0
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
