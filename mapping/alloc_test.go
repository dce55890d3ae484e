//go:build !race

package mapping

import "testing"

// TestMatchAllocs: matching (hit, 405, 404), tag expansion and the error/backend lookups allocate nothing.
func TestMatchAllocs(t *testing.T) {
	tab := benchTable(t, 1000)
	paths := benchPaths()
	var ps Params
	buf := make([]byte, 0, 256)
	for _, p := range paths {
		method, path := []byte(p.method), []byte(p.path)
		if _, res := tab.Match(method, path, &ps); res != p.want {
			t.Fatalf("%s %s = %v, want %v", p.method, p.path, res, p.want)
		}
		n := testing.AllocsPerRun(200, func() {
			r, res := tab.Match(method, path, &ps)
			if res == MatchOK {
				buf = r.AppendTag(buf[:0], &ps)
				_ = ps.Get("id")
			}
		})
		if n != 0 {
			t.Errorf("%s %s: %v allocs per Match+AppendTag", p.method, p.path, n)
		}
	}
	cfg := mustParse(t, `backends: {demo: {addresses: ["h:1"]}, other: {addresses: ["h:2"]}}
routes:
  - {name: rr, method: GET, path: /x, backend: demo, interaction: request-response, errors: {"a long prefix that does not fit a stack buffer easily ...": 404, "0x202": 429}}
  - {name: rs, path: /r, backend: demo, interaction: rsocket, rsocket: {allow: ["*"], routes: {"users.*": other, "exact": other}}}
`)
	ctab, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rr, rs := ctab.Route("rr"), ctab.Route("rs")
	msg := []byte("a long prefix that does not fit a stack buffer easily ... and then some")
	tag := []byte("users.list")
	if n := testing.AllocsPerRun(200, func() {
		rr.ErrorStatus(0x201, msg)
		rr.ErrorStatus(0x202, nil)
		rs.RSocketBackend(tag)
		rs.RSocketBackend([]byte("exact"))
	}); n != 0 {
		t.Errorf("ErrorStatus/RSocketBackend: %v allocs", n)
	}
}
