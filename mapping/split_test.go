package mapping

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// migrationBase has an RSocket and an http backend; tests append routes.
const migrationBase = `backends:
  users-rsocket:
    addresses: ["127.0.0.1:7878"]
  users-legacy:
    transport: http
    addresses: ["http://127.0.0.1:8081"]
routes:
`

func parseMigration(t *testing.T, routes string) (*Config, error) {
	t.Helper()
	return Parse([]byte(migrationBase+routes), "config.yaml")
}

func TestMigrationParse(t *testing.T) {
	cfg, err := parseMigration(t, `  - name: users
    method: GET
    path: /api/users/{id}
    interaction: request-response
    backend: users-rsocket
    route: users.{id}
    rewrite: /v1/users/{id}
    timeout: 2s
    split:
      - {backend: users-legacy, weight: 90}
      - {backend: users-rsocket, weight: 10}
    sticky: {header: X-User-Id}
  - name: legacy
    path: /legacy/{rest...}
    interaction: http
    backend: users-legacy
    route: legacy.{rest}
    rewrite: /{rest...}
    shadow: {backend: users-rsocket, percent: 50}
  - name: reverse
    method: POST
    path: /api/echo
    interaction: request-response
    backend: users-rsocket
    shadow: {backend: users-legacy, compare: false, max_concurrency: 8, timeout: 1s}
  - name: fnf
    method: POST
    path: /api/log
    interaction: http
    backend: users-legacy
    shadow: {backend: users-rsocket, mode: fire-and-forget}
`)
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Routes[0]
	if !reflect.DeepEqual(r.Split, []SplitTarget{{"users-legacy", 90}, {"users-rsocket", 10}}) || r.Sticky == nil ||
		r.Sticky.Header != "X-User-Id" || r.Shadow != nil || !r.HasSplit() {
		t.Errorf("users: split %+v sticky %+v shadow %+v", r.Split, r.Sticky, r.Shadow)
	}
	want := []Shadow{
		{Backend: "users-rsocket", Mode: ShadowRequestResponse, Compare: true, MaxConcurrency: 64, Percent: 50, Timeout: Duration(30 * time.Second)},
		{Backend: "users-legacy", Mode: ShadowHTTP, Compare: false, MaxConcurrency: 8, Percent: 100, Timeout: Duration(time.Second)},
		{Backend: "users-rsocket", Mode: ShadowFireAndForget, Compare: false, MaxConcurrency: 64, Percent: 100, Timeout: Duration(30 * time.Second)},
	}
	for i, w := range want {
		if got := cfg.Routes[i+1].Shadow; got == nil || *got != w {
			t.Errorf("routes[%d].shadow = %+v, want %+v", i+1, got, w)
		}
	}
	if h := cfg.Backends["users-legacy"].HTTP; h != NewHTTPOptions() {
		t.Errorf("http defaults = %+v", h)
	}
	if h := cfg.Backends["users-rsocket"].HTTP; h != (HTTPOptions{}) {
		t.Errorf("tcp backend keeps an http section: %+v", h)
	}
	if _, err := Compile(cfg); err != nil {
		t.Fatal(err)
	}
	checkRemarshal(t, cfg)
}

func TestMigrationHTTPSection(t *testing.T) {
	cfg, err := Parse([]byte(`backends:
  legacy:
    transport: http
    addresses: http://127.0.0.1:8081
    http: {idle_timeout: 3s, preserve_host: true, health_interval: 0}
routes:
  - {name: r, path: /x, interaction: http, backend: legacy}
`), "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := HTTPOptions{IdleTimeout: Duration(3 * time.Second), MaxConnsPerAddress: DefaultHTTPMaxConns, PreserveHost: true}
	if h := cfg.Backends["legacy"].HTTP; h != want {
		t.Errorf("http = %+v, want %+v", h, want)
	}
}

func TestMigrationErrors(t *testing.T) {
	const rr = "  - name: r\n    method: GET\n    path: /u/{id}\n    interaction: request-response\n    backend: users-rsocket\n"
	const http = "  - name: h\n    path: /h\n    interaction: http\n    backend: users-legacy\n"
	tests := []struct {
		name, routes string
		want         []string
	}{
		{"weights and backends", rr + `    split:
      - {backend: users-legacy, weight: 0}
      - {backend: users-rsocke, weight: 5}
      - {backend: users-legacy, weight: 5}
`, []string{
			`config.yaml:14: routes[0].split[0].weight: must be between 1 and 1000000, got 0`,
			`config.yaml:15: routes[0].split[1].backend: unknown backend "users-rsocke" (did you mean "users-rsocket"?)`,
			`config.yaml:16: routes[0].split[2].backend: backend "users-legacy" is already split[0]`,
		}},
		{"http route splits to rsocket", http + "    split: [{backend: users-rsocket, weight: 1}]\n", []string{
			`config.yaml:12: routes[0].split[0].backend: an http route splits between http backends only; "users-rsocket" is tcp (make the route an RSocket interaction to split towards it)`,
		}},
		{"sticky without split", rr + "    sticky: {header: X-User-Id}\n", []string{
			`config.yaml:13: routes[0].sticky: only with split`,
		}},
		{"sticky both", rr + "    split: [{backend: users-legacy, weight: 1}]\n    sticky: {header: X-A, cookie: b}\n", []string{
			`config.yaml:14: routes[0].sticky: set exactly one of header and cookie`,
		}},
		{"sticky bad header", rr + "    split: [{backend: users-legacy, weight: 1}]\n    sticky: {header: \"a b\"}\n", []string{
			`config.yaml:14: routes[0].sticky.header: invalid header name "a b"`,
		}},
		{"shadow problems", http + "    shadow: {backend: users-legacy, mode: request-response, max_concurrency: 0, percent: 101}\n", []string{
			`config.yaml:12: routes[0].shadow.backend: is the route's own backend "users-legacy"`,
			`config.yaml:12: routes[0].shadow.mode: backend "users-legacy" has transport http: mode must be http, got "request-response"`,
			`config.yaml:12: routes[0].shadow.max_concurrency: must be between 1 and 65536, got 0`,
			`config.yaml:12: routes[0].shadow.percent: must be between 0 and 100, got 101`,
		}},
		{"shadow rsocket mode", http + "    shadow: {backend: users-rsocket, mode: http}\n", []string{
			`config.yaml:12: routes[0].shadow.mode: invalid value "http" (one of request-response, fire-and-forget)`,
		}},
		{"shadow fnf compare", http + "    shadow: {backend: users-rsocket, mode: fire-and-forget, compare: true}\n", []string{
			`config.yaml:12: routes[0].shadow.compare: fire-and-forget has no answer to compare`,
		}},
		{"shadow with split", rr + "    split: [{backend: users-legacy, weight: 1}]\n    shadow: {backend: users-legacy}\n", []string{
			`config.yaml:14: routes[0].shadow: cannot be combined with split (shadow first, then split)`,
		}},
		{"shadow on a stream", "  - {name: s, path: /s, interaction: request-stream, backend: users-rsocket, shadow: {backend: users-legacy}}\n", []string{
			`config.yaml:8: routes[0].shadow: not available for interaction request-stream (only request-response, fire-and-forget and http)`,
		}},
		{"rewrite without http target", rr + "    rewrite: /x\n", []string{
			`config.yaml:13: routes[0].rewrite: only for http, or a route with an http split or shadow backend (this route is request-response)`,
		}},
		{"tag on http without rsocket target", http + "    route: x\n", []string{
			`config.yaml:12: routes[0].route: not used by interaction http`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseMigration(t, tt.routes)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *ConfigError", err)
			}
			var got []string
			for _, fe := range ce.Errors {
				got = append(got, fe.Error())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestMigrationBackendErrors(t *testing.T) {
	_, err := Parse([]byte(`backends:
  rs:
    addresses: ["127.0.0.1:1"]
    http: {idle_timeout: 1s}
  legacy:
    transport: http
    addresses: ["http://127.0.0.1:2"]
    http: {idle_timeout: 0, max_conns_per_address: 0}
routes:
  - {name: r, path: /x, interaction: http, backend: legacy}
`), "config.yaml")
	want := `config.yaml:4: backends.rs.http: only for transport http (this backend is tcp)
config.yaml:8: backends.legacy.http.idle_timeout: must be greater than 0
config.yaml:8: backends.legacy.http.max_conns_per_address: must be at least 1, got 0`
	if err == nil || err.Error() != want {
		t.Errorf("err =\n%v\nwant\n%s", err, want)
	}
}

// TestMigrationGoBuilt: configs built in Go resolve the shadow mode and timeout in Validate.
func TestMigrationGoBuilt(t *testing.T) {
	cfg := NewConfig()
	rs := NewBackend("rs")
	rs.Addresses = []string{"127.0.0.1:1"}
	legacy := NewBackend("legacy")
	legacy.Transport, legacy.Addresses = TransportHTTP, []string{"http://127.0.0.1:2"}
	cfg.Backends["rs"], cfg.Backends["legacy"] = rs, legacy
	r := NewRoute("r", InteractionHTTP)
	r.Path, r.Backend, r.Route = "/x/{id}", "legacy", "x.{id}"
	r.Shadow = NewShadow("rs")
	cfg.Routes = []*Route{r}
	if _, err := Compile(cfg); err != nil {
		t.Fatal(err)
	}
	if r.Shadow.Mode != ShadowRequestResponse || r.Shadow.Timeout != r.Timeout || !r.Shadow.Compare {
		t.Errorf("shadow = %+v", r.Shadow)
	}
}
