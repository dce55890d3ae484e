package mapping

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// policyBase is a valid config whose first route (line 5) has a path with parameters.
const policyBase = `backends: {demo: {addresses: ["h:1"]}}
routes:
  - name: users
    method: GET
    path: /api/users/{id}
    backend: demo
    interaction: request-response
    route: users.{id}
`

// checkErrors parses src and compares the error lines with want (nil: no error).
func checkErrors(t *testing.T, src string, want ...string) *Config {
	t.Helper()
	cfg, err := Parse([]byte(src), "config.yaml")
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return cfg
	}
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *ConfigError with %q", err, want)
	}
	var got []string
	for _, fe := range ce.Errors {
		got = append(got, fe.Error())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	return nil
}

func TestParsePathTemplateParamForms(t *testing.T) {
	tests := []struct {
		tpl   string
		names []string
		kinds []paramKind
		err   string
	}{
		{tpl: "/u/{id}", names: []string{"id"}, kinds: []paramKind{paramDefault}},
		{tpl: "/u/{id:[0-9]+}", names: []string{"id"}, kinds: []paramKind{paramPattern}},
		{tpl: "/u/{id:[0-9]{1,3}}/x", names: []string{"id"}, kinds: []paramKind{paramPattern}},
		{tpl: "/u/{id:any}", names: []string{"id"}, kinds: []paramKind{paramAny}},
		{tpl: "/f/{a}/{rest...}", names: []string{"a", "rest"}, kinds: []paramKind{paramDefault, paramCatchAll}},
		{tpl: "/u/{id:a:b}", names: []string{"id"}, kinds: []paramKind{paramPattern}},
		{tpl: "/u/{id:}", err: `path "/u/{id:}": empty pattern after ":" (write {id} for the default check, {id:any} for none)`},
		{tpl: "/u/{id:[0-9}", err: `path "/u/{id:[0-9}": invalid pattern "[0-9" for parameter "id": missing closing ]: "[0-9"`},
		{tpl: "/u/{id:[^/]+}", err: `path "/u/{id:[^/]+}": segment "{id:[^" is not a whole parameter (a parameter pattern cannot contain "/")`},
		{tpl: "/u/{9x:[0-9]+}", err: `path "/u/{9x:[0-9]+}": invalid parameter name "9x" (letters, digits and '_', not starting with a digit)`},
		{tpl: "/u/{a{b}:x}", err: `path "/u/{a{b}:x}": segment "{a{b}:x}" mixes text and braces (a parameter must be a whole segment: "{name}")`},
	}
	for _, tt := range tests {
		pt, err := ParsePathTemplate(tt.tpl)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("%s: err %v, want %s", tt.tpl, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.tpl, err)
			continue
		}
		if strings.Join(pt.params, ",") != strings.Join(tt.names, ",") || len(pt.checks) != len(tt.kinds) {
			t.Errorf("%s: params %v checks %d", tt.tpl, pt.params, len(pt.checks))
			continue
		}
		for i, k := range tt.kinds {
			if pt.checks[i].kind != k {
				t.Errorf("%s: param %d kind %d, want %d", tt.tpl, i, pt.checks[i].kind, k)
			}
		}
	}
}

// TestCheckParamsGolden: the values each parameter form accepts and refuses, as the table hands them
// over (already percent-decoded by the HTTP server).
func TestCheckParamsGolden(t *testing.T) {
	cfg := mustParse(t, `backends: {demo: {addresses: ["h:1"]}}
routes:
  - {name: def, method: GET, path: "/d/{id}", backend: demo, interaction: request-response, route: "d.{id}"}
  - {name: num, method: GET, path: "/n/{id:[0-9]+}", backend: demo, interaction: request-response, route: "n.{id}"}
  - {name: any, method: GET, path: "/a/{id:any}", backend: demo, interaction: request-response, route: "a.{id}"}
  - {name: rest, method: GET, path: "/r/{rest...}", backend: demo, interaction: request-response, route: "r.{rest}"}
  - {name: uni, method: GET, path: "/u/{name:\\pL+}", backend: demo, interaction: request-response, route: "u.{name}"}
`)
	tab, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("a", MaxParamLen)
	tests := []struct {
		path string
		ok   bool
	}{
		{"/d/42", true}, {"/d/aZ_~-9", true}, {"/d/" + long, true},
		{"/d/" + long + "a", false}, {"/d/42.admin", false}, {"/d/..", false}, {"/d/a b", false},
		{"/d/a\x00", false}, {"/d/a\n", false}, {"/d/\xff", false}, {"/d/é", false}, {"/d/a%2e", false},
		{"/d/a+b", false}, {"/d/a:b", false}, {"/d/a@b", false},
		{"/n/123", true}, {"/n/12a", false}, {"/n/1.2", false}, {"/n/١", false},
		{"/a/42.admin", true}, {"/a/\x00\xff", true},
		{"/r/", true}, {"/r/a/b.c", true}, {"/r/é/ü", true}, {"/r/a\x00", false}, {"/r/a\x7f", false},
		{"/r/\xc3", false}, {"/r/" + strings.Repeat("x", MaxCatchAllParamLen+1), false},
		{"/u/héllo", true}, {"/u/h1", false}, {"/u/h\xff", false},
	}
	var ps Params
	for _, tt := range tests {
		r, res := tab.Match([]byte("GET"), []byte(tt.path), &ps)
		if res != MatchOK {
			t.Errorf("%q: %v", tt.path, res)
			continue
		}
		if got := r.CheckParams(&ps) < 0; got != tt.ok {
			t.Errorf("%q (route %s): valid = %v, want %v", tt.path, r.Name, got, tt.ok)
		}
	}
	r, _ := tab.Match([]byte("GET"), []byte("/n/x"), &ps)
	if i := r.CheckParams(&ps); i != 0 || r.ParamError(i).Error() != `invalid path parameter "id" (want a value matching [0-9]+)` {
		t.Errorf("ParamError: %d %v", i, r.ParamError(0))
	}
	r, _ = tab.Match([]byte("GET"), []byte("/d/x.y"), &ps)
	if e := r.ParamError(r.CheckParams(&ps)); e.Name != "id" || e.Error() != `invalid path parameter "id" (want 1 to 256 characters of A-Z a-z 0-9 _ ~ -)` {
		t.Errorf("ParamError: %v", e)
	}
}

// TestParamPatternDoesNotChangeMatching: a pattern validates after the match, so a path whose value fails
// the pattern still matches the route (and gets 400, not 404), and two routes differing only by a
// parameter pattern conflict.
func TestParamPatternDoesNotChangeMatching(t *testing.T) {
	checkErrors(t, `backends: {demo: {addresses: ["h:1"]}}
routes:
  - {name: a, method: GET, path: "/u/{id:[0-9]+}", backend: demo, interaction: request-response}
  - {name: b, method: GET, path: "/u/{name}", backend: demo, interaction: request-response}
`, `config.yaml:4: routes[1].path: GET /u/{name} conflicts with routes[0] (GET /u/{id:[0-9]+})`)
}

func TestParamPatternCheckErrors(t *testing.T) {
	src := strings.Replace(policyBase, "/api/users/{id}", `"/api/users/{id:[0-9+}"`, 1)
	checkErrors(t, src, `config.yaml:5: routes[0].path: path "/api/users/{id:[0-9+}": invalid pattern "[0-9+" for parameter "id": missing closing ]: "[0-9+"`)
	src = strings.Replace(policyBase, "/api/users/{id}", `"/api/users/{id:(a}"`, 1)
	checkErrors(t, src, `config.yaml:5: routes[0].path: path "/api/users/{id:(a}": invalid pattern "(a" for parameter "id": missing closing ): "(a"`)
	checkErrors(t, strings.Replace(policyBase, "/api/users/{id}", `"/api/users/{id:[0-9]+}"`, 1))
}

// refDefaultParam is the default check written as a regular expression.
var refDefaultParam = regexp.MustCompile(`^[A-Za-z0-9_~-]{1,256}$`)

func refValidText(v []byte) bool {
	if !utf8.Valid(v) {
		return false
	}
	for _, r := range string(v) {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// FuzzParamCheck compares the byte-class checks with their obvious definitions and runs a pattern check
// on arbitrary input.
func FuzzParamCheck(f *testing.F) {
	for _, s := range []string{"42", "42.admin", "a\x00", "a\n", "\xff", "é", "..", "", strings.Repeat("z", 257),
		"a-b_c~d", "%2e", "\xed\xa0\x80", "\xef\xbf\xbd", "a/b"} {
		f.Add([]byte(s))
	}
	_, numCheck, err := parseParamSpec("id:[0-9]{1,5}", false)
	if err != nil {
		f.Fatal(err)
	}
	catch := paramCheck{kind: paramCatchAll}
	f.Fuzz(func(t *testing.T, v []byte) {
		if got, want := ValidDefaultParam(v), refDefaultParam.Match(v); got != want {
			t.Fatalf("ValidDefaultParam(%q) = %v, want %v", v, got, want)
		}
		if got, want := validText(v), refValidText(v); got != want {
			t.Fatalf("validText(%q) = %v, want %v", v, got, want)
		}
		if got, want := catch.valid(v), len(v) <= MaxCatchAllParamLen && refValidText(v); got != want {
			t.Fatalf("catch-all(%q) = %v, want %v", v, got, want)
		}
		if numCheck.valid(v) {
			if len(v) == 0 || len(v) > 5 {
				t.Fatalf("pattern accepted %q", v)
			}
			for _, c := range v {
				if c < '0' || c > '9' {
					t.Fatalf("pattern accepted %q", v)
				}
			}
		}
	})
}

func TestParseRateGolden(t *testing.T) {
	tests := []struct {
		in   string
		want Rate
		err  string
	}{
		{in: "100/s", want: Rate{100, time.Second}},
		{in: "1/m", want: Rate{1, time.Minute}},
		{in: "3600/h", want: Rate{3600, time.Hour}},
		{in: "5/sec", want: Rate{5, time.Second}},
		{in: "5/min", want: Rate{5, time.Minute}},
		{in: "5/hour", want: Rate{5, time.Hour}},
		{in: "1000000000/s", want: Rate{1e9, time.Second}},
		{in: "off", want: Rate{}},
		{in: "100", err: `invalid rate "100" (want N/s, N/m or N/h, e.g. "100/s", or "off")`},
		{in: "100/d", err: `invalid rate "100/d": unit must be s, m or h`},
		{in: "0/s", err: `invalid rate "0/s": count must be an integer from 1 to 1000000000`},
		{in: "-1/s", err: `invalid rate "-1/s": count must be an integer from 1 to 1000000000`},
		{in: "+1/s", err: `invalid rate "+1/s": count must be an integer from 1 to 1000000000`},
		{in: "1000000001/s", err: `invalid rate "1000000001/s": count must be an integer from 1 to 1000000000`},
		{in: "/s", err: `invalid rate "/s": count must be an integer from 1 to 1000000000`},
		{in: "1.5/s", err: `invalid rate "1.5/s": count must be an integer from 1 to 1000000000`},
	}
	for _, tt := range tests {
		got, err := ParseRate(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("%q: err %v, want %s", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q: %v %v, want %v", tt.in, got, err, tt.want)
		}
	}
	if iv := (Rate{3, time.Second}).Interval(); iv != 333333333 {
		t.Errorf("interval %v", iv)
	}
}

// FuzzParseRate: whatever parses prints back to a string that parses to the same rate, within bounds.
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"100/s", "1/m", "60/h", "off", "0/s", "1e3/s", "99999999999/s", "5/min", "/", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			return
		}
		if r.Off() {
			if s != "off" {
				t.Fatalf("%q parsed as off", s)
			}
			return
		}
		if r.Count < 1 || r.Count > MaxRateLimitCount || r.Interval() <= 0 {
			t.Fatalf("%q: out of bounds %+v", s, r)
		}
		back, err := ParseRate(r.String())
		if err != nil || back != r {
			t.Fatalf("%q -> %q -> %+v %v", s, r.String(), back, err)
		}
	})
}

func TestRateLimitConfig(t *testing.T) {
	cfg := checkErrors(t, "rate_limit: {rate: 100/s, burst: 200, key: \"header:X-API-Key\"}\n"+
		policyBase+"    rate_limit: {rate: 10/m, key: subject}\n")
	if g := cfg.RateLimit; g.ParsedRate() != (Rate{100, time.Second}) || g.EffectiveBurst() != 200 ||
		g.KeyHeader() != "X-API-Key" || g.EffectiveMaxKeys() != DefaultRateLimitMaxKeys {
		t.Errorf("global %+v", g)
	}
	if r := cfg.Routes[0].RateLimit; r.EffectiveBurst() != 10 || r.Key != RateKeySubject {
		t.Errorf("route %+v", r)
	}
	checkErrors(t, "rate_limit: {rate: 100/d}\n"+policyBase,
		`config.yaml:1: rate_limit.rate: invalid rate "100/d": unit must be s, m or h`)
	checkErrors(t, "rate_limit: {burst: 3}\n"+policyBase, `config.yaml:1: rate_limit.rate: required (e.g. "100/s", or "off")`)
	checkErrors(t, policyBase+"    rate_limit:\n      rate: 1/s\n      key: ipp\n      burst: -1\n",
		`config.yaml:11: routes[0].rate_limit.key: invalid key "ipp" (ip, subject or header:NAME) (did you mean "ip"?)`,
		`config.yaml:12: routes[0].rate_limit.burst: must be between 1 and 1000000 (0: the rate's count), got -1`)
	checkErrors(t, policyBase+"    rate_limit: {rate: 1/s, key: \"header:a b\"}\n",
		`config.yaml:9: routes[0].rate_limit.key: invalid header name "a b" in "header:a b"`)
	ws := `backends: {demo: {addresses: ["h:1"]}}
routes:
  - name: chat
    path: /ws
    backend: demo
    interaction: request-channel
    websocket:
      rate_limit: {rate: 5/s, burst: 10, key: ip}
`
	checkErrors(t, ws, `config.yaml:8: routes[0].websocket.rate_limit.key: not used by a per-session limit (each WebSocket session has its own bucket)`)
	cfg = checkErrors(t, strings.Replace(ws, ", key: ip", "", 1))
	if c := cfg.Routes[0].WebSocket.RateLimit; c == nil || c.EffectiveBurst() != 10 {
		t.Errorf("websocket.rate_limit %+v", c)
	}
	checkErrors(t, policyBase+"    websocket: {rate_limit: {rate: 1/s}}\n",
		`config.yaml:9: routes[0].websocket: only for request-channel and rsocket (this route is request-response)`)
}

func TestOriginPatternGolden(t *testing.T) {
	tests := []struct {
		pat    string
		ok     bool
		match  []string
		refuse []string
	}{
		{pat: "*", ok: true, match: []string{"https://x.y", "null", "http://localhost:3000"}},
		{pat: "https://app.example.com", ok: true, match: []string{"https://app.example.com", "HTTPS://APP.example.COM"},
			refuse: []string{"http://app.example.com", "https://app.example.com:443", "https://app.example.com.evil.com",
				"https://xapp.example.com", "https://app.example.co", "null", ""}},
		{pat: "http://localhost:3000", ok: true, match: []string{"http://localhost:3000"}, refuse: []string{"http://localhost:3001", "http://localhost"}},
		{pat: "https://*.example.com", ok: true,
			match: []string{"https://a.example.com", "https://a.b.example.com", "https://A-1.Example.com"},
			refuse: []string{"https://example.com", "https://.example.com", "https://a..example.com", "http://a.example.com",
				"https://a.example.com:8443", "https://evil.com/.example.com", "https://a_b.example.com", "https://aexample.com",
				"https://a.example.com.evil.com", "https://a b.example.com", "https://" + strings.Repeat("a", 64) + ".example.com"}},
		{pat: "https://*.example.com:8443", ok: true, match: []string{"https://a.example.com:8443"}, refuse: []string{"https://a.example.com"}},
		{pat: "https://*.com"}, {pat: "https://*.[::1]"}, {pat: "app.example.com"}, {pat: "https://app.example.com/"},
		{pat: "https://a.*.example.com"}, {pat: "https://*"}, {pat: "null"}, {pat: "https://u@h.com"}, {pat: "https://h.com:0"},
		{pat: "https://h.com:99999"}, {pat: "ht tp://h.com"}, {pat: "https://h.com?x"},
	}
	for _, tt := range tests {
		p, ok := ParseOriginPattern(tt.pat)
		if ok != tt.ok {
			t.Errorf("%q: ok %v, want %v", tt.pat, ok, tt.ok)
			continue
		}
		for _, o := range tt.match {
			if !p.MatchOrigin([]byte(o)) {
				t.Errorf("%q should match %q", tt.pat, o)
			}
		}
		for _, o := range tt.refuse {
			if p.MatchOrigin([]byte(o)) {
				t.Errorf("%q should not match %q", tt.pat, o)
			}
		}
	}
}

// refMatchOrigin is the origin matcher written plainly with the strings package.
func refMatchOrigin(pat, o string) bool {
	o = strings.ToLower(o)
	if pat == "*" {
		return true
	}
	scheme, host, _ := strings.Cut(pat, "://")
	if !strings.HasPrefix(host, "*.") {
		return o == strings.ToLower(pat)
	}
	prefix, suffix := strings.ToLower(scheme)+"://", strings.ToLower(host[1:])
	if !strings.HasPrefix(o, prefix) || !strings.HasSuffix(o, suffix) || len(o) <= len(prefix)+len(suffix) {
		return false
	}
	for _, label := range strings.Split(o[len(prefix):len(o)-len(suffix)], ".") {
		if label == "" || len(label) > 63 || strings.Trim(label, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			return false
		}
	}
	return true
}

// FuzzMatchOrigin compares the allocation-free matcher with refMatchOrigin for fuzzed origins against a
// few patterns, and a fuzzed pattern against itself.
func FuzzMatchOrigin(f *testing.F) {
	for _, s := range []string{"https://a.example.com", "https://example.com", "https://a..example.com", "HTTPS://A.EXAMPLE.COM",
		"https://a.example.com:8443", "http://localhost:3000", "null", "https://*.example.com", "https://évil.example.com"} {
		f.Add(s)
	}
	pats := []string{"https://*.example.com", "https://*.example.com:8443", "https://app.example.com", "http://localhost:3000", "*"}
	f.Fuzz(func(t *testing.T, o string) {
		for _, pat := range pats {
			p, ok := ParseOriginPattern(pat)
			if !ok {
				t.Fatalf("pattern %q", pat)
			}
			if got, want := p.MatchOrigin([]byte(o)), refMatchOrigin(pat, o); got != want {
				t.Fatalf("%q vs %q: %v, want %v", pat, o, got, want)
			}
		}
		if p, ok := ParseOriginPattern(o); ok && !p.Any && p.Suffix == "" && !p.MatchOrigin([]byte(o)) {
			t.Fatalf("exact pattern %q does not match itself", o)
		}
	})
}

func TestCORSConfig(t *testing.T) {
	cfg := checkErrors(t, "cors: {origins: [\"https://app.example.com\", \"https://*.example.com\"], methods: [GET, POST], "+
		"headers: [Authorization, Content-Type], expose_headers: [X-Request-Id], credentials: true, max_age: 10m}\n"+policyBase)
	if c := cfg.CORS; len(c.Origins) != 2 || !c.Credentials || c.MaxAge.D() != 10*time.Minute || len(c.ExposeHeaders) != 1 {
		t.Errorf("cors %+v", c)
	}
	checkErrors(t, "cors: {origins: [\"*\"], credentials: true}\n"+policyBase,
		`config.yaml:1: cors.credentials: cannot be true with origins ["*"]: the Fetch standard forbids credentials with a wildcard origin; list the origins`)
	checkErrors(t, "cors:\n  origins:\n    - https://ok.example.com\n    - app.example.com\n"+policyBase,
		`config.yaml:4: cors.origins[1]: invalid origin "app.example.com" (want scheme://host[:port], scheme://*.domain[:port] or "*")`)
	checkErrors(t, "cors: {methods: [GET]}\n"+policyBase,
		`config.yaml:1: cors.origins: at least one origin is required ("*" for any; remove cors to turn it off)`)
	checkErrors(t, policyBase+"    cors: {origins: []}\n") // a route may turn CORS off
	checkErrors(t, policyBase+"    cors: {origins: [\"*\"], methods: [\"G T\"], headers: [\"a b\"]}\n",
		`config.yaml:9: routes[0].cors.methods[0]: invalid method "G T"`,
		`config.yaml:9: routes[0].cors.headers[0]: invalid header name "a b"`)
	checkErrors(t, `backends: {demo: {addresses: ["h:1"]}}
routes:
  - name: chat
    path: /ws
    backend: demo
    interaction: request-channel
    cors: {origins: ["*"]}
`, `config.yaml:7: routes[0].cors: not for interaction request-channel (browsers do not apply CORS to WebSockets; use websocket.origins)`)
}

// TestDesignPolicyKeys parses the policy keys exactly as the configuration contract (README, config.example.yaml) writes them (top-level cors and
// rate_limit; a route with a parameter pattern, its own cors and rate_limit).
func TestDesignPolicyKeys(t *testing.T) {
	cfg := checkErrors(t, `cors: {origins: ["https://app.example.com"], methods: [GET, POST], headers: [Authorization], credentials: false, max_age: 10m}
rate_limit: {rate: 100/s, burst: 200, key: ip}          # ip | subject | header:NAME; also per route
backends: {demo: {addresses: ["127.0.0.1:7878"]}}
routes:
  - name: users
    method: GET
    path: "/api/users/{id:[0-9]+}"      # parameter pattern (RE2); default [A-Za-z0-9_~-]{1,256}
    backend: demo
    interaction: request-response
    route: users.{id}
    cors: {origins: ["*"]}
    rate_limit: {rate: 10/s, burst: 20, key: subject}
`)
	tab, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := tab.Route("users")
	if r.CORS == nil || r.CORS.Origins[0] != "*" || r.RateLimit.Key != RateKeySubject || r.RateLimit.EffectiveBurst() != 20 {
		t.Fatalf("route policies %+v %+v", r.CORS, r.RateLimit)
	}
	if cfg.CORS.MaxAge.D() != 10*time.Minute || cfg.RateLimit.ParsedRate() != (Rate{100, time.Second}) {
		t.Fatalf("top-level policies %+v %+v", cfg.CORS, cfg.RateLimit)
	}
	var ps Params
	for path, ok := range map[string]bool{"/api/users/42": true, "/api/users/42.admin": false, "/api/users/x": false} {
		m, res := tab.Match([]byte("GET"), []byte(path), &ps)
		if res != MatchOK || (m.CheckParams(&ps) < 0) != ok {
			t.Errorf("%s: %v, valid %v", path, res, !ok)
		}
	}
}
