//go:build unix

package main

import (
	"math"
	"syscall"
)

// raiseNoFile raises the soft RLIMIT_NOFILE to the hard limit and returns the resulting soft limit (0 if it
// cannot be read). An "unlimited" hard limit is capped at 1<<20, which the kernel accepts by default.
func raiseNoFile() (soft uint64, raised bool, err error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, false, err
	}
	old := rl.Cur
	capped := uint64(rl.Max) == math.MaxUint64 || uint64(rl.Max) > 1<<20
	want := uint64(rl.Max)
	if capped {
		want = 1 << 20
	}
	if uint64(rl.Cur) >= want {
		return uint64(rl.Cur), false, nil
	}
	if capped {
		rl.Cur = 1 << 20
	} else {
		rl.Cur = rl.Max
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return uint64(old), false, err
	}
	return want, true, nil
}
