package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The README's example errors are what `gateway -check` prints for testdata/my.yaml, byte for byte
// (issue 13: the README showed a "did you mean" the code did not give).
func TestReadmeConfigErrors(t *testing.T) {
	var want []string
	for _, l := range strings.Split(readRepoFile(t, "README.md"), "\n") {
		if strings.HasPrefix(l, "my.yaml:") {
			want = append(want, l)
		}
	}
	if len(want) < 2 {
		t.Fatalf("README has %d example error lines", len(want))
	}
	var out, errb bytes.Buffer
	if code := run([]string{"-check", "-config", filepath.Join("testdata", "my.yaml")}, &out, &errb); code != 1 {
		t.Fatalf("exit %d", code)
	}
	got := strings.Split(strings.TrimSpace(strings.ReplaceAll(errb.String(), filepath.Join("testdata", "my.yaml"), "my.yaml")), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("gateway -check prints\n%s\nREADME shows\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// config.example.yaml names the binary (gateway, not rsgate) and says what max_inflight bounds as the code
// does (pool: one counter per backend), as README.md does (issue 13).
func TestExampleConfigComments(t *testing.T) {
	ex := readRepoFile(t, "config.example.yaml")
	if strings.Contains(ex, "rsgate -") {
		t.Error("config.example.yaml names an `rsgate` command; the binary is `gateway`")
	}
	for _, l := range strings.Split(ex, "\n") {
		if strings.Contains(l, "max_inflight:") && (strings.Contains(l, "per connection") || !strings.Contains(l, "backend")) {
			t.Errorf("max_inflight comment: %q (it bounds the whole backend)", l)
		}
	}
	if !strings.Contains(readRepoFile(t, "README.md"), "| `max_inflight` | `10000` | concurrent requests to the backend;") {
		t.Error("README's max_inflight row changed: keep it per backend")
	}
}

// .dockerignore keeps the repository's history, benchmarks, node_modules and build outputs out of the
// Docker build context.
func TestDockerignore(t *testing.T) {
	lines := map[string]bool{}
	for _, l := range strings.Split(readRepoFile(t, ".dockerignore"), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, want := range []string{".git", "bench/", "**/node_modules", "/gateway", "*.test"} {
		if !lines[want] {
			t.Errorf(".dockerignore lacks %q", want)
		}
	}
	if !strings.Contains(readRepoFile(t, "README.md"), "-admin :9901") || !strings.Contains(readRepoFile(t, "README.md"), "admin_token_file") {
		t.Error("README does not document -admin :9901 with admin_token_file for containers")
	}
}

// Every error code the ingress answers with is in README.md's error table.
func TestReadmeErrorTableComplete(t *testing.T) {
	readme := readRepoFile(t, "README.md")
	i := strings.Index(readme, "\n## Errors\n")
	if i < 0 {
		t.Fatal("README has no Errors section")
	}
	table := readme[i:]
	if j := strings.Index(table[1:], "\n## "); j >= 0 {
		table = table[:j+1]
	}
	files, _ := filepath.Glob(filepath.Join("..", "..", "ingress", "*.go"))
	re := regexp.MustCompile(`\bCode[A-Za-z]+\s*=\s*"([A-Z_]+)"`)
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			n++
			if !strings.Contains(table, "`"+m[1]+"`") {
				t.Errorf("error code %s (%s) is not in README's error table", m[1], filepath.Base(f))
			}
		}
	}
	for _, status := range []string{"| 400 |", "| 403 |", "| 404 |", "| 405 + Allow |", "| 413 |", "| 426 |", "| 431 |", "| 501 |", "| 504 |"} {
		if !strings.Contains(table, status) {
			t.Errorf("the error table has no %s row", status)
		}
	}
	if n < 15 {
		t.Fatalf("found only %d error codes in ingress", n)
	}
}

// Every document in docs/ is linked from README.md (docs/CONTRACT.md was an unlinked planning note).
func TestDocsLinkedFromReadme(t *testing.T) {
	readme := readRepoFile(t, "README.md")
	docs, _ := filepath.Glob(filepath.Join("..", "..", "docs", "*.md"))
	if len(docs) == 0 {
		t.Fatal("no docs")
	}
	for _, d := range docs {
		if name := "docs/" + filepath.Base(d); !strings.Contains(readme, "("+name+")") {
			t.Errorf("%s is not linked from README.md", name)
		}
	}
}

// The examples' gateway configurations are valid (.ci/examples runs the Go and Node ones for real).
func TestExampleConfigsValid(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "examples", "*", "gateway.yaml"))
	if len(files) < 3 {
		t.Fatalf("examples: %v", files)
	}
	for _, f := range files {
		var out, errb bytes.Buffer
		if code := run([]string{"-check", "-config", f}, &out, &errb); code != 0 {
			t.Errorf("%s: %s", f, errb.String())
		}
	}
}
