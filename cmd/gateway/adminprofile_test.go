package main

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil"
)

// TestContentionProfileOnDemand: a timed mutex or block profile turns sampling on only for its duration,
// records contention that happens meanwhile, and leaves the rates at 0 afterwards; two at once are refused.
func TestContentionProfileOnDemand(t *testing.T) {
	g, _ := startTestGateway(t)
	defer g.shutdown()
	admin := "http://" + g.admin.ln.Addr().String()
	if r := runtime.SetMutexProfileFraction(-1); r != 0 {
		t.Fatalf("mutex profile fraction %d before, want 0", r)
	}
	var mu sync.Mutex
	stop := testutil.Repeat(t, 4, func() { // contention to record
		mu.Lock()
		time.Sleep(50 * time.Microsecond)
		mu.Unlock()
	})
	done := make(chan struct{})
	var code int
	var body string
	go func() {
		defer close(done)
		code, _, body = adminDo(t, "GET", admin+"/debug/pprof/mutex?seconds=1", "")
	}()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.SetMutexProfileFraction(-1) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if r := runtime.SetMutexProfileFraction(-1); r != mutexProfileFraction {
		t.Errorf("fraction during the profile %d, want %d", r, mutexProfileFraction)
	}
	if c, _, _ := adminDo(t, "GET", admin+"/debug/pprof/block?seconds=1", ""); c != 409 {
		t.Errorf("second contention profile at once: %d, want 409", c)
	}
	<-done
	stop()
	if code != 200 || len(body) == 0 {
		t.Fatalf("mutex profile: %d, %d bytes", code, len(body))
	}
	if r := runtime.SetMutexProfileFraction(-1); r != 0 {
		t.Errorf("mutex profile fraction %d after, want 0", r)
	}
}
