//go:build unix && !linux

package rawio

import "syscall"

// Read is read(2) on fd into p, retried on EINTR (see the Linux version).
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
