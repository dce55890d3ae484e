package main

import (
	"bytes"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/rsgate/rsgate/internal/demo"
	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/mapping"
)

// The usage line names every flag the command defines (issue 13: it omitted -listen, -admin, -log-level).
func TestUsageListsEveryFlag(t *testing.T) {
	var errb bytes.Buffer
	if _, err := parseFlags([]string{"-h"}, &errb); err == nil {
		t.Fatal("-h: no ErrHelp")
	}
	lines := strings.Split(errb.String(), "\n")
	usage := lines[0]
	if !strings.HasPrefix(usage, "Usage: gateway ") {
		t.Fatalf("first line %q", usage)
	}
	flagLine := regexp.MustCompile(`^  -([a-z-]+)`)
	n := 0
	for _, l := range lines[1:] {
		m := flagLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		n++
		if !regexp.MustCompile(`\[-` + regexp.QuoteMeta(m[1]) + `[ \]]`).MatchString(usage) {
			t.Errorf("usage line lacks -%s: %q", m[1], usage)
		}
	}
	if n < 8 {
		t.Fatalf("only %d flags in the defaults listing:\n%s", n, errb.String())
	}
}

// A missing -config file is named as such, not a bare "open ...: no such file or directory".
func TestMissingConfigFileMessage(t *testing.T) {
	var out, errb bytes.Buffer
	path := filepath.Join(t.TempDir(), "nope.yaml")
	if code := run([]string{"-check", "-config", path}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	msg := errb.String()
	if !strings.Contains(msg, "configuration file "+path+" does not exist") || strings.HasPrefix(msg, "open ") {
		t.Fatalf("unclear message: %q", msg)
	}
}

// An unreadable path (a directory) is reported as a read error, not as a missing file.
func TestUnreadableConfigMessage(t *testing.T) {
	var out, errb bytes.Buffer
	dir := t.TempDir()
	if code := run([]string{"-check", "-config", dir}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(errb.String(), "cannot read the configuration") {
		t.Fatalf("unclear message: %q", errb.String())
	}
}

func TestDemoAddrNeedsDemo(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"-demo-addr", "127.0.0.1:0", "-config", "x.yaml"}, &out, &errb); code != 2 {
		t.Fatalf("exit %d, want 2 (%s)", code, errb.String())
	}
}

// -demo-addr moves the demo service, and the embedded example's backend follows it: a busy 7878 is not fatal.
func TestDemoAddrMovesTheDemoService(t *testing.T) {
	// Occupy a port to stand for a busy 7878, and show that -demo-addr elsewhere works.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	f, err := parseFlags([]string{"-demo", "-demo-addr", "127.0.0.1:0", "-listen", "127.0.0.1:0", "-admin", "off"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	table, err := mapping.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g, err := start(f, cfg, table, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer g.shutdown()
	got := cfg.Backends["demo"].Addresses[0]
	if got == demo.DefaultAddr || got != g.demo.Addr().String() {
		t.Fatalf("demo backend address %q, demo service on %s", got, g.demo.Addr())
	}
	base := "http://" + g.listenAddr()
	var code int
	var body string
	testutil.Eventually(t, func() bool {
		code, body = get(t, "GET", base+"/api/users/42", "")
		return code == 200
	}, "GET /api/users/42 through the moved demo")
	if !strings.Contains(body, `"id":"42"`) {
		t.Fatalf("body %q", body)
	}

	// The same address taken: the error names -demo-addr.
	f2, _ := parseFlags([]string{"-demo", "-demo-addr", busy.Addr().String(), "-listen", "127.0.0.1:0", "-admin", "off"}, &bytes.Buffer{})
	cfg2, _ := loadConfig(f2)
	table2, _ := mapping.Compile(cfg2)
	if _, err := start(f2, cfg2, table2, zap.NewNop()); err == nil || !strings.Contains(err.Error(), "-demo-addr") {
		t.Fatalf("busy demo address: %v", err)
	}
}
