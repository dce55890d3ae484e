package main

import (
	"bytes"
	"os"
	"path/filepath"
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
