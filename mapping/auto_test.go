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

func TestWorkers(t *testing.T) {
	const rest = "backends:\n  b:\n    addresses: [\"127.0.0.1:1\"]\n" +
		"routes:\n  - {name: r, method: GET, path: /r, backend: b, interaction: request-response, route: r}\n"
	parse := func(workers string) (*Config, error) { return Parse([]byte(workers+rest), "c.yaml") }
	c, err := parse("")
	if err != nil || c.Workers != 1 {
		t.Fatalf("default: workers %v, %v; want 1 (one process)", c, err)
	}
	if runtime.GOOS == "linux" {
		for _, procs := range []int{1, 2, 5} {
			old := runtime.GOMAXPROCS(procs)
			c, err := parse("workers: auto\n")
			runtime.GOMAXPROCS(old)
			if err != nil || c.Workers != procs {
				t.Errorf("GOMAXPROCS=%d, workers: auto -> %v, %v; want %d", procs, c, err, procs)
			}
		}
		if c, err := parse("workers: 3\n"); err != nil || c.Workers != 3 {
			t.Errorf("workers: 3 -> %v, %v", c, err)
		}
	} else if _, err := parse("workers: 2\n"); err == nil || !strings.Contains(err.Error(), "need Linux") {
		t.Errorf("workers: 2 on %s: %v, want a need-Linux error", runtime.GOOS, err)
	}
	for workers, want := range map[string]string{
		"workers: many\n": `c.yaml:1: workers: expected an integer or "auto", got string "many"`,
		"workers: 0\n":    `c.yaml:1: workers: must be between 1 and 1024, or "auto" (one per core), got 0`,
		"workers: 2000\n": `c.yaml:1: workers: must be between 1 and 1024, or "auto" (one per core), got 2000`,
	} {
		if _, err := parse(workers); err == nil || err.Error() != want {
			t.Errorf("%q:\ngot  %v\nwant %s", workers, err, want)
		}
	}
}
