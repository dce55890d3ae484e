package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestScaling(t *testing.T) {
	dir := t.TempDir()
	head := "peer\tconns\trep\trps\trequests\tduration_s\tp50_us\tp90_us\tp99_us\tp999_us\tproxy_ticks\tbackend_ticks\twrk_cpu_s\tsys_busy_ticks\twall_s\terrors\tresp_bytes\tsut_busy_ticks\n"
	row := func(peer string, rps string) string {
		return peer + "\t64\t1\t" + rps + "\t1000\t1\t1\t1\t1\t1\t1\t1\t1\t1\t1\t0\t1\t1\n"
	}
	one := filepath.Join(dir, "1.tsv")
	two := filepath.Join(dir, "2.tsv")
	if err := os.WriteFile(one, []byte(head+row("gateway", "50000")+row("nginx", "25000")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(two, []byte(head+row("gateway", "95000")+row("nginx", "40000")), 0o644); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := scaling(&b, "2="+two+" 1="+one, []string{"gateway", "nginx"}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"| 64 | gateway | 50000 | 50000 | 95000 | 47500 | 1.90x |",
		"| 64 | nginx | 25000 | 25000 | 40000 | 20000 | 1.60x |",
		"scaling 1→2",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	if err := scaling(&b, "x=y", nil); err == nil {
		t.Error("bad spec accepted")
	}
}
