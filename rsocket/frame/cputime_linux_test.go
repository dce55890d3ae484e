package frame

import (
	"runtime"
	"syscall"
	"testing"
)

// cpuTimer reports on-CPU nanoseconds per op of the benchmark goroutine's thread ("cpu-ns/op"), which is
// more stable than wall time on a loaded machine.
type cpuTimer struct {
	start int64
}

func threadCPUNanos() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func startCPU(b *testing.B) cpuTimer {
	runtime.LockOSThread()
	b.ResetTimer()
	return cpuTimer{start: threadCPUNanos()}
}

func (c cpuTimer) stop(b *testing.B) {
	d := threadCPUNanos() - c.start
	b.StopTimer()
	runtime.UnlockOSThread()
	if b.N > 0 && d > 0 {
		b.ReportMetric(float64(d)/float64(b.N), "cpu-ns/op")
	}
}
