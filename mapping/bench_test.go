package mapping

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
)

// benchSpecs returns n route specs for tableOf, a realistic mix: per service a static list endpoint, item
// routes with one and two parameters under several methods, a WebSocket route and a catch-all for assets.
func benchSpecs(n int) []string {
	var specs []string
	for svc := 0; len(specs) < n; svc++ {
		s := fmt.Sprintf("svc%d", svc)
		for _, spec := range []string{
			"GET /api/v1/" + s + "/items " + s + ".list",
			"POST /api/v1/" + s + "/items " + s + ".create",
			"GET /api/v1/" + s + "/items/{id} " + s + ".get.{id}",
			"PUT /api/v1/" + s + "/items/{id} " + s + ".put.{id}",
			"DELETE /api/v1/" + s + "/items/{id} " + s + ".delete.{id}",
			"GET /api/v1/" + s + "/items/{id}/comments/{cid} " + s + ".comment.{id}.{cid}",
			"GET /api/v1/" + s + "/items/search " + s + ".search",
			"GET /api/v1/" + s + "/stats " + s + ".stats",
			"WS /ws/" + s + " " + s + ".chat",
			"GET /assets/" + s + "/{path...} " + s + ".asset.{path}",
		} {
			if len(specs) < n {
				specs = append(specs, spec)
			}
		}
	}
	return specs
}

func benchTable(tb testing.TB, n int) *Table { return tableOf(tb, benchSpecs(n)...) }

type benchPath struct {
	method, path string
	want         MatchResult
}

// benchPaths are the requests the benchmark cycles through: hits of every kind spread over the table,
// plus a 405 and a 404.
func benchPaths() []benchPath {
	return []benchPath{
		{"GET", "/api/v1/svc7/items", MatchOK},
		{"GET", "/api/v1/svc42/items/12345", MatchOK},
		{"PUT", "/api/v1/svc99/items/abc-def", MatchOK},
		{"GET", "/api/v1/svc13/items/77/comments/9", MatchOK},
		{"GET", "/api/v1/svc64/items/search", MatchOK},
		{"GET", "/ws/svc3", MatchOK},
		{"GET", "/assets/svc88/css/site/main.css", MatchOK},
		{"GET", "/api/v1/svc55/stats", MatchOK},
		{"PATCH", "/api/v1/svc5/items/1", MatchMethodNotAllowed},
		{"GET", "/api/v2/nothing/here", MatchNotFound},
	}
}

func BenchmarkMatch1000(b *testing.B) {
	tab := benchTable(b, 1000)
	paths := benchPaths()
	methods, bpaths := make([][]byte, len(paths)), make([][]byte, len(paths))
	for i, p := range paths {
		methods[i], bpaths[i] = []byte(p.method), []byte(p.path)
	}
	var ps Params
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % len(paths)
		tab.Match(methods[j], bpaths[j], &ps)
	}
}

// BenchmarkMatchAndTag1000 adds routing tag expansion, what ingress does per request.
func BenchmarkMatchAndTag1000(b *testing.B) {
	tab := benchTable(b, 1000)
	paths := benchPaths()[:8]
	methods, bpaths := make([][]byte, len(paths)), make([][]byte, len(paths))
	for i, p := range paths {
		methods[i], bpaths[i] = []byte(p.method), []byte(p.path)
	}
	var ps Params
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % len(paths)
		r, _ := tab.Match(methods[j], bpaths[j], &ps)
		buf = r.AppendTag(buf[:0], &ps)
	}
}

// BenchmarkServeMux1000 is the standard alternative: net/http.ServeMux (Go 1.22 patterns) with the same
// routes and requests.
func BenchmarkServeMux1000(b *testing.B) {
	mux := http.NewServeMux()
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	for _, spec := range benchSpecs(1000) {
		f := strings.Fields(spec)
		method := f[0]
		if method == "WS" {
			method = "GET"
		}
		mux.Handle(method+" "+f[1], h)
	}
	var reqs []*http.Request
	for _, p := range benchPaths() {
		reqs = append(reqs, &http.Request{Method: p.method, URL: &url.URL{Path: p.path}, Host: "x"})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		mux.Handler(reqs[i%len(reqs)])
	}
}

func BenchmarkParseConfig(b *testing.B) {
	data, err := os.ReadFile("../config.example.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Parse(data, "config.example.yaml"); err != nil {
			b.Fatal(err)
		}
	}
}
