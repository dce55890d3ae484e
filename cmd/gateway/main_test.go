package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rsgate/rsgate"
	"github.com/rsgate/rsgate/mapping"
)

// The embedded example is the repository's config.example.yaml, byte for byte.
func TestEmbeddedExampleIsTheRepositoryFile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, rsgate.ExampleConfig) {
		t.Fatal("embedded example differs from config.example.yaml")
	}
}

func TestCheckExampleConfig(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"-check", "-config", filepath.Join("..", "..", "config.example.yaml")}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d, stderr: %s", code, errb.String())
	}
	for _, want := range []string{"NAME", "/api/echo", "users.{id}", "ticks.{count}", "request-stream", "fire-and-forget", "/ws/chat", "/rsocket", "configuration is valid"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-check output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestCheckReportsFileLineField(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.yaml")
	cfg := "listen: \":8080\"\nbackends:\n  b:\n    addresses: [\"127.0.0.1:1\"]\nroutes:\n  - name: r\n    method: POST\n    path: /x\n    backend: b\n    interaction: request-response\n    timeout: 5x\n"
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"-check", "-config", path}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	want := "bad.yaml:11: routes[0].timeout"
	if !strings.Contains(errb.String(), want) {
		t.Fatalf("stderr %q lacks %q", errb.String(), want)
	}
}

func TestCheckDemoUsesEmbeddedExample(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"-check", "-demo"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "(embedded)") {
		t.Fatalf("output does not name the embedded file: %s", out.String())
	}
}

func TestNoConfigIsAnError(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(nil, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(errb.String(), "-config FILE") {
		t.Fatalf("unhelpful error: %q", errb.String())
	}
}

func TestVersionAndBadFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"-version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "rsgate gateway ") {
		t.Fatalf("-version: exit %d, %q", code, out.String())
	}
	if code := run([]string{"-nope"}, &out, &errb); code != 2 {
		t.Fatalf("bad flag: exit %d, want 2", code)
	}
	if code := run([]string{"extra"}, &out, &errb); code != 2 {
		t.Fatalf("extra argument: exit %d, want 2", code)
	}
}

func TestFlagOverrides(t *testing.T) {
	f, err := parseFlags([]string{"-demo", "-listen", "127.0.0.1:0", "-admin", "off"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:0" || cfg.Admin != "" {
		t.Fatalf("overrides not applied: listen %q admin %q", cfg.Listen, cfg.Admin)
	}
	if _, err := mapping.Compile(cfg); err != nil {
		t.Fatal(err)
	}
}

func TestDemoHelpLines(t *testing.T) {
	var b bytes.Buffer
	printDemoHelp(&b, "[::]:8080")
	s := b.String()
	for _, want := range []string{"http://localhost:8080/api/echo", "http://localhost:8080/api/users/42", "Accept: text/event-stream", "/api/log", "ws://localhost:8080/ws/chat"} {
		if !strings.Contains(s, want) {
			t.Errorf("demo help lacks %q:\n%s", want, s)
		}
	}
}
