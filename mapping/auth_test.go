package mapping

import (
	"os"
	"strings"
	"testing"
	"time"
)

const authBase = `auth:
  users:
    type: jwt
    jwks_file: jwks.json
    issuer: https://login.example.com
    audiences: [api]
    forward_claims: [email]
  partners:
    type: api_key
    keys: [{name: acme, sha256: "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"}]
backends:
  demo: {addresses: ["127.0.0.1:7878"]}
routes:
  - {name: me, method: GET, path: /me, backend: demo, interaction: request-response, route: me, auth: {provider: users, scopes: [profile]}}
  - {name: p, method: GET, path: /p, backend: demo, interaction: request-response, route: p, auth: partners}
  - {name: rs, path: /rsocket, backend: demo, interaction: rsocket, auth: {provider: users, query_param: access_token}, rsocket: {allow: [echo, "users.*"], max_streams: 8, client_metadata: reject}}
`

func TestAuthConfig(t *testing.T) {
	cfg, err := Parse([]byte(authBase), "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	u := cfg.Auth["users"]
	if u.Name != "users" || u.Type != AuthJWT || u.Leeway.D() != 30*time.Second || u.RefreshInterval.D() != DefaultJWKSRefresh ||
		u.MinRefreshInterval.D() != DefaultJWKSMinRefresh || u.MaxJWKSSize != 1<<20 || u.CacheSize != DefaultTokenCacheSize {
		t.Fatalf("jwt defaults: %+v", u)
	}
	p := cfg.Auth["partners"]
	if p.Header != "X-API-Key" || len(p.Keys) != 1 || p.Keys[0].Name != "acme" {
		t.Fatalf("api_key: %+v", p)
	}
	if a := cfg.Routes[0].Auth; a.Provider != "users" || len(a.Scopes) != 1 || a.Scopes[0] != "profile" {
		t.Fatalf("route auth %+v", a)
	}
	if a := cfg.Routes[1].Auth; a.Provider != "partners" || a.Scopes != nil {
		t.Fatalf("shorthand %+v", a)
	}
	rs := cfg.Routes[2]
	if rs.Auth.QueryParam != "access_token" || rs.RSocket.MaxStreams != 8 || rs.RSocket.ClientMetadata != ClientMetadataReject ||
		len(rs.RSocket.Allow) != 2 || rs.ForwardAuth {
		t.Fatalf("rsocket route %+v %+v", rs.Auth, rs.RSocket)
	}
}

func TestAuthConfigErrors(t *testing.T) {
	tests := []struct{ old, new, want string }{
		{"type: jwt", "type: oauth", `config.yaml:3: auth.users.type: must be jwt or api_key, got "oauth"`},
		{"jwks_file: jwks.json", "jwks_url: http://example.com/jwks", `config.yaml:4: auth.users.jwks_url: must be https (http only for a loopback host)`},
		{"jwks_file: jwks.json", "issuer2: x", `config.yaml:4: auth.users: unknown key "issuer2" (did you mean "issuer"?)`},
		{`sha256: "2c26`, `sha256: "zz26`, `auth.partners.keys[0].sha256: must be the 64 hex digits`},
		{"auth: partners}", "auth: nobody}", `config.yaml:15: routes[1].auth.provider: unknown auth provider "nobody"`},
		{"scopes: [profile]", `scopes: ["a b"]`, `routes[0].auth.scopes[0]: invalid scope "a b"`},
		{", rsocket: {allow: [echo, \"users.*\"], max_streams: 8, client_metadata: reject}", "",
			`config.yaml:16: routes[2].rsocket.allow: required for interaction rsocket: list the routing tags clients may use (exact tags or "prefix.*"), or write allow: ["*"] to open the route to every tag on purpose`},
		{"auth: partners}", "auth: {provider: partners, scopes: [x]}}", `routes[1].auth.scopes: API keys grant no scopes`},
		{"client_metadata: reject", "client_metadata: drop", `routes[2].rsocket.client_metadata: invalid value "drop"`},
		{"max_streams: 8", "max_streams: -1", `routes[2].rsocket.max_streams: must be between 1 and`},
		{`"users.*"`, `"us*ers"`, `routes[2].rsocket.allow[1]: invalid pattern "us*ers"`},
	}
	for _, tt := range tests {
		if tt.want == "" {
			continue
		}
		src := strings.Replace(authBase, tt.old, tt.new, 1)
		_, err := Parse([]byte(src), "config.yaml")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s -> %s:\ngot  %v\nwant %s", tt.old, tt.new, err, tt.want)
		}
	}
}

// TestExampleAuthBlock: the commented auth example of config.example.yaml, uncommented, is valid.
func TestExampleAuthBlock(t *testing.T) {
	data, err := os.ReadFile("../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var block []string
	in := false
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case line == "# auth:":
			in = true
		case in && !strings.HasPrefix(line, "#"):
			in = false
		}
		if in {
			block = append(block, strings.TrimPrefix(strings.TrimPrefix(line, "#"), " "))
		}
	}
	if len(block) < 10 {
		t.Fatalf("auth example not found (%d lines)", len(block))
	}
	src := strings.ReplaceAll(strings.Join(block, "\n"), "<64 hex digits>", strings.Repeat("ab", 32)) + "\n" +
		authBase[strings.Index(authBase, "backends:"):] // routes that use both providers
	cfg, err := Parse([]byte(src), "example")
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	if cfg.Auth["users"].JWKSFile == "" || cfg.Auth["partners"].Keys[0].Name != "acme" {
		t.Fatalf("%+v", cfg.Auth)
	}
}
