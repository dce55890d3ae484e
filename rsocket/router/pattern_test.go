package router

import (
	"strings"
	"testing"
)

func TestPatternMatchGolden(t *testing.T) {
	var tb table[string]
	for _, p := range []string{"echo", "users.{id}", "users.me", "users.{id}.orders.{order}", "files.{path...}", "a.{x}.c", "a.b.{y}"} {
		tb.add(p, p)
	}
	for _, tc := range []struct {
		tag, want, params string
	}{
		{"echo", "echo", ""},
		{"users.42", "users.{id}", "id=42"},
		{"users.me", "users.me", ""}, // literal beats parameter
		{"users.7.orders.9", "users.{id}.orders.{order}", "id=7,order=9"},
		{"files.a.b.c", "files.{path...}", "path=a.b.c"},
		{"a.b.c", "a.b.{y}", "y=c"}, // the first differing segment decides: literal b beats {x}
		{"a.z.c", "a.{x}.c", "x=z"},
		{"users", "", ""},
		{"users.", "", ""},
		{"users.42.x", "", ""},
		{"files", "", ""},
		{"echo.x", "", ""},
		{"", "", ""},
	} {
		h, ps, ok := tb.lookup(tc.tag)
		if !ok {
			h = ""
		}
		var got []string
		for _, p := range ps {
			got = append(got, p.name+"="+p.value)
		}
		if h != tc.want || strings.Join(got, ",") != tc.params {
			t.Errorf("%q: matched %q %v, want %q %s", tc.tag, h, got, tc.want, tc.params)
		}
	}
}

func TestPatternErrors(t *testing.T) {
	for _, p := range []string{"", "a..b", "{rest...}.x", "a.{}", "a.{b", "a.b}", "a.{x}.{x}", "a.{x.y}"} {
		if _, err := parsePattern(p); err == nil {
			t.Errorf("%q: no error", p)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("a pattern registered twice did not panic")
		}
	}()
	r := New()
	r.HandleFireAndForget("x.{y}", nil)
	r.HandleFireAndForget("x.{y}", nil)
}

func FuzzPattern(f *testing.F) {
	f.Add("users.{id}", "users.42")
	f.Add("files.{p...}", "files.a.b")
	f.Add("a.b", "a.b")
	f.Add("{x}.{y...}", "..")
	f.Fuzz(func(t *testing.T, pat, tag string) {
		p, err := parsePattern(pat)
		if err != nil {
			return
		}
		ps, ok := p.match(tag, nil)
		if !ok {
			return
		}
		// Rebuilding the tag from the pattern and the parameters gives the tag back.
		var parts []string
		i := 0
		for _, sg := range p.segs {
			if sg.kind == segLiteral {
				parts = append(parts, sg.text)
				continue
			}
			if ps[i].name != sg.text || ps[i].value == "" {
				t.Fatalf("param %d = %+v for segment %+v", i, ps[i], sg)
			}
			parts = append(parts, ps[i].value)
			i++
		}
		if strings.Join(parts, ".") != tag {
			t.Fatalf("pattern %q matched %q with %v", pat, tag, ps)
		}
	})
}
