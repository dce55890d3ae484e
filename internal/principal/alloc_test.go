//go:build !race

package principal

import "testing"

func TestAllocs(t *testing.T) {
	buf := make([]byte, 0, 256)
	n := testing.AllocsPerRun(100, func() {
		b, _ := Append(buf[:0], &goldenPrincipal)
		_ = AppendEntry(b[len(b):], b)
		v, _ := Parse(b)
		for v.Claims.Next() {
		}
	})
	if n != 0 {
		t.Fatalf("%v allocs", n)
	}
}
