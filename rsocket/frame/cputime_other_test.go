//go:build !linux

package frame

import "testing"

type cpuTimer struct{}

func startCPU(b *testing.B) cpuTimer { b.ResetTimer(); return cpuTimer{} }
func (cpuTimer) stop(*testing.B)     {}
