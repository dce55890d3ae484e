//go:build !linux

package main

import (
	"errors"
	"net"
	"syscall"
)

// mapping refuses workers > 1 off Linux: the other systems' SO_REUSEPORT does not spread connections.
func listenReusePort(string) (net.Listener, error) {
	return nil, errors.New("workers need Linux")
}

func workerSysProcAttr() *syscall.SysProcAttr { return nil }

func selfExe(path string) string { return path }
