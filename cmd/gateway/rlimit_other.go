//go:build !unix

package main

// raiseNoFile: no RLIMIT_NOFILE on this system; max_connections keeps the configured value.
func raiseNoFile() (soft uint64, raised bool, err error) { return 0, false, nil }
