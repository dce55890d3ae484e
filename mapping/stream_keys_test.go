package mapping

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const streamBase = `backends:
  demo:
    addresses: ["127.0.0.1:7878"]
routes:
  - name: s
    path: /s
    backend: demo
    interaction: request-stream
`

// TestStreamKeysDefaults: stream.idle_timeout 60s, resume_window 30s, resume_expired new and
// limits.max_parked_streams 1024 when not written; 0 turns the timeouts off.
func TestStreamKeysDefaults(t *testing.T) {
	cfg, err := Parse([]byte(streamBase), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Routes[0].Stream
	if s.IdleTimeout.D() != time.Minute || s.ResumeWindow.D() != 30*time.Second || s.ResumeExpired != "new" {
		t.Fatalf("defaults %+v", s)
	}
	if cfg.Limits.MaxParkedStreams != 1024 {
		t.Fatalf("limits.max_parked_streams = %d", cfg.Limits.MaxParkedStreams)
	}
	if r := NewRoute("x", InteractionRequestStream); r.Stream != newStreamConfig() {
		t.Fatalf("NewRoute stream %+v", r.Stream)
	}
	if c := NewConfig(); c.Limits.MaxParkedStreams != DefaultMaxParkedStreams {
		t.Fatalf("NewConfig limits %+v", c.Limits)
	}
	cfg, err = Parse([]byte("limits: {max_parked_streams: 0}\n"+streamBase+
		"    stream: {idle_timeout: 0, resume_window: 0s, resume_expired: gone}\n"), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s = cfg.Routes[0].Stream
	if s.IdleTimeout != 0 || s.ResumeWindow != 0 || s.ResumeExpired != ResumeExpiredGone || cfg.Limits.MaxParkedStreams != 0 {
		t.Fatalf("explicit values: %+v, max_parked_streams %d", s, cfg.Limits.MaxParkedStreams)
	}
	// limits.stream_idle_timeout is the default of routes that do not set their own.
	cfg, err = Parse([]byte("limits: {stream_idle_timeout: 5m}\n"+streamBase+`  - name: t
    path: /t
    backend: demo
    interaction: request-stream
    stream: {idle_timeout: 0}
`), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Routes[0].Stream.IdleTimeout.D(); got != 5*time.Minute {
		t.Fatalf("route without idle_timeout: %v, want limits.stream_idle_timeout 5m", got)
	}
	if got := cfg.Routes[1].Stream.IdleTimeout; got != 0 {
		t.Fatalf("route with idle_timeout 0: %v", got)
	}
}

// TestStreamKeysErrors: bad values are reported as file:line: field: message.
func TestStreamKeysErrors(t *testing.T) {
	for _, tt := range []struct{ src, want string }{
		{streamBase + "    stream: {resume_expired: gon}\n",
			`c.yaml:9: routes[0].stream.resume_expired: invalid value "gon" (did you mean "gone"?)`},
		{streamBase + "    stream: {resume_expired: \"\"}\n",
			`c.yaml:9: routes[0].stream.resume_expired: required (one of new, gone)`},
		{streamBase + "    stream: {idle_timeout: -1s}\n",
			`c.yaml:9: routes[0].stream.idle_timeout: negative duration "-1s"`},
		{streamBase + "    stream: {resume_window: 10}\n",
			`c.yaml:9: routes[0].stream.resume_window: invalid duration "10" (missing unit, e.g. "10s")`},
		{streamBase + "    stream: {idle_timout: 1s}\n",
			`c.yaml:9: routes[0].stream: unknown key "idle_timout" (did you mean "idle_timeout"?)`},
		{"limits: {max_parked_streams: -1}\n" + streamBase,
			`c.yaml:1: limits.max_parked_streams: must not be negative`},
		{"limits: {stream_idle_timeout: -2s}\n" + streamBase,
			`c.yaml:1: limits.stream_idle_timeout: negative duration "-2s"`},
	} {
		_, err := Parse([]byte(tt.src), "c.yaml")
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Fatalf("%q: err = %v, want *ConfigError", tt.src, err)
		}
		if got := err.Error(); got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
	}
	// Configs built in Go: Validate checks what YAML cannot express.
	cfg := NewConfig()
	cfg.Backends["demo"] = NewBackend("demo")
	cfg.Backends["demo"].Addresses = []string{"127.0.0.1:1"}
	r := NewRoute("s", InteractionRequestStream)
	r.Path, r.Backend = "/s", "demo"
	r.Stream.IdleTimeout, r.Stream.ResumeWindow = -1, -1
	cfg.Routes = []*Route{r}
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "routes[0].stream.idle_timeout: must not be negative") ||
		!strings.Contains(err.Error(), "routes[0].stream.resume_window: must not be negative") {
		t.Fatalf("Validate: %v", err)
	}
}
