package main

import (
	"context"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// listenReusePort binds addr with SO_REUSEPORT: the kernel spreads new connections over every socket bound
// so (by a hash of the connection's addresses).
func listenReusePort(addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	return lc.Listen(context.Background(), "tcp", addr)
}

// workerSysProcAttr: a worker gets SIGTERM (and drains) when the supervisor dies, even by SIGKILL.
func workerSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

// selfExe is the file a worker is started from: this process's own executable, even when the file at its
// path was replaced since (an upgrade in place), so that a restarted worker runs the supervisor's version.
func selfExe(string) string { return "/proc/self/exe" }
