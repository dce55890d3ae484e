package mapping

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const indentBase = `listen: ":8080"
backends:
  demo:
    addresses: ["127.0.0.1:7878"]
routes:
  - name: echo
    method: POST
    path: /api/echo
`

// Golden: the line and field of an indentation mistake, where yaml.v3 alone names the start of routes:.
func TestIndentationErrorNamesLineAndField(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"one space short", indentBase + "    backend: demo\n   interaction: request-response\n    route: echo\n",
			"config.yaml:10: routes[0].interaction: invalid YAML: indented 3 spaces, which matches no enclosing block (line 9 above uses 4, its parent 2)"},
		{"one space too many", indentBase + "     backend: demo\n    interaction: request-response\n",
			"config.yaml:9: routes[0].backend: invalid YAML: indented 5 spaces, more than line 8 above it (4), which does not open a block"},
		{"second route", indentBase + "    backend: demo\n    interaction: request-response\n  - name: b\n    method: GET\n     path: /b\n",
			"config.yaml:13: routes[1].path: invalid YAML: indented 5 spaces, more than line 12 above it (4), which does not open a block"},
		{"backend key", "backends:\n  demo:\n    addresses: [\"x:1\"]\n   connections: 2\nroutes: []\n",
			"config.yaml:4: backends.demo.connections: invalid YAML: indented 3 spaces, which matches no enclosing block (line 3 above uses 4, its parent 2)"},
		{"tab", "listen: \":8080\"\nlimits:\n\tmax_body: 1\n",
			"config.yaml:3: a tab in the indentation (YAML indents with spaces only)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), "config.yaml")
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err %v", err)
			}
			if got := ce.Errors[0].Error(); got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// The scan finds nothing in valid files: the example, the test data, the Kubernetes config map and the
// examples, and the shapes it must understand (block scalars, "- " alone, comments, quoted keys).
func TestIndentScanQuietOnValidFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	more, _ := filepath.Glob("../examples/*/gateway.yaml")
	files = append(files, append(more, "../config.example.yaml", "../deploy/configmap.yaml")...)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := findIndentProblem(b); ok {
			t.Errorf("%s:%d: %s: %s", f, p.line, p.field, p.msg)
		}
	}
	valid := strings.Join([]string{
		"# comment",
		"a:",
		"  b: |",
		"      text",
		"    more text",
		"",
		"  c:",
		"  -",
		"    d: 1",
		"  - e: 2",
		"    f:",
		"      - 1",
		"      - [2, 3]",
		`  "quoted key": x`,
		"  g: {h: 1}",
		"---",
	}, "\n")
	if p, ok := findIndentProblem([]byte(valid)); ok {
		t.Fatalf("line %d: %s: %s", p.line, p.field, p.msg)
	}
}

func FuzzIndentScan(f *testing.F) {
	f.Add([]byte(indentBase + "   interaction: x\n"))
	f.Add([]byte(indentBase + "     backend: x\n"))
	f.Add([]byte("a:\n  - - b: 1\n      c: 2\n   d: 3\n"))
	f.Add([]byte("a: |\n  x\n b: 1\n"))
	f.Add([]byte("'k': [1,\n 2]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, ok := findIndentProblem(data)
		if !ok {
			return
		}
		if n := strings.Count(string(data), "\n") + 1; p.line < 1 || p.line > n || p.msg == "" {
			t.Fatalf("problem %+v outside the %d lines", p, n)
		}
	})
}
