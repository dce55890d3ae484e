package ingress

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/rsgate/rsgate/mapping"
)

// TestGCRAGolden: the bucket with an injected clock: burst 3, one token per 100 ms.
func TestGCRAGolden(t *testing.T) {
	const T = int64(100 * time.Millisecond)
	var tat int64
	steps := []struct {
		now                   int64
		ok                    bool
		remaining, wait, full int64
	}{
		{0, true, 2, 0, T},
		{0, true, 1, 0, 2 * T},
		{0, true, 0, T, 3 * T},
		{0, false, 0, T, 3 * T},
		{T / 2, false, 0, T / 2, 3*T - T/2},
		{T, true, 0, T, 3 * T},
		{10 * T, true, 2, 0, T}, // idle: full again
	}
	for i, s := range steps {
		ok, rem, wait, full := gcra(&tat, s.now, T, 3*T)
		if ok != s.ok || rem != s.remaining || wait != s.wait || full != s.full {
			t.Errorf("step %d at %d: %v %d %d %d, want %v %d %d %d", i, s.now, ok, rem, wait, full, s.ok, s.remaining, s.wait, s.full)
		}
	}
}

// TestBucketCount: offered load 150/s for 10 s against 100/s burst 200, on an injected clock: exactly
// burst + rate*duration requests pass (the proof of the 429 count, free of wall-clock noise).
func TestBucketCount(t *testing.T) {
	l := newKeyedLimiter(&mapping.RateLimitConfig{Rate: "100/s", Burst: 200}, "t", nil)
	step := int64(time.Second) / 150
	allowed := 0
	for i := int64(0); i < 1500; i++ {
		if ok, _, _, _ := l.take(42, i*step); ok {
			allowed++
		}
	}
	// 1500 requests span 9.993 s: 200 + floor(100 * 9.993) = 1199.
	if allowed != 1199 {
		t.Fatalf("allowed %d, want 1199", allowed)
	}
	// Rates per minute and per hour.
	for _, tc := range []struct {
		rate   string
		burst  int
		span   time.Duration
		offers int
		want   int
	}{
		{"60/m", 10, time.Minute, 600, 10 + 59},
		{"3600/h", 5, time.Hour, 10000, 5 + 3599},
		{"1/s", 1, 10 * time.Second, 100, 1 + 9},
	} {
		l := newKeyedLimiter(&mapping.RateLimitConfig{Rate: tc.rate, Burst: tc.burst}, "t", nil)
		n := 0
		for i := 0; i < tc.offers; i++ {
			if ok, _, _, _ := l.take(7, int64(tc.span)*int64(i)/int64(tc.offers)); ok {
				n++
			}
		}
		if n != tc.want {
			t.Errorf("%s burst %d: %d allowed, want %d", tc.rate, tc.burst, n, tc.want)
		}
	}
}

// TestLimiterBounded: max_keys bounds the buckets; a new key evicts a bucket that has refilled (nothing
// is lost) before one that is still counting.
func TestLimiterBounded(t *testing.T) {
	const sec = int64(time.Second)
	l := newKeyedLimiter(&mapping.RateLimitConfig{Rate: "1/s", Burst: 1, MaxKeys: 100}, "t", nil)
	for k := uint64(0); k < 50; k++ {
		l.take(k, 0) // full again at 1 s
	}
	for k := uint64(50); k < 100; k++ {
		l.take(k, 9*sec/10) // full again at 1.9 s
	}
	for k := uint64(100); k < 150; k++ {
		l.take(k, 3*sec/2)
	}
	if n := l.len(); n != 100 {
		t.Fatalf("%d buckets, want 100", n)
	}
	for k := uint64(50); k < 100; k++ {
		if ok, _, _, _ := l.take(k, 3*sec/2); ok {
			t.Fatalf("key %d lost its state (evicted instead of a refilled bucket)", k)
		}
	}
	for k := uint64(150); k < 100_000; k++ {
		l.take(k*0x9e3779b97f4a7c15, 2*sec)
	}
	if n := l.len(); n > 100 {
		t.Fatalf("%d buckets kept, max_keys 100", n)
	}
	big := newKeyedLimiter(&mapping.RateLimitConfig{Rate: "1/s", MaxKeys: 100_000}, "t", nil)
	for k := uint64(0); k < 300_000; k++ {
		big.take(k*0x9e3779b97f4a7c15+1, int64(k))
	}
	if n := big.len(); n > 100_000+limiterShards || n < 90_000 {
		t.Fatalf("%d buckets kept, max_keys 100000", n)
	}
}

// TestLimiterConcurrent runs takes from several goroutines (for -race) and checks the total: one key,
// burst 1000, no refill within the test: exactly 1000 pass.
func TestLimiterConcurrent(t *testing.T) {
	l := newKeyedLimiter(&mapping.RateLimitConfig{Rate: "1/h", Burst: 1000}, "t", nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	passed := 0
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for i := 0; i < 500; i++ {
				if ok, _, _, _ := l.take(1<<40, 0); ok {
					n++
				}
				l.take(uint64(g*1000+i), 0)
			}
			mu.Lock()
			passed += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	if passed != 1000 {
		t.Fatalf("%d passed, want 1000", passed)
	}
}

// TestLimiterMemoryBound: the memory the README documents, 55 to 80 bytes per key (100,000 keys in 5.5 to
// 8 MB); the bound here is loose (the heap also holds other tests' garbage).
func TestLimiterMemoryBound(t *testing.T) {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	l := newKeyedLimiter(&mapping.RateLimitConfig{Rate: "1/s"}, "t", nil)
	for k := uint64(0); k < 200_000; k++ { // twice max_keys: the table stays at its bound
		l.take(k*0x9e3779b97f4a7c15+1, 0)
	}
	runtime.GC()
	runtime.ReadMemStats(&b)
	per := float64(int64(b.HeapAlloc)-int64(a.HeapAlloc)) / float64(l.len())
	t.Logf("%d keys: %.1f bytes per key", l.len(), per)
	if l.len() > mapping.DefaultRateLimitMaxKeys+limiterShards || per > 120 {
		t.Fatalf("%d keys, %.1f bytes per key", l.len(), per)
	}
	runtime.KeepAlive(l)
}
