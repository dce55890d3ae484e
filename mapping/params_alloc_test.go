//go:build !race

package mapping

import "testing"

// TestCheckParamsAllocs: matching plus the default, any and catch-all checks allocate nothing; a
// pattern check (compiled regexp) is measured too and must stay allocation-free once warm.
func TestCheckParamsAllocs(t *testing.T) {
	tab, err := Compile(mustParse(t, paramBenchConfig))
	if err != nil {
		t.Fatal(err)
	}
	var ps Params
	for _, path := range []string{"/d/12345/x/abc-DEF_~", "/a/42.admin", "/r/a/b/c.txt", "/n/123456", "/d/bad.value/x/y"} {
		p := []byte(path)
		n := testing.AllocsPerRun(500, func() {
			r, res := tab.Match([]byte("GET"), p, &ps)
			if res != MatchOK {
				t.Fatalf("%s: %v", path, res)
			}
			r.CheckParams(&ps)
		})
		if n != 0 {
			t.Errorf("%s: %v allocs per Match+CheckParams", path, n)
		}
	}
}
