//go:build !race

package admission

import (
	"testing"
	"time"
)

func TestAcquireReleaseAllocs(t *testing.T) {
	l := New(Config{Mode: Adaptive, Max: 100, Min: 10, Queue: 100, QueueTimeout: time.Second})
	n := testing.AllocsPerRun(1000, func() {
		if err := l.Acquire(Normal, time.Time{}); err != nil {
			t.Fatal(err)
		}
		l.Release(time.Millisecond)
	})
	if n != 0 {
		t.Fatalf("%v allocations per Acquire/Release", n)
	}
}
