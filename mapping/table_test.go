package mapping

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// tableOf compiles routes given as "METHOD /path [tag]"; each route is named after its index ("r0", ...).
// Method "WS" makes a request-channel route, "*" an http route.
func tableOf(tb testing.TB, specs ...string) *Table {
	tb.Helper()
	cfg := NewConfig()
	b := NewBackend("b")
	b.Addresses = []string{"127.0.0.1:1"}
	h := NewBackend("h")
	h.Transport, h.Addresses = TransportHTTP, []string{"http://127.0.0.1:2"}
	cfg.Backends["b"], cfg.Backends["h"] = b, h
	for i, s := range specs {
		f := strings.Fields(s)
		var r *Route
		switch f[0] {
		case "WS":
			r = NewRoute(fmt.Sprintf("r%d", i), InteractionRequestChannel)
			r.Backend = "b"
		case "*":
			r = NewRoute(fmt.Sprintf("r%d", i), InteractionHTTP)
			r.Backend = "h"
		default:
			r = NewRoute(fmt.Sprintf("r%d", i), InteractionRequestResponse)
			r.Method, r.Backend = f[0], "b"
		}
		r.Path = f[1]
		if len(f) > 2 {
			r.Route = f[2]
		}
		cfg.Routes = append(cfg.Routes, r)
	}
	t, err := Compile(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

func TestMatchPrecedence(t *testing.T) {
	tab := tableOf(t,
		"GET /users/me",           // r0
		"GET /users/{id}",         // r1
		"GET /users/{id}/posts",   // r2
		"GET /users/me/posts/{p}", // r3
		"GET /files/{rest...}",    // r4
		"GET /files/readme",       // r5
		"GET /files/{dir}/index",  // r6
		"GET /",                   // r7
		"GET /api/",               // r8
		"GET /api",                // r9
		"GET /{any...}",           // r10
		"POST /users/{id}",        // r11
		"WS /ws/chat",             // r12
		"* /legacy/{rest...}",     // r13
		"PUT /legacy/special",     // r14
		"GET /a/{x}/c",            // r15
		"GET /a/b/{y}/d",          // r16
	)
	tests := []struct {
		method, path string
		want         string // route name, "404" or "405"
		params       map[string]string
	}{
		{"GET", "/users/me", "r0", nil},
		{"GET", "/users/42", "r1", map[string]string{"id": "42"}},
		{"POST", "/users/me", "r11", map[string]string{"id": "me"}}, // static GET-only node: falls back to the param route
		{"GET", "/users/42/posts", "r2", map[string]string{"id": "42"}},
		{"GET", "/users/me/posts", "r2", map[string]string{"id": "me"}}, // static branch dead-ends: backtrack
		{"GET", "/users/me/posts/7", "r3", map[string]string{"p": "7"}},
		{"GET", "/files/readme", "r5", nil},
		{"GET", "/files/a/index", "r6", map[string]string{"dir": "a"}},
		{"GET", "/files/a/b/c", "r4", map[string]string{"rest": "a/b/c"}},
		{"GET", "/files/", "r4", map[string]string{"rest": ""}},
		{"GET", "/files", "r10", map[string]string{"any": "files"}},
		{"GET", "/", "r7", nil},
		{"GET", "/api/", "r8", nil},
		{"GET", "/api", "r9", nil},
		{"GET", "/users/", "r10", map[string]string{"any": "users/"}}, // {id} needs a non-empty segment
		{"GET", "/users//posts", "r10", map[string]string{"any": "users//posts"}},
		{"GET", "/ws/chat", "r12", nil},
		{"POST", "/ws/chat", "405", nil},
		{"DELETE", "/users/7", "405", nil},
		{"DELETE", "/legacy/x/y", "r13", map[string]string{"rest": "x/y"}},
		{"PUT", "/legacy/special", "r14", nil},
		{"GET", "/legacy/special", "r13", map[string]string{"rest": "special"}},
		{"GET", "/a/b/c", "r15", map[string]string{"x": "b"}},
		{"GET", "/a/b/z/d", "r16", map[string]string{"y": "z"}},
		{"POST", "/nothing", "405", nil}, // GET /{any...} matches every path
		{"GET", "", "404", nil},
		{"GET", "users", "404", nil},
		{"GET", "/users/%41", "r1", map[string]string{"id": "%41"}}, // raw: no decoding
	}
	var ps Params
	for _, tt := range tests {
		r, res := tab.Match([]byte(tt.method), []byte(tt.path), &ps)
		got := map[MatchResult]string{MatchNotFound: "404", MatchMethodNotAllowed: "405"}[res]
		if res == MatchOK {
			got = r.Name
		} else if r != nil || ps.Len() != 0 {
			t.Errorf("%s %s: result %v with route %v and %d params", tt.method, tt.path, res, r, ps.Len())
		}
		if got != tt.want {
			t.Errorf("%s %s = %s, want %s", tt.method, tt.path, got, tt.want)
			continue
		}
		if res != MatchOK {
			continue
		}
		params := map[string]string{}
		for i := 0; i < ps.Len(); i++ {
			params[ps.Name(i)] = string(ps.Value(i))
			if string(ps.Get(ps.Name(i))) != string(ps.Value(i)) {
				t.Errorf("Get(%q) != Value(%d)", ps.Name(i), i)
			}
		}
		if len(params) == 0 {
			params = nil
		}
		if !reflect.DeepEqual(params, tt.params) {
			t.Errorf("%s %s params = %v, want %v", tt.method, tt.path, params, tt.params)
		}
		if !reflect.DeepEqual(r.Params(), ps.names) {
			t.Errorf("%s %s: Params() = %v, ps names %v", tt.method, tt.path, r.Params(), ps.names)
		}
	}
	if ps.Get("nope") != nil {
		t.Error("Get(unknown) != nil")
	}
	if _, res := tableOf(t, "GET /a").Match([]byte("GET"), []byte("/b"), &ps); res != MatchNotFound || res.String() != "not found" {
		t.Errorf("GET /b = %v", res)
	}
}

func TestAllowed(t *testing.T) {
	tab := tableOf(t, "GET /x/{id}", "POST /x/{id}", "DELETE /x/{id}", "PUT /x/me", "GET /y", "* /z", "PATCH /z")
	tests := map[string]string{
		"/x/1":  "DELETE, GET, HEAD, POST",      // HEAD wherever GET is
		"/x/me": "DELETE, GET, HEAD, POST, PUT", // two templates match: union
		"/y":    "GET, HEAD",
		"/z":    "", // a "*" route takes every method
		"/none": "",
		"":      "",
	}
	for path, want := range tests {
		if got := tab.Allowed([]byte(path)); got != want {
			t.Errorf("Allowed(%q) = %q, want %q", path, got, want)
		}
	}
	var ps Params
	// HEAD is matched as GET where no HEAD route exists (RFC 9110 9.3.2), and only there.
	if r, res := tab.Match([]byte("HEAD"), []byte("/x/7"), &ps); res != MatchOK || r.Method != "GET" || string(ps.Value(0)) != "7" {
		t.Errorf("HEAD /x/7 = %v %v", res, r)
	}
	if _, res := tab.Match([]byte("HEAD"), []byte("/none"), &ps); res != MatchNotFound {
		t.Errorf("HEAD /none = %v", res)
	}
	tabH := tableOf(t, "POST /p")
	if _, res := tabH.Match([]byte("HEAD"), []byte("/p"), &ps); res != MatchMethodNotAllowed {
		t.Errorf("HEAD on a POST-only path = %v", res)
	}
	if _, res := tab.Match([]byte("PATCH"), []byte("/x/1"), &ps); res != MatchMethodNotAllowed || res.String() != "method not allowed" {
		t.Errorf("PATCH /x/1 = %v", res)
	}
	if r, res := tab.Match([]byte("OPTIONS"), []byte("/z"), &ps); res != MatchOK || r.Name != "r5" {
		t.Errorf("OPTIONS /z = %v %v", r, res)
	}
	if r, res := tab.Match([]byte("PATCH"), []byte("/z"), &ps); res != MatchOK || r.Name != "r6" {
		t.Errorf("PATCH /z = %v %v", r, res)
	}
}

func TestManyStaticChildren(t *testing.T) {
	var specs []string
	for i := 0; i < 40; i++ {
		specs = append(specs, fmt.Sprintf("GET /s%d/x", i))
	}
	specs = append(specs, "GET /{p}/x")
	tab := tableOf(t, specs...)
	if tab.root.index == nil {
		t.Fatal("no static index for 40 children")
	}
	var ps Params
	for i := 0; i < 40; i++ {
		if r, _ := tab.Match([]byte("GET"), []byte(fmt.Sprintf("/s%d/x", i)), &ps); r == nil || r.Name != fmt.Sprintf("r%d", i) {
			t.Errorf("/s%d/x -> %v", i, r)
		}
	}
	if r, _ := tab.Match([]byte("GET"), []byte("/other/x"), &ps); r == nil || r.Name != "r40" || string(ps.Get("p")) != "other" {
		t.Errorf("/other/x -> %v", r)
	}
}

func TestTagExpansion(t *testing.T) {
	tab := tableOf(t,
		"GET /users/{id} users.{id}",
		"GET /orgs/{org}/repos/{repo} repo.{repo}.of.{org}",
		"GET /static/x static.tag",
		"GET /files/{path...} files:{path}",
		"GET /none",
	)
	tests := []struct{ path, want string }{
		{"/users/42", "users.42"},
		{"/orgs/acme/repos/gw", "repo.gw.of.acme"},
		{"/static/x", "static.tag"},
		{"/files/a/b.txt", "files:a/b.txt"},
		{"/files/", "files:"},
		{"/none", ""},
	}
	var ps Params
	for _, tt := range tests {
		r, res := tab.Match([]byte("GET"), []byte(tt.path), &ps)
		if res != MatchOK {
			t.Fatalf("%s: %v", tt.path, res)
		}
		if got := string(r.AppendTag([]byte("pre:"), &ps)); got != "pre:"+tt.want {
			t.Errorf("%s: tag %q, want %q", tt.path, got, "pre:"+tt.want)
		}
		if r.HasTag() != (tt.want != "") {
			t.Errorf("%s: HasTag = %v", tt.path, r.HasTag())
		}
	}
	if p := tab.Route("r1").Params(); !reflect.DeepEqual(p, []string{"org", "repo"}) {
		t.Errorf("Params() = %v", p)
	}
	if tab.Route("r2").Tag().IsStatic() != true || tab.Route("r0").Tag().IsStatic() {
		t.Error("IsStatic")
	}
}

func TestParsePathTemplate(t *testing.T) {
	good := map[string]string{ // template -> shape
		"/":                  "/",
		"/a":                 "/a",
		"/a/":                "/a/",
		"/a/{b}":             "/a/{}",
		"/a/{b}/":            "/a/{}/",
		"/{x}/{y}/{z...}":    "/{}/{}/{...}",
		"/{rest...}":         "/{...}",
		"/a/b.c/ünï/%20":     "/a/b.c/ünï/%20",
		"/_/{_x1}/{X_2...}":  "/_/{}/{...}",
		"/a/{b}/c/{d}/e/{f}": "/a/{}/c/{}/e/{}",
	}
	for in, shape := range good {
		tpl, err := ParsePathTemplate(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if tpl.shape() != shape || tpl.String() != in {
			t.Errorf("%q: shape %q", in, tpl.shape())
		}
	}
	bad := map[string]string{
		"":               `empty path`,
		"a":              `path "a" must start with "/"`,
		"//":             `path "//" has an empty segment ("//")`,
		"/a//b":          `path "/a//b" has an empty segment ("//")`,
		"/a?x=1":         `path "/a?x=1" contains '?' (query strings, fragments, spaces and control characters cannot be matched)`,
		"/a b":           `path "/a b" contains ' ' (query strings, fragments, spaces and control characters cannot be matched)`,
		"/{}":            `path "/{}": invalid parameter name "" (letters, digits and '_', not starting with a digit)`,
		"/{1a}":          `path "/{1a}": invalid parameter name "1a" (letters, digits and '_', not starting with a digit)`,
		"/{a-b}":         `path "/{a-b}": invalid parameter name "a-b" (letters, digits and '_', not starting with a digit)`,
		"/{a":            `path "/{a": segment "{a" mixes text and braces (a parameter must be a whole segment: "{name}")`,
		"/x{a}":          `path "/x{a}": segment "x{a}" mixes text and braces (a parameter must be a whole segment: "{name}")`,
		"/{{a}}":         `path "/{{a}}": segment "{{a}}" mixes text and braces (a parameter must be a whole segment: "{name}")`,
		"/{a...}/b":      `path "/{a...}/b": catch-all "{a...}" must be the last segment`,
		"/{a...}/":       `path "/{a...}/": catch-all "{a...}" must be the last segment`,
		"/{a}/{a...}":    `path "/{a}/{a...}": duplicate parameter "a"`,
		"/{...}":         `path "/{...}": invalid parameter name "" (letters, digits and '_', not starting with a digit)`,
		"/" + params(17): `path "/` + params(17) + `": more than 16 parameters`,
	}
	for in, want := range bad {
		if _, err := ParsePathTemplate(in); err == nil || err.Error() != want {
			t.Errorf("%q: got %v\nwant %s", in, err, want)
		}
	}
	if _, err := ParsePathTemplate("/" + params(16)); err != nil {
		t.Errorf("16 params: %v", err)
	}
}

func params(n int) string {
	var s []string
	for i := 0; i < n; i++ {
		s = append(s, fmt.Sprintf("{p%d}", i))
	}
	return strings.Join(s, "/")
}

func TestParseTemplate(t *testing.T) {
	names := []string{"id", "rest"}
	ps := &Params{n: 2}
	ps.vals[0], ps.vals[1] = []byte("42"), []byte("a/b")
	good := map[string]string{
		"":                "",
		"users":           "users",
		"users.{id}":      "users.42",
		"{id}":            "42",
		"{id}{id}":        "4242",
		"x.{rest...}.y":   "x.a/b.y",
		"{rest}/{id}/end": "a/b/42/end",
	}
	for in, want := range good {
		tpl, err := ParseTemplate(in, names)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if got := string(tpl.Append(nil, ps)); got != want || tpl.String() != in {
			t.Errorf("%q -> %q, want %q", in, got, want)
		}
	}
	bad := map[string]string{
		"users.{":      `template "users.{": unterminated "{"`,
		"users.{id":    `template "users.{id": unterminated "{"`,
		"users.{{id}}": `template "users.{{id}}": unterminated "{"`,
		"users}":       `template "users}": unmatched "}"`,
		"users.{x}":    `template "users.{x}": unknown parameter "x" (the path has id, rest)`,
		"{}":           `template "{}": unknown parameter "" (the path has id, rest)`,
	}
	for in, want := range bad {
		if _, err := ParseTemplate(in, names); err == nil || err.Error() != want {
			t.Errorf("%q: got %v\nwant %s", in, err, want)
		}
	}
}

func TestErrorStatusAndRSocketBackend(t *testing.T) {
	cfg := mustParse(t, `backends:
  demo: {addresses: ["h:1"]}
  other: {addresses: ["h:2"]}
  demo2: {addresses: ["h:3"]}
  web: {transport: http, addresses: ["http://h:4"]}
routes:
  - name: rr
    method: GET
    path: /x
    backend: demo
    interaction: request-response
    errors:
      "not found": 404
      "not found: gone": 410
      "0x202": 429
      770: 502
  - name: rs
    path: /rsocket
    backend: demo
    interaction: rsocket
    rsocket:
      routes: {"users.*": other, "users.admin": demo2, "*": demo2, "orders.*": other, "orders.eu.*": demo}
  - name: px
    path: /legacy/{p...}
    backend: web
    interaction: http
    rewrite: /v2/{p}
  - name: px2
    path: /plain
    backend: web
    interaction: http
`)
	tab, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rr := tab.Route("rr")
	statuses := []struct {
		code uint32
		msg  string
		want int
		ok   bool
	}{
		{0x201, "not found", 404, true},
		{0x201, "not found: user", 404, true},
		{0x201, "not found: gone for good", 410, true}, // longest prefix wins
		{0x201, "boom", 0, false},
		{0x202, "not found", 429, true}, // message prefixes only apply to APPLICATION_ERROR
		{770, "", 502, true},
		{0x204, "", 0, false},
	}
	for _, s := range statuses {
		if got, ok := rr.ErrorStatus(s.code, []byte(s.msg)); got != s.want || ok != s.ok {
			t.Errorf("ErrorStatus(%#x, %q) = %d %v, want %d %v", s.code, s.msg, got, ok, s.want, s.ok)
		}
	}
	rs := tab.Route("rs")
	backends := map[string]string{
		"users.admin":  "demo2", // exact beats prefix
		"users.list":   "other",
		"orders.eu.1":  "demo", // longest prefix
		"orders.us.1":  "other",
		"anything":     "demo2", // "*" is the empty prefix
		"users.admin2": "other",
	}
	for tag, want := range backends {
		if got := rs.RSocketBackend([]byte(tag)); got != want {
			t.Errorf("RSocketBackend(%q) = %q, want %q", tag, got, want)
		}
	}
	if got := tab.Route("rr").RSocketBackend([]byte("x")); got != "demo" {
		t.Errorf("default RSocketBackend = %q", got)
	}
	var ps Params
	r, _ := tab.Match([]byte("DELETE"), []byte("/legacy/a/b"), &ps)
	if got := string(r.AppendUpstreamPath(nil, []byte("/legacy/a/b"), &ps)); got != "/v2/a/b" {
		t.Errorf("upstream path %q", got)
	}
	r, _ = tab.Match([]byte("GET"), []byte("/plain"), &ps)
	if got := string(r.AppendUpstreamPath(nil, []byte("/plain"), &ps)); got != "/plain" {
		t.Errorf("upstream path %q", got)
	}
	if r.BackendConfig != cfg.Backend("web") || r.Index != 3 || tab.Routes()[3] != r {
		t.Errorf("BackendConfig/Index wrong: %v %d", r.BackendConfig, r.Index)
	}
}
