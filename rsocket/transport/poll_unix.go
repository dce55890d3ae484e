//go:build unix

package transport

import "golang.org/x/sys/unix"

// pollWritable reports whether fd is writable now (poll(2) with a zero timeout: it never waits).
func pollWritable(fd uintptr) bool {
	p := [1]unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	for {
		n, err := unix.Poll(p[:], 0)
		if err == unix.EINTR {
			continue
		}
		return err == nil && n == 1 && p[0].Revents&(unix.POLLOUT|unix.POLLERR|unix.POLLHUP) == unix.POLLOUT
	}
}
