package mapping

import "testing"

const paramBenchConfig = `backends: {demo: {addresses: ["h:1"]}}
routes:
  - {name: def, method: GET, path: "/d/{id}/x/{name}", backend: demo, interaction: request-response, route: "d.{id}.{name}"}
  - {name: num, method: GET, path: "/n/{id:[0-9]+}", backend: demo, interaction: request-response, route: "n.{id}"}
  - {name: any, method: GET, path: "/a/{id:any}", backend: demo, interaction: request-response, route: "a.{id}"}
  - {name: rest, method: GET, path: "/r/{rest...}", backend: demo, interaction: request-response, route: "r.{rest}"}
`

// BenchmarkCheckParams measures Match plus the parameter check per form: default (byte classes),
// pattern (regexp), any, catch-all; and Match alone for comparison.
func BenchmarkCheckParams(b *testing.B) {
	cfg, err := Parse([]byte(paramBenchConfig), "bench.yaml")
	if err != nil {
		b.Fatal(err)
	}
	tab, err := Compile(cfg)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, path string }{
		{"default", "/d/12345/x/abc-DEF_~"}, {"pattern", "/n/123456"}, {"any", "/a/42.admin"}, {"catchall", "/r/a/b/c.txt"},
	} {
		path := []byte(bc.path)
		b.Run(bc.name+"/match", func(b *testing.B) {
			b.ReportAllocs()
			var ps Params
			for i := 0; i < b.N; i++ {
				tab.Match([]byte("GET"), path, &ps)
			}
		})
		b.Run(bc.name+"/match+check", func(b *testing.B) {
			b.ReportAllocs()
			var ps Params
			for i := 0; i < b.N; i++ {
				r, _ := tab.Match([]byte("GET"), path, &ps)
				if r.CheckParams(&ps) >= 0 {
					b.Fatal("invalid")
				}
			}
		})
	}
}
