package bufpool

import (
	"bytes"
	"testing"
)

func TestGetPutGrow(t *testing.T) {
	EnableTracking()
	base := Outstanding()
	for _, n := range []int{0, 1, 255, 256, 257, 4096, 1 << 20, 1<<24 + 1} {
		b := Get(n)
		if len(b.B) != n || cap(b.B) < n {
			t.Fatalf("Get(%d): len %d cap %d", n, len(b.B), cap(b.B))
		}
		if n > 256 && n <= 1<<24 && cap(b.B) >= 2*n {
			t.Fatalf("Get(%d): class too big (cap %d)", n, cap(b.B))
		}
		Put(b)
	}
	b := Get(0)
	b.B = append(b.B, "hello"...)
	b = Grow(b, 10000)
	if string(b.B) != "hello" || cap(b.B)-len(b.B) < 10000 {
		t.Fatalf("Grow: %q cap %d", b.B, cap(b.B))
	}
	b.B = append(b.B, bytes.Repeat([]byte("x"), 10000)...)
	if Outstanding() != base+1 {
		t.Fatalf("outstanding %d, want %d (Grow must return the old buffer)", Outstanding(), base+1)
	}
	Put(b)
	Put(nil)
	if Outstanding() != base {
		t.Fatalf("outstanding %d after Put, want %d", Outstanding(), base)
	}
}

func BenchmarkGetPut(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		Put(Get(1024))
	}
}
