//go:build linux && !race

package rawio

import (
	"syscall"
	"unsafe"
)

// Read is read(2) on fd into p, retried on EINTR. It returns the count and 0, or 0 and the errno
// (syscall.EAGAIN when nothing is there yet). n == 0 with errno 0 and len(p) > 0 is end of stream.
func Read(fd uintptr, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(n), 0
	}
}

// Write is write(2) of p on fd, retried on EINTR; it may write less than len(p).
func Write(fd uintptr, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(n), 0
	}
}

// Writev is writev(2) of iov on fd, retried on EINTR; it may write less than the total.
func Writev(fd uintptr, iov []syscall.Iovec) (int, syscall.Errno) {
	if len(iov) == 0 {
		return 0, 0
	}
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(n), 0
	}
}
