package mapping

import (
	"runtime"
	"strings"
	"testing"
)

func TestConnectionsAuto(t *testing.T) {
	const routes = "routes:\n  - {name: r, method: GET, path: /r, backend: b, interaction: request-response, route: r}\n"
	parse := func(t *testing.T, conns string) (*Config, error) {
		t.Helper()
		src := "backends:\n  b:\n    addresses: [\"127.0.0.1:1\"]\n" + conns + routes
		return Parse([]byte(src), "c.yaml")
	}
	for _, procs := range []int{1, 2, 3, 8} {
		old := runtime.GOMAXPROCS(procs)
		want := max(procs, DefaultConnections)
		for _, conns := range []string{"", "    connections: auto\n"} {
			c, err := parse(t, conns)
			if err != nil {
				runtime.GOMAXPROCS(old)
				t.Fatal(err)
			}
			if got := c.Backends["b"].Connections; got != want {
				t.Errorf("GOMAXPROCS=%d, %q: connections %d, want %d", procs, strings.TrimSpace(conns), got, want)
			}
		}
		runtime.GOMAXPROCS(old)
	}
	c, err := parse(t, "    connections: 7\n")
	if err != nil || c.Backends["b"].Connections != 7 {
		t.Fatalf("connections: 7 -> %v, %v", c, err)
	}
	for conns, want := range map[string]string{
		"    connections: automatic\n": `c.yaml:4: backends.b.connections: expected an integer or "auto", got string "automatic"`,
		"    connections: 1.5\n":       `c.yaml:4: backends.b.connections: expected an integer or "auto", got number 1.5`,
		"    connections: 0\n":         `c.yaml:4: backends.b.connections: must be between 1 and 1024, got 0`,
	} {
		if _, err := parse(t, conns); err == nil || err.Error() != want {
			t.Errorf("%q:\ngot  %v\nwant %s", conns, err, want)
		}
	}
}
