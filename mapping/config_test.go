package mapping

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// stripLines clears the source positions so that configs from different sources compare equal.
func stripLines(c *Config) *Config {
	c.lines, c.bad, c.File = nil, nil, ""
	for _, b := range c.Backends {
		b.Line = 0
	}
	for _, r := range c.Routes {
		r.Line = 0
	}
	return c
}

func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	cfg, err := Parse([]byte(src), "config.yaml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return cfg
}

// TestParseDesignExample is the golden test for the configuration contract of the design (testdata/design.yaml,
// the full example with every contract key): every key it sets and every
// default it leaves out.
func TestParseDesignExample(t *testing.T) {
	cfg, err := Load("testdata/design.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.File != "testdata/design.yaml" {
		t.Errorf("File = %q", cfg.File)
	}
	if b := cfg.Backend("demo"); b == nil || b.Line != 5 {
		t.Errorf("Backend(demo) = %+v", b)
	}
	if cfg.Routes[2].Line != 30 {
		t.Errorf("routes[2].Line = %d, want 30", cfg.Routes[2].Line)
	}

	want := &Config{
		Listen:        ":8080",
		Admin:         "127.0.0.1:9901",
		ShutdownGrace: Duration(15 * time.Second), Workers: 1,
		Log: LogConfig{Level: "info", Format: "json", AccessLog: AccessLogConfig{Enabled: false, Sample: 1}},
		Limits: Limits{
			MaxBody:           4 << 20,
			ReadTimeout:       Duration(30 * time.Second),
			WriteTimeout:      0,
			IdleTimeout:       Duration(120 * time.Second),
			MaxHeaderSize:     8192,
			ReduceMemory:      true,
			Admission:         NewAdmission(),
			MaxParkedStreams:  DefaultMaxParkedStreams,
			StreamIdleTimeout: Duration(DefaultStreamIdleTimeout),
		},
		Backends: map[string]*Backend{
			"demo": {
				Name:            "demo",
				Transport:       "tcp",
				Addresses:       []string{"127.0.0.1:7878"},
				Connections:     2,
				DataMIME:        "application/json",
				MetadataMIME:    "message/x.rsocket.composite-metadata.v0",
				Keepalive:       Duration(20 * time.Second),
				MaxLifetime:     Duration(90 * time.Second),
				MaxInflight:     10000,
				DialTimeout:     Duration(5 * time.Second),
				ResolveInterval: Duration(30 * time.Second),
				Reconnect:       Reconnect{MinBackoff: Duration(100 * time.Millisecond), MaxBackoff: Duration(10 * time.Second)},
				Resume:          BackendResume{SessionDuration: Duration(30 * time.Second), Buffer: 1 << 20},
				Balancer:        "weighted",
				Outlier:         Outlier{ConsecutiveFailures: 5, EjectionTime: Duration(30 * time.Second), MaxEjectedPercent: 50},
			},
		},
		Routes: []*Route{
			{
				Name: "echo", Method: "POST", Path: "/api/echo", Backend: "demo",
				Interaction: "request-response", Route: "echo", Timeout: Duration(5 * time.Second),
				MaxBody: 4 << 20, ForwardAuth: true, Admission: NewAdmission(), Priority: "normal",
				Retry: Retry{Attempts: 2, Budget: "20%", MinPerSecond: 10, On: []string{"rejected", "unsent", "no_lease"}},
				Hedge: Hedge{After: "p95", Max: 1},
			},
			{
				Name: "ticks", Method: "GET", Path: "/api/ticks/{count}", Backend: "demo",
				Interaction: "request-stream", Route: "ticks.{count}",
				Stream:  newStreamConfig(),
				MaxBody: 4 << 20, ForwardAuth: true, Admission: NewAdmission(), Priority: "normal",
			},
			{
				Name: "chat", Method: "GET", Path: "/ws/chat", Backend: "demo",
				Interaction: "request-channel", Route: "chat",
				Stream:  newStreamConfig(),
				MaxBody: 4 << 20, ForwardAuth: true, Admission: NewAdmission(), Priority: "normal",
				WebSocket: WebSocketConfig{
					MaxMessage: 1 << 20, IdleTimeout: Duration(60 * time.Second), PingInterval: Duration(25 * time.Second),
					MaxSessions: DefaultWSMaxSessions,
				},
			},
			{
				Name: "browser", Method: "GET", Path: "/rsocket", Backend: "demo",
				Interaction: "rsocket",
				MaxBody:     4 << 20, ForwardAuth: false, // false by default on rsocket routes
				Admission: NewAdmission(), Priority: "normal",
				RSocket: &RSocketConfig{Allow: []string{"*"}, MaxStreams: 256, ClientMetadata: "strip"},
				WebSocket: WebSocketConfig{
					MaxMessage: 1 << 20, IdleTimeout: Duration(60 * time.Second), PingInterval: Duration(25 * time.Second),
					MaxSessions: DefaultWSMaxSessions,
				},
			},
		},
	}
	if got := stripLines(cfg); !reflect.DeepEqual(got, want) {
		gy, _ := yaml.Marshal(got)
		wy, _ := yaml.Marshal(want)
		t.Errorf("config mismatch\n--- got\n%s\n--- want\n%s", gy, wy)
	}
}

// TestExampleConfig loads the config.example.yaml shipped at the repository root.
func TestExampleConfig(t *testing.T) {
	cfg, err := Load("../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != ":8080" || cfg.Admin != "127.0.0.1:9901" {
		t.Errorf("listen %q admin %q", cfg.Listen, cfg.Admin)
	}
	b := cfg.Backend("demo")
	if b == nil || b.Transport != "tcp" || !reflect.DeepEqual(b.Addresses, []string{"127.0.0.1:7878"}) ||
		b.Connections != 2 || b.DataMIME != "application/json" {
		t.Fatalf("backend demo = %+v", b)
	}
	type want struct{ method, path, interaction, tag string }
	wants := map[string]want{
		"echo":    {"POST", "/api/echo", "request-response", "echo"},
		"users":   {"GET", "/api/users/{id}", "request-response", "users.{id}"},
		"ticks":   {"GET", "/api/ticks/{count}", "request-stream", "ticks.{count}"},
		"log":     {"POST", "/api/log", "fire-and-forget", "log"},
		"chat":    {"GET", "/ws/chat", "request-channel", "chat"},
		"browser": {"GET", "/rsocket", "rsocket", ""},
	}
	if len(cfg.Routes) != len(wants) {
		t.Fatalf("%d routes, want %d", len(cfg.Routes), len(wants))
	}
	for _, r := range cfg.Routes {
		w, ok := wants[r.Name]
		if !ok || r.Method != w.method || r.Path != w.path || r.Interaction != w.interaction || r.Route != w.tag || r.Backend != "demo" {
			t.Errorf("route %s = %+v, want %+v", r.Name, r, w)
		}
	}
	tab, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ticks := tab.Route("ticks")
	if ticks.Stream != newStreamConfig() || ticks.Timeout != 0 {
		t.Errorf("ticks stream %+v timeout %v", ticks.Stream, ticks.Timeout)
	}
	if s, ok := tab.Route("users").ErrorStatus(CodeApplicationError, []byte("not found: user 7")); !ok || s != 404 {
		t.Errorf("users error status %d %v", s, ok)
	}
}

// base is a valid config that the error cases below extend. Its lines are fixed: tests depend on them.
const base = `backends:
  demo:
    addresses: ["127.0.0.1:7878"]
  web:
    transport: http
    addresses: ["http://127.0.0.1:9000"]
routes:
  - name: r0
    method: POST
    path: /api/echo
    backend: demo
    interaction: request-response
`

// TestReduceMemory: limits.reduce_memory defaults to true (NewConfig and a config without the key) and
// can be turned off.
func TestReduceMemory(t *testing.T) {
	if !NewConfig().Limits.ReduceMemory {
		t.Error("NewConfig: ReduceMemory = false, want true")
	}
	if cfg := mustParse(t, base); !cfg.Limits.ReduceMemory {
		t.Error("config without limits.reduce_memory: ReduceMemory = false, want true")
	}
	if cfg := mustParse(t, "limits:\n  reduce_memory: false\n"+base); cfg.Limits.ReduceMemory {
		t.Error("limits.reduce_memory: false: ReduceMemory = true")
	}
	if _, err := Parse([]byte("limits:\n  reduce_memory: 1\n"+base), "c.yaml"); err == nil ||
		err.Error() != "c.yaml:2: limits.reduce_memory: expected true or false, got number 1" {
		t.Errorf("reduce_memory: 1: %v", err)
	}
}

// TestParseErrors checks the exact text of each message: it is the user interface of a bad config.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"bad duration", base + "    timeout: 5x\n",
			[]string{`config.yaml:13: routes[0].timeout: invalid duration "5x"`}},
		{"duration without unit", base + "    timeout: 5\n",
			[]string{`config.yaml:13: routes[0].timeout: invalid duration "5" (missing unit, e.g. "5s")`}},
		{"negative duration", base + "    timeout: -1s\n",
			[]string{`config.yaml:13: routes[0].timeout: negative duration "-1s"`}},
		{"duration as list", base + "    timeout: [1s]\n",
			[]string{`config.yaml:13: routes[0].timeout: expected a duration such as "5s", got a list`}},
		{"unknown route key", base + "    tiemout: 5s\n",
			[]string{`config.yaml:13: routes[0]: unknown key "tiemout" (did you mean "timeout"?)`}},
		{"unknown key no suggestion", base + "    colour: red\n",
			[]string{`config.yaml:13: routes[0]: unknown key "colour"`}},
		{"duplicate key", base + "    method: GET\n",
			[]string{`config.yaml:13: routes[0].method: duplicate key (first at line 9)`}},
		{"bad size", base + "    max_body: 4XB\n",
			[]string{`config.yaml:13: routes[0].max_body: invalid size "4XB" (use bytes or a unit: B, KiB, MiB, GiB, kB, MB, GB)`}},
		{"fractional size", base + "    max_body: 1.5B\n",
			[]string{`config.yaml:13: routes[0].max_body: size "1.5B" is not a whole number of bytes`}},
		{"zero max_body", base + "    max_body: 0\n",
			[]string{`config.yaml:13: routes[0].max_body: must be greater than 0`}},
		{"bool as string", base + "    route: true\n",
			[]string{`config.yaml:13: routes[0].route: expected a string, got boolean true (quote it)`}},
		{"string as bool", base + "    forward_auth: yes\n",
			[]string{`config.yaml:13: routes[0].forward_auth: expected true or false, got string "yes"`}},
		{"stream on request-response", base + "    stream: {window: 8}\n",
			[]string{`config.yaml:13: routes[0].stream: only for request-stream and request-channel (this route is request-response)`}},
		{"rsocket section on request-response", base + "    rsocket: {}\n",
			[]string{`config.yaml:13: routes[0].rsocket: only for rsocket (this route is request-response)`}},
		{"tag param not in path", base + "    route: users.{id}\n",
			[]string{`config.yaml:13: routes[0].route: template "users.{id}": unknown parameter "id" (the path has no parameters)`}},
		{"tag unterminated", base + "    route: users.{id\n",
			[]string{`config.yaml:13: routes[0].route: template "users.{id": unterminated "{"`}},
		{"bad status", base + "    errors: {\"not found\": 4040}\n",
			[]string{`config.yaml:13: routes[0].errors.not found: HTTP status must be between 200 and 599, got 4040`}},
		{"bad header", base + "    forward_headers: [\"X-Ok\", \"bad header\", \"x-ok\"]\n",
			[]string{
				`config.yaml:13: routes[0].forward_headers[1]: invalid header name "bad header"`,
				`config.yaml:13: routes[0].forward_headers[2]: duplicate header "x-ok" (also forward_headers[0])`,
			}},
		{"second route problems", base + `  - name: r0
    method: GET
    path: /api/{a}/x/{a}
    backend: dmeo
    interaction: request-reponse
`, []string{
			`config.yaml:13: routes[1].name: duplicate route name "r0" (also routes[0])`,
			`config.yaml:15: routes[1].path: path "/api/{a}/x/{a}": duplicate parameter "a"`,
			`config.yaml:16: routes[1].backend: unknown backend "dmeo" (did you mean "demo"?)`,
			`config.yaml:17: routes[1].interaction: invalid value "request-reponse" (did you mean "request-response"?)`,
		}},
		{"missing fields", base + "  - name: r1\n", []string{
			`config.yaml:13: routes[1].interaction: required (one of request-response, fire-and-forget, request-stream, request-channel, rsocket, http)`,
			`config.yaml:13: routes[1].backend: required`,
			`config.yaml:13: routes[1].path: required`,
		}},
		{"method required for request-response", base + "  - {name: r1, path: /x, backend: demo, interaction: request-response}\n",
			[]string{`config.yaml:13: routes[1].method: required for interaction request-response`}},
		{"websocket method", base + "  - {name: r1, method: POST, path: /ws, backend: demo, interaction: rsocket, rsocket: {allow: [\"*\"]}}\n",
			[]string{`config.yaml:13: routes[1].method: interaction rsocket is a WebSocket upgrade and only takes GET, got "POST"`}},
		{"duplicate method and path", base + "  - {name: r1, method: post, path: /api/echo, backend: demo, interaction: fire-and-forget}\n",
			[]string{`config.yaml:13: routes[1].path: POST /api/echo conflicts with routes[0] (POST /api/echo)`}},
		{"http interaction on rsocket backend", base + "  - {name: r1, path: /x, backend: demo, interaction: http}\n",
			[]string{`config.yaml:13: routes[1].backend: interaction http needs a backend with transport http; "demo" is tcp`}},
		{"rsocket interaction on http backend", base + "  - {name: r1, method: GET, path: /x, backend: web, interaction: request-response}\n",
			[]string{`config.yaml:13: routes[1].backend: backend "web" has transport http, which serves only interaction http`}},
		{"catch-all not last", base + "  - {name: r1, method: GET, path: \"/x/{rest...}/y\", backend: demo, interaction: request-response}\n",
			[]string{`config.yaml:13: routes[1].path: path "/x/{rest...}/y": catch-all "{rest...}" must be the last segment`}},
		{"mixed segment", base + "  - {name: r1, method: GET, path: \"/x/a{id}\", backend: demo, interaction: request-response}\n",
			[]string{`config.yaml:13: routes[1].path: path "/x/a{id}": segment "a{id}" mixes text and braces (a parameter must be a whole segment: "{name}")`}},
		{"route tag on rsocket", base + "  - {name: r1, path: /ws, backend: demo, interaction: rsocket, route: x, rsocket: {allow: [\"*\"]}}\n",
			[]string{`config.yaml:13: routes[1].route: not used by interaction rsocket`}},
		{"stream window", base + "  - {name: r1, path: /s, backend: demo, interaction: request-stream, stream: {format: json, window: 0}}\n",
			[]string{
				`config.yaml:13: routes[1].stream.format: invalid value "json" (one of auto, sse, ndjson)`,
				`config.yaml:13: routes[1].stream.window: must be between 1 and 2147483647, got 0`,
			}},
		{"websocket origin", base + "  - {name: r1, path: /ws, backend: demo, interaction: request-channel, websocket: {origins: [\"example.com\"]}}\n",
			[]string{`config.yaml:13: routes[1].websocket.origins[0]: invalid origin "example.com" (want scheme://host[:port] or "*")`}},
		{"rsocket routes", base + "  - name: r1\n    path: /ws\n    backend: demo\n    interaction: rsocket\n    rsocket:\n      routes: {\"a.*.b\": demo, \"web.*\": web, \"x\": nope}\n      allow: [\"*\"]\n",
			[]string{
				`config.yaml:18: routes[1].rsocket.routes.a.*.b: invalid pattern "a.*.b" (an exact tag or a prefix ending in "*")`,
				`config.yaml:18: routes[1].rsocket.routes.web.*: backend "web" has transport http; rsocket routes need an RSocket backend`,
				`config.yaml:18: routes[1].rsocket.routes.x: unknown backend "nope"`,
			}},
		{"backend values", "backends:\n  b:\n    transport: tcp\n    addresses: [\"ws://h:1\", \"h\", \"h:0\", \":1\", \"h:1\", \"h:1\"]\n" +
			"    connections: 0\n    max_inflight: 0\n    keepalive: 30s\n    max_lifetime: 10s\n    mtu: 10\n" +
			"    reconnect: {min_backoff: 1s, max_backoff: 10ms}\n    data_mime: \"\"\n" + base[len("backends:\n"):],
			[]string{
				`config.yaml:4: backends.b.addresses[0]: invalid address "ws://h:1": transport tcp takes host:port, not a URL`,
				`config.yaml:4: backends.b.addresses[1]: invalid address "h" (want host:port)`,
				`config.yaml:4: backends.b.addresses[2]: invalid port in "h:0"`,
				`config.yaml:4: backends.b.addresses[3]: missing host in ":1"`,
				`config.yaml:4: backends.b.addresses[5]: duplicate address "h:1" (also addresses[4])`,
				`config.yaml:5: backends.b.connections: must be between 1 and 1024, got 0`,
				`config.yaml:6: backends.b.max_inflight: must be at least 1, got 0`,
				`config.yaml:8: backends.b.max_lifetime: must be greater than keepalive (30s), got 10s`,
				`config.yaml:9: backends.b.mtu: must be 0 (no fragmentation) or between 64 and 16777215, got 10`,
				`config.yaml:10: backends.b.reconnect.max_backoff: must be at least min_backoff (1s), got 10ms`,
				`config.yaml:11: backends.b.data_mime: required`,
			}},
		{"url backends", "backends:\n  w:\n    transport: websocket\n    addresses: [\"http://h/x\", \"wss://h:99999/\", \"ws:///x\"]\n" +
			"  h:\n    transport: htp\n    addresses: [\"h:1\"]\n" + base[len("backends:\n"):],
			[]string{
				`config.yaml:4: backends.w.addresses[0]: invalid URL "http://h/x": scheme must be ws or wss`,
				`config.yaml:4: backends.w.addresses[1]: invalid port in "wss://h:99999/"`,
				`config.yaml:4: backends.w.addresses[2]: invalid URL "ws:///x" (want ws://host:port/path)`,
				`config.yaml:6: backends.h.transport: invalid value "htp" (did you mean "http"?)`,
			}},
		{"top level", "listen: 8080\nadmin: \":8080\"\nshutdown_grace: soon\nlog: {level: verbose, format: text, access_log: {sample: 1.5}}\n" +
			"limits: {max_body: -1, max_header_size: 100, max_connections: -1}\ntls: {cert: c.pem}\n" + base,
			[]string{
				`config.yaml:1: listen: invalid address "8080" (want host:port, e.g. ":8080")`,
				`config.yaml:3: shutdown_grace: invalid duration "soon"`,
				`config.yaml:4: log.level: invalid value "verbose" (one of debug, info, warn, error)`,
				`config.yaml:4: log.format: invalid value "text" (one of json, console)`,
				`config.yaml:4: log.access_log.sample: must be between 0 and 1, got 1.5`,
				`config.yaml:5: limits.max_body: negative size "-1"`,
				`config.yaml:5: limits.max_connections: must not be negative`,
				`config.yaml:5: limits.max_header_size: must be at least 1KiB (1024), got 100`,
				`config.yaml:6: tls.key: required when tls is set`,
			}},
		{"no routes", "backends: {demo: {addresses: [\"h:1\"]}}\n",
			[]string{`config.yaml: routes: at least one route is required`}},
		{"wrong shapes", "backends: [demo]\nroutes: {name: x}\nlog: info\n",
			[]string{
				`config.yaml:1: backends: expected a mapping, got a list`,
				`config.yaml:2: routes: expected a list, got a mapping`,
				`config.yaml:3: log: expected a mapping, got string "info"`,
			}},
		{"yaml syntax", "listen: \":8080\"\nroutes:\n  - name: x\n   path: /y\n",
			// yaml.v3 alone reports line 2 (where the enclosing block starts) without a field (issue 13).
			[]string{`config.yaml:4: routes[0].path: invalid YAML: indented 3 spaces, which matches no enclosing block (line 3 above uses 4, its parent 2)`}},
		{"two documents", base + "---\nlisten: \":1\"\n",
			[]string{`config.yaml:14: only one YAML document is allowed (found a second "---")`}},
		{"not a mapping", "- a\n- b\n",
			[]string{`config.yaml:1: expected a mapping, got a list`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.src), "config.yaml")
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *ConfigError", err)
			}
			var got []string
			for _, fe := range ce.Errors {
				got = append(got, fe.Error())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if err.Error() != strings.Join(tt.want, "\n") {
				t.Errorf("Error() = %q", err.Error())
			}
		})
	}
}

// TestUnknownKeyDepths rejects a typo at every level of nesting, naming the enclosing field.
func TestUnknownKeyDepths(t *testing.T) {
	tests := []struct{ src, want string }{
		{"listn: x\n" + base, `config.yaml:1: unknown key "listn" (did you mean "listen"?)`},
		{"log: {access_log: {sampel: 1}}\n" + base, `config.yaml:1: log.access_log: unknown key "sampel" (did you mean "sample"?)`},
		{"limits: {max_bdy: 1}\n" + base, `config.yaml:1: limits: unknown key "max_bdy" (did you mean "max_body"?)`},
		{"tls: {cert: a, key: b, chain: c}\n" + base, `config.yaml:1: tls: unknown key "chain"`},
		{strings.Replace(base, "  web:\n", "  web:\n    tls: {server_nmae: x}\n", 1),
			`config.yaml:5: backends.web.tls: unknown key "server_nmae" (did you mean "server_name"?)`},
		{strings.Replace(base, "  web:\n", "  web:\n    reconnect: {max_backof: 1s}\n", 1),
			`config.yaml:5: backends.web.reconnect: unknown key "max_backof" (did you mean "max_backoff"?)`},
		{strings.Replace(base, "  web:\n", "  web:\n    setup: {payload: x}\n", 1),
			`config.yaml:5: backends.web.setup: unknown key "payload"`},
		{strings.Replace(base, "  web:\n", "  web:\n    adresses: [x]\n", 1),
			`config.yaml:5: backends.web: unknown key "adresses" (did you mean "addresses"?)`},
		{base + "  - {name: s, path: /s, backend: demo, interaction: request-stream, stream: {windw: 2}}\n",
			`config.yaml:13: routes[1].stream: unknown key "windw" (did you mean "window"?)`},
		{base + "  - {name: s, path: /s, backend: demo, interaction: rsocket, rsocket: {allow: [\"*\"]}, websocket: {ping: 1s}}\n",
			`config.yaml:13: routes[1].websocket: unknown key "ping"`},
		{base + "  - {name: s, path: /s, backend: demo, interaction: rsocket, rsocket: {allow: [\"*\"], route: {}}}\n",
			`config.yaml:13: routes[1].rsocket: unknown key "route" (did you mean "routes"?)`},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.src), "config.yaml")
		if err == nil || err.Error() != tt.want {
			t.Errorf("got  %v\nwant %s", err, tt.want)
		}
	}
}

func TestInteractionDefaults(t *testing.T) {
	cfg := mustParse(t, base+`  - {name: ff, path: /ff, backend: demo, interaction: fire-and-forget}
  - {name: st, path: /st, backend: demo, interaction: request-stream, timeout: 2m}
  - {name: ch, path: /ch, backend: demo, interaction: request-channel, stream: {window: 8}, websocket: {ping_interval: 0}}
  - {name: px, path: "/legacy/{rest...}", backend: web, interaction: http, rewrite: "/v1/{rest}", max_body: 1KiB}
  - {name: rr0, method: get, path: /rr0, backend: demo, interaction: request-response, timeout: 0, forward_auth: false}
`)
	tests := []struct {
		name, method string
		timeout      time.Duration
		stream       StreamConfig
		ws           WebSocketConfig
		maxBody      int
		auth         bool
	}{
		{"r0", "POST", 30 * time.Second, StreamConfig{}, WebSocketConfig{}, 4 << 20, true},
		{"ff", "POST", 30 * time.Second, StreamConfig{}, WebSocketConfig{}, 4 << 20, true},
		{"st", "GET", 2 * time.Minute, StreamConfig{"auto", 64, Duration(time.Minute), Duration(30 * time.Second), "new"}, WebSocketConfig{}, 4 << 20, true},
		{"ch", "GET", 0, StreamConfig{"auto", 8, Duration(time.Minute), Duration(30 * time.Second), "new"}, WebSocketConfig{MaxMessage: 1 << 20, IdleTimeout: Duration(time.Minute), MaxSessions: DefaultWSMaxSessions}, 4 << 20, true},
		{"px", "*", 30 * time.Second, StreamConfig{}, WebSocketConfig{}, 1024, true},
		{"rr0", "GET", 0, StreamConfig{}, WebSocketConfig{}, 4 << 20, false},
	}
	byName := map[string]*Route{}
	for _, r := range cfg.Routes {
		byName[r.Name] = r
	}
	for _, tt := range tests {
		r := byName[tt.name]
		if r.Method != tt.method || r.Timeout.D() != tt.timeout || r.Stream != tt.stream ||
			!reflect.DeepEqual(r.WebSocket, tt.ws) || r.MaxBody != tt.maxBody || r.ForwardAuth != tt.auth {
			t.Errorf("%s: method %q timeout %v stream %+v ws %+v max_body %d auth %v", tt.name,
				r.Method, r.Timeout, r.Stream, r.WebSocket, r.MaxBody, r.ForwardAuth)
		}
	}
}

func TestAdminOffAndBackendForms(t *testing.T) {
	cfg := mustParse(t, `admin: off                       # unquoted: a string for the Node API
backends:
  a:
    addresses: "h:1"                 # one string is a one-element list
    setup: {data: "hello", metadata: "md"}
    tls: {ca: ca.pem, cert: c.pem, key: k.pem, server_name: a.internal, insecure_skip_verify: true}
    resolve_interval: 0
    lease: true
    mtu: 64KiB
  w:
    transport: websocket
    addresses: ["wss://example.com/rs", "ws://10.0.0.1:8080"]
routes:
  - {name: x, method: GET, path: /, backend: a, interaction: request-response}
`)
	if cfg.Admin != "" {
		t.Errorf("admin = %q, want disabled", cfg.Admin)
	}
	a := cfg.Backend("a")
	want := &TLS{CA: "ca.pem", Cert: "c.pem", Key: "k.pem", ServerName: "a.internal", InsecureSkipVerify: true}
	if !reflect.DeepEqual(a.Addresses, []string{"h:1"}) || a.Setup == nil || *a.Setup != (SetupPayload{"hello", "md"}) ||
		!reflect.DeepEqual(a.TLS, want) || a.ResolveInterval != 0 || !a.Lease || a.MTU != 64<<10 {
		t.Errorf("backend a = %+v", a)
	}
	if cfg.Backend("nope") != nil {
		t.Error("Backend(nope) != nil")
	}
}

func TestAnchorsAndMerge(t *testing.T) {
	cfg := mustParse(t, `backends:
  a: &common
    addresses: ["h:1"]
    connections: 4
    keepalive: 10s
  b:
    <<: *common
    connections: 8
routes:
  - &r {name: x, method: GET, path: /x, backend: a, interaction: request-response}
  - {<<: *r, name: y, path: /y}
`)
	if b := cfg.Backend("b"); b.Connections != 8 || b.Keepalive.D() != 10*time.Second || b.Addresses[0] != "h:1" {
		t.Errorf("merged backend b = %+v", b)
	}
	if y := cfg.Routes[1]; y.Name != "y" || y.Path != "/y" || y.Method != "GET" {
		t.Errorf("merged route y = %+v", y)
	}
	// An alias bomb fails instead of expanding forever.
	bomb := "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n" +
		"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n" +
		"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n" +
		"routes: [{name: x, forward_headers: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]}]\n"
	if _, err := Parse([]byte(bomb), "bomb.yaml"); err == nil {
		t.Error("alias bomb parsed")
	}
}

func TestSizesAndDurations(t *testing.T) {
	sizes := map[string]int{
		"0": 0, "1024": 1024, "0x10": 16, "1_000": 1000, "4MiB": 4 << 20, "4 MiB": 4 << 20, "4mib": 4 << 20,
		"512KiB": 512 << 10, "1GiB": 1 << 30, "1kB": 1000, "1MB": 1e6, "2GB": 2e9, "64k": 64 << 10,
		"1m": 1 << 20, "1.5MiB": 3 << 19, "10B": 10, "10b": 10,
	}
	for in, want := range sizes {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "x", "-1", "-1MiB", "+1MiB", "1.1B", "NaNMiB", "infKiB", "0x1p4MiB",
		"1e30GiB", "4 Mi B", "1_0MiB", "99999999999999999999"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want error", in, got)
		}
	}
	durs := []struct {
		in, tag string
		want    time.Duration
		ok      bool
	}{
		{"5s", "!!str", 5 * time.Second, true},
		{"1m30s", "!!str", 90 * time.Second, true},
		{"250ms", "!!str", 250 * time.Millisecond, true},
		{"0", "!!int", 0, true},
		{"0s", "!!str", 0, true},
		{"5", "!!int", 0, false},
		{"5x", "!!str", 0, false},
		{"-5s", "!!str", 0, false},
		{"", "!!str", 0, false},
	}
	for _, d := range durs {
		got, err := parseDuration(d.in, d.tag)
		if (err == nil) != d.ok || got.D() != d.want {
			t.Errorf("parseDuration(%q, %s) = %v, %v", d.in, d.tag, got, err)
		}
	}
	if s := Duration(90 * time.Second).String(); s != "1m30s" {
		t.Errorf("String = %q", s)
	}
}

// TestProgrammaticConfig builds a config in Go, as the -demo mode does.
func TestProgrammaticConfig(t *testing.T) {
	cfg := NewConfig()
	b := NewBackend("demo")
	b.Addresses = []string{"127.0.0.1:7878"}
	cfg.Backends["demo"] = b
	r := NewRoute("echo", InteractionRequestResponse)
	r.Method, r.Path, r.Backend, r.Route = "POST", "/echo", "demo", "echo"
	s := NewRoute("ticks", InteractionRequestStream)
	s.Path, s.Backend = "/ticks/{n}", "demo"
	cfg.Routes = []*Route{r, s}
	if r.Timeout.D() != DefaultRouteTimeout || s.Timeout != 0 || s.Method != "GET" || s.Stream.Window != 64 {
		t.Errorf("NewRoute defaults: %+v %+v", r, s)
	}
	tab, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.MaxBody != DefaultMaxBody || len(tab.Routes()) != 2 || tab.Config() != cfg {
		t.Errorf("MaxBody %d routes %d", r.MaxBody, len(tab.Routes()))
	}
	// Problems in Go-built configs carry the Line fields when set, and no file.
	s.Path, s.Line = "ticks", 7
	err = cfg.Validate()
	if err == nil || err.Error() != `line 7: routes[1].path: path "ticks" must start with "/"` {
		t.Errorf("Validate = %v", err)
	}
	if _, err := Compile(cfg); err == nil {
		t.Error("Compile accepted an invalid config")
	}
}

// TestRemarshal: a parsed config marshals to YAML that parses back to the same config.
func TestRemarshal(t *testing.T) {
	for _, file := range []string{"testdata/design.yaml", "../config.example.yaml"} {
		cfg, err := Load(file)
		if err != nil {
			t.Fatal(err)
		}
		checkRemarshal(t, cfg)
	}
}

func checkRemarshal(t *testing.T, cfg *Config) {
	t.Helper()
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	again, err := Parse(out, "remarshalled.yaml")
	if err != nil {
		t.Fatalf("re-parse: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(stripLines(cfg), stripLines(again)) {
		t.Fatalf("re-parsed config differs\n%s", out)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yaml")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v", err)
	}
}

// TestParseValueErrors covers the decoder's type checks and the remaining range checks.
func TestParseValueErrors(t *testing.T) {
	tests := []struct{ extra, want string }{
		{"    max_body: [1]\n", `routes[0].max_body: expected a number, got a list`},
		{"    max_body: true\n", `routes[0].max_body: expected an integer, got boolean true`},
		{"    max_body: 99999999999999999999999\n", `routes[0].max_body: size "99999999999999999999999" too large`},
		{"    forward_auth: [true]\n", `routes[0].forward_auth: expected true or false, got a list`},
		{"    route: {a: b}\n", `routes[0].route: expected a string, got a mapping`},
		{"    route: !!binary \"!!!\"\n", `routes[0].route: invalid !!binary value`},
		{"    errors: [1]\n", `routes[0].errors: expected a mapping, got a list`},
		{"    errors: {[a]: 1}\n", `routes[0].errors: keys must be strings, got a list`},
		{"    errors: {a: 400, a: 401}\n", `routes[0].errors.a: duplicate key (first at line 13)`},
		{"    errors: {a: x}\n", `routes[0].errors.a: expected an integer, got string "x"`},
		{"    ? [a]\n    : 1\n", `routes[0]: keys must be strings, got a list`},
		{"    forward_headers: {a: 1}\n", `routes[0].forward_headers: expected a list, got a mapping`},
		{"    <<: [{timeout: 1s}, 7]\n", `routes[0]: expected a mapping, got number 7`},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(base+tt.extra), "c.yaml")
		want := "c.yaml:13: " + tt.want
		if err == nil || err.Error() != want {
			t.Errorf("%q:\ngot  %v\nwant %s", tt.extra, err, want)
		}
	}

	top := []struct{ src, want string }{
		{"log: {access_log: {sample: .nan}}\n", `c.yaml:1: log.access_log.sample: must be between 0 and 1, got NaN`},
		{"log: {access_log: {sample: -.inf}}\n", `c.yaml:1: log.access_log.sample: must be between 0 and 1, got -Inf`},
		{"log: {access_log: {sample: x}}\n", `c.yaml:1: log.access_log.sample: expected a number, got string "x"`},
		{"log: {access_log: {sample: 1_0}}\n", `c.yaml:1: log.access_log.sample: must be between 0 and 1, got 10`},
		{"limits: {max_connections: 1.5}\n", `c.yaml:1: limits.max_connections: expected an integer, got number 1.5`},
		{"limits: {max_connections: !!int 99999999999999999999}\n", `c.yaml:1: limits.max_connections: invalid or out-of-range integer 99999999999999999999`},
		{"limits: {max_connections: 0x1ffffffffffffffff}\n", `c.yaml:1: limits.max_connections: expected an integer, got string "0x1ffffffffffffffff"`},
		{"listen: [a]\n", `c.yaml:1: listen: expected a string, got a list`},
		{"listen: \"h:99999\"\n", `c.yaml:1: listen: invalid port in "h:99999"`},
		{"admin: \"a b:1\"\n", `c.yaml:1: admin: invalid host in "a b:1"`},
		{"tls: {key: k}\n", `c.yaml:1: tls.cert: required when tls is set`},
	}
	for _, tt := range top {
		_, err := Parse([]byte(tt.src+base), "c.yaml")
		if err == nil || err.Error() != tt.want {
			t.Errorf("%q:\ngot  %v\nwant %s", tt.src, err, tt.want)
		}
	}

	backend := "backends:\n  \"bad name\":\n    addresses: [\"h:1\"]\n    data_mime: \"a b\"\n    metadata_mime: " +
		strings.Repeat("m", 256) + "\n    keepalive: 600h\n    max_lifetime: 700h\n    dial_timeout: 0\n" +
		"    reconnect: {min_backoff: 0}\n    tls: {key: k.pem}\n" + base[len("backends:\n"):]
	want := []string{
		`c.yaml:2: backends.bad name: invalid backend name "bad name" (letters, digits, '.', '_' and '-')`,
		`c.yaml:4: backends.bad name.data_mime: invalid MIME type "a b" (printable ASCII only)`,
		`c.yaml:5: backends.bad name.metadata_mime: longer than 255 bytes`,
		`c.yaml:6: backends.bad name.keepalive: must be between 1ms and 2^31-1 ms, got 600h0m0s`,
		`c.yaml:7: backends.bad name.max_lifetime: must be at most 2^31-1 ms, got 700h0m0s`,
		`c.yaml:8: backends.bad name.dial_timeout: must be greater than 0`,
		`c.yaml:9: backends.bad name.reconnect.min_backoff: must be greater than 0`,
		`c.yaml:10: backends.bad name.tls.cert: required when tls.key is set`,
	}
	if _, err := Parse([]byte(backend), "c.yaml"); err == nil || err.Error() != strings.Join(want, "\n") {
		t.Errorf("backend errors:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
}

func TestBinaryAndMergeList(t *testing.T) {
	cfg := mustParse(t, base+`    route: !!binary aGVsbG8=
  - <<: [{timeout: 3s, max_body: 1KiB}, {timeout: 9s, forward_auth: false}]
    name: m
    method: GET
    path: /m
    backend: demo
    interaction: request-response
`)
	if r := cfg.Routes[0]; r.Route != "hello" {
		t.Errorf("binary route = %q", r.Route)
	}
	if m := cfg.Routes[1]; m.Timeout.D() != 3*time.Second || m.MaxBody != 1024 || m.ForwardAuth {
		t.Errorf("merged route = %+v", m)
	}
}

func TestErrorFormatting(t *testing.T) {
	cases := map[FieldError]string{
		{File: "f", Line: 3, Field: "a.b", Msg: "m"}: "f:3: a.b: m",
		{File: "f", Field: "a", Msg: "m"}:            "f: a: m",
		{File: "f", Line: 2, Msg: "m"}:               "f:2: m",
		{Line: 2, Field: "a", Msg: "m"}:              "line 2: a: m",
		{Msg: "m"}:                                   "m",
	}
	for fe, want := range cases {
		if got := fe.Error(); got != want {
			t.Errorf("%#v.Error() = %q, want %q", fe, got, want)
		}
	}
	if got := (&ConfigError{}).Error(); got != "invalid configuration" {
		t.Errorf("empty ConfigError = %q", got)
	}
	if got := suggest("x", []string{"timeout"}); got != "" {
		t.Errorf("suggest(x) = %q", got)
	}
	if got := suggest(strings.Repeat("a", 100), []string{"timeout"}); got != "" {
		t.Errorf("suggest(long) = %q", got)
	}
}
