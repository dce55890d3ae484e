package mapping

import (
	"errors"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// refRoute is one route of the reference matcher.
type refRoute struct {
	name   string
	method string
	tpl    *PathTemplate
}

// refMatch matches path against tpl the obvious way: split both on "/" and compare segment by segment.
// It returns the parameter values and the segment kinds (for precedence), or ok == false.
func refMatch(tpl *PathTemplate, path string) (vals []string, kinds []segKind, ok bool) {
	if !strings.HasPrefix(path, "/") {
		return nil, nil, false
	}
	segs := strings.Split(path[1:], "/")
	for i, s := range tpl.segs {
		kinds = append(kinds, s.kind)
		if s.kind == segCatchAll {
			if i > len(segs)-1 {
				return nil, nil, false
			}
			return append(vals, strings.Join(segs[i:], "/")), kinds, true
		}
		if i >= len(segs) {
			return nil, nil, false
		}
		switch s.kind {
		case segStatic:
			if segs[i] != s.text {
				return nil, nil, false
			}
		case segParam:
			if segs[i] == "" {
				return nil, nil, false
			}
			vals = append(vals, segs[i])
		}
	}
	if len(segs) != len(tpl.segs) {
		return nil, nil, false
	}
	return vals, kinds, true
}

// refLookup is the reference for Table.Match: the most specific (segment kinds compared from the left)
// route matching path and method, a specific method beating "*"; else 405 with the allowed methods.
func refLookup(routes []refRoute, method, path string) (best *refRoute, vals []string, res MatchResult, allow string) {
	var bestKinds []segKind
	var allowed []string
	anyMethod := false
	for i := range routes {
		r := &routes[i]
		v, kinds, ok := refMatch(r.tpl, path)
		if !ok {
			continue
		}
		if r.method == MethodAny {
			anyMethod = true
		} else if !slices.Contains(allowed, r.method) {
			allowed = append(allowed, r.method)
		}
		if r.method != MethodAny && r.method != method {
			continue
		}
		if best == nil {
			best, vals, bestKinds = r, v, kinds
			continue
		}
		c := slices.Compare(kinds, bestKinds)
		if c < 0 || c == 0 && best.method == MethodAny && r.method != MethodAny {
			best, vals, bestKinds = r, v, kinds
		}
	}
	if slices.Contains(allowed, "GET") && !slices.Contains(allowed, "HEAD") {
		allowed = append(allowed, "HEAD") // HEAD is served wherever GET is
	}
	sort.Strings(allowed)
	if !anyMethod {
		allow = strings.Join(allowed, ", ")
	}
	if best == nil && method == "HEAD" && len(allowed) > 0 {
		return refLookup(routes, "GET", path)
	}
	switch {
	case best != nil:
		return best, vals, MatchOK, allow
	case len(allowed) > 0:
		return nil, nil, MatchMethodNotAllowed, allow
	}
	return nil, nil, MatchNotFound, allow
}

// buildFuzzTable compiles the valid, non-conflicting lines of spec ("METHOD /path" per line).
func buildFuzzTable(spec string) (*Table, []refRoute) {
	cfg := NewConfig()
	b := NewBackend("b")
	b.Addresses = []string{"127.0.0.1:1"}
	h := NewBackend("h")
	h.Transport, h.Addresses = TransportHTTP, []string{"http://127.0.0.1:2"}
	cfg.Backends["b"], cfg.Backends["h"] = b, h
	var refs []refRoute
	shapes := map[string]bool{}
	for _, line := range strings.Split(spec, "\n") {
		f := strings.Fields(line)
		if len(f) != 2 || len(cfg.Routes) >= 64 {
			continue
		}
		tpl, err := ParsePathTemplate(f[1])
		method := strings.ToUpper(f[0])
		if err != nil || method != MethodAny && !isToken(method) || shapes[method+" "+tpl.shape()] {
			continue
		}
		shapes[method+" "+tpl.shape()] = true
		name := "r" + strconv.Itoa(len(cfg.Routes))
		var r *Route
		if method == MethodAny {
			r = NewRoute(name, InteractionHTTP)
			r.Backend = "h"
		} else {
			r = NewRoute(name, InteractionRequestResponse)
			r.Method, r.Backend = method, "b"
		}
		r.Path = f[1]
		cfg.Routes = append(cfg.Routes, r)
		refs = append(refs, refRoute{name: name, method: method, tpl: tpl})
	}
	if len(cfg.Routes) == 0 {
		return nil, nil
	}
	t, err := Compile(cfg)
	if err != nil {
		panic("compile of pre-validated routes failed: " + err.Error())
	}
	return t, refs
}

func FuzzMatch(f *testing.F) {
	f.Add("GET /a\nGET /a/{x}\nGET /{rest...}\nPOST /a/b", "GET", "/a/b")
	f.Add("GET /a/b/c\nGET /a/{x}/d\nGET /a/{x}/{y...}", "GET", "/a/b/d")
	f.Add("GET /\nGET /a/\nGET /a\n* /a/{x}", "DELETE", "/a/")
	f.Add("GET /x/{a}/{b}\nPUT /x/y/{c}\nGET /x/{rest...}", "PUT", "/x/y/z")
	f.Add("GET /{a}/b\nGET /a/{b}", "GET", "/a/b")
	f.Add("GET /f/{p...}\nGET /f/{q}", "GET", "/f/")
	f.Add("post /a\n* /b\nget /b", "HEAD", "//")
	f.Fuzz(func(t *testing.T, spec, method, path string) {
		tab, refs := buildFuzzTable(spec)
		if tab == nil {
			return
		}
		var ps Params
		r, res := tab.Match([]byte(method), []byte(path), &ps)
		want, vals, wantRes, allow := refLookup(refs, method, path)
		if res != wantRes {
			t.Fatalf("%s %s: result %v, reference %v", method, path, res, wantRes)
		}
		if got := tab.Allowed([]byte(path)); got != allow {
			t.Fatalf("Allowed(%q) = %q, reference %q", path, got, allow)
		}
		if res != MatchOK {
			if r != nil || ps.Len() != 0 {
				t.Fatalf("%v with route %v and %d params", res, r, ps.Len())
			}
			return
		}
		if r.Name != want.name {
			t.Fatalf("%s %s: matched %s (%s), reference %s (%s)", method, path, r.Name, r.Path, want.name, want.tpl)
		}
		if ps.Len() != len(vals) {
			t.Fatalf("%d params, reference %d", ps.Len(), len(vals))
		}
		for i, v := range vals {
			if string(ps.Value(i)) != v || string(ps.Get(r.Params()[i])) != v {
				t.Fatalf("param %d = %q, reference %q", i, ps.Value(i), v)
			}
		}
	})
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(base))
	f.Add([]byte(base + "    timeout: 5x\n    tiemout: 1s\n"))
	f.Add([]byte("listen: \":1\"\nadmin: off\n" + base + "  - {name: s, path: \"/s/{id}\", backend: demo, interaction: request-stream, route: s.{id}, stream: {format: sse}}\n"))
	f.Add([]byte("backends:\n  a: &x {addresses: [\"h:1\"], mtu: 1KiB}\n  b: {<<: *x, lease: true, setup: {data: d}}\nroutes:\n  - {name: r, path: /x, backend: b, interaction: rsocket, rsocket: {routes: {\"a.*\": a}}}\n"))
	f.Add([]byte("routes: [{name: x, method: GET, path: /a/{b...}, backend: w, interaction: http, errors: {\"0x201\": 404, nope: 500}}]\nbackends: {w: {transport: http, addresses: http://h}}\n"))
	f.Add([]byte("backends: {r: {addresses: \"h:1\"}, l: {transport: http, addresses: http://h/p, http: {idle_timeout: 1s}}}\nroutes:\n" +
		"  - {name: a, method: GET, path: /a/{id}, backend: r, interaction: request-response, route: a.{id}, rewrite: /v/{id}, split: [{backend: l, weight: 9}, {backend: r, weight: 1}], sticky: {cookie: u}}\n" +
		"  - {name: b, path: /b/{rest...}, backend: l, interaction: http, route: b, shadow: {backend: r, percent: 5, max_concurrency: 2}}\n"))
	f.Add([]byte("- a\n---\nb: [\n"))
	if data, err := os.ReadFile("testdata/design.yaml"); err == nil {
		f.Add(data)
	}
	if data, err := os.ReadFile("../config.example.yaml"); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "f.yaml")
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) || len(ce.Errors) == 0 {
				t.Fatalf("error %T %v is not a non-empty *ConfigError", err, err)
			}
			for _, fe := range ce.Errors {
				if fe.File != "f.yaml" || fe.Msg == "" || !strings.HasPrefix(fe.Error(), "f.yaml") {
					t.Fatalf("malformed error %#v", fe)
				}
			}
			if _, err2 := Parse(data, "f.yaml"); err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("unstable errors:\n%v\n---\n%v", err, err2)
			}
			return
		}
		if _, err := Compile(cfg); err != nil {
			t.Fatalf("Compile of a parsed config: %v", err)
		}
		checkRemarshal(t, cfg)
	})
}

var refTagRE = regexp.MustCompile(`\{([^{}]*)\}`)

func FuzzTemplate(f *testing.F) {
	f.Add("/users/{id}", "users.{id}", "/users/42")
	f.Add("/a/{x}/{rest...}", "{rest}.{x...}", "/a/b/c/d")
	f.Add("/", "", "/")
	f.Add("/{a}/{b}", "{a}{b}{a}", "/x/y")
	f.Add("/x{", "}{", "/x")
	f.Fuzz(func(t *testing.T, path, tag, reqPath string) {
		pt, err := ParsePathTemplate(path)
		if err != nil {
			return
		}
		if pt.String() != path || len(pt.Params()) > MaxParams {
			t.Fatalf("template %q: String %q, %d params", path, pt.String(), len(pt.Params()))
		}
		if len(pt.Params()) == 0 && pt.shape() != path {
			t.Fatalf("static template %q has shape %q", path, pt.shape())
		}
		tpl, err := ParseTemplate(tag, pt.Params())
		if err != nil {
			return
		}
		if tpl.String() != tag {
			t.Fatalf("String %q", tpl.String())
		}
		vals, _, ok := refMatch(pt, reqPath)
		if !ok {
			return
		}
		ps := &Params{names: pt.Params()}
		for _, v := range vals {
			ps.push([]byte(v))
		}
		want := refTagRE.ReplaceAllStringFunc(tag, func(ref string) string {
			return string(ps.Get(strings.TrimSuffix(ref[1:len(ref)-1], "...")))
		})
		if got := string(tpl.Append([]byte("p"), ps)); got != "p"+want {
			t.Fatalf("expand %q with %q = %q, reference %q", tag, vals, got, want)
		}
		// The same expansion through a compiled table.
		cfg := NewConfig()
		b := NewBackend("b")
		b.Addresses = []string{"h:1"}
		cfg.Backends["b"] = b
		r := NewRoute("r", InteractionRequestResponse)
		r.Method, r.Path, r.Backend = "GET", path, "b"
		if len(tag) <= 255 {
			r.Route = tag
		}
		cfg.Routes = []*Route{r}
		tab, err := Compile(cfg)
		if err != nil {
			if len(tag) > 255 || tpl.literalLen() > 255 {
				return
			}
			t.Fatalf("Compile: %v", err)
		}
		var mps Params
		cr, res := tab.Match([]byte("GET"), []byte(reqPath), &mps)
		if res != MatchOK {
			t.Fatalf("reference matched %q against %q, table did not", reqPath, path)
		}
		if r.Route != "" {
			if got := string(cr.AppendTag(nil, &mps)); got != want {
				t.Fatalf("AppendTag = %q, want %q", got, want)
			}
		}
		if !reflect.DeepEqual(cr.Params(), pt.Params()) {
			t.Fatalf("Params %v vs %v", cr.Params(), pt.Params())
		}
	})
}
