//go:build !unix

package transport

// pollWritable: not known outside Unix (poll_unix.go); writes after StopWaiting fail there instead.
func pollWritable(uintptr) bool { return false }
