package ingress

import (
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/rsgate/rsgate/internal/auth/authtest"
	"github.com/rsgate/rsgate/mapping"
)

// BenchmarkAuthRequestResponse measures what authentication costs on the request-response path: the same
// echo route without auth, with a JWT (RS256; cached after the first request, as a client reusing its token
// gets), with a JWT and the cache off (every request verifies the signature), and with an API key. The
// ratio of the "none" and "jwt" ns/op is the relative cost (goal: JWT <= 15% of req/s with key caching):
//
//	go test ./ingress -run '^$' -bench BenchmarkAuthRequestResponse -benchtime 5s -count 5
func BenchmarkAuthRequestResponse(b *testing.B) {
	rs := authtest.RSA("rs", "RS256", 0)
	jwks := writeJWKS(b, authtest.JWKS(rs))
	p := newInProcess(b, metrics.NewSet(), func(cfg *mapping.Config) {
		add := func(name, path, provider string) {
			r := mapping.NewRoute(name, mapping.InteractionRequestResponse)
			r.Method, r.Path, r.Backend, r.Route = "POST", path, "demo", "echo"
			r.Auth = &mapping.RouteAuth{Provider: provider}
			cfg.Routes = append(cfg.Routes, r)
		}
		add("echo-jwt", "/api/echo-jwt", "users")
		add("echo-jwt-nocache", "/api/echo-jwt-nocache", "users-nocache")
		add("echo-key", "/api/echo-key", "partners")
		nc := jwtProvider("users-nocache", jwks)
		nc.CacheSize = 0
		cfg.Auth = map[string]*mapping.AuthProvider{
			"users":         jwtProvider("users", jwks),
			"users-nocache": nc,
			"partners":      apiKeyProvider("partners", map[string]string{"acme": "acme-api-key-0123456789"}),
		}
	})
	client := p.serveInMemory(b, 64)
	body := []byte(`{"hello":"rsgate","n":12345}`)
	token := rs.Sign(claims("alice", time.Hour, map[string]any{"scope": "profile", "email": "alice@example.com"}))
	for _, bc := range []struct{ name, path, header, value string }{
		{"none", "/api/echo", "", ""},
		{"jwt", "/api/echo-jwt", "Authorization", "Bearer " + token},
		{"jwt-nocache", "/api/echo-jwt-nocache", "Authorization", "Bearer " + token},
		{"api_key", "/api/echo-key", "X-API-Key", "acme-api-key-0123456789"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(req)
				defer fasthttp.ReleaseResponse(resp)
				req.SetRequestURI("http://gateway" + bc.path)
				req.Header.SetMethod("POST")
				req.Header.SetContentType("application/json")
				if bc.header != "" {
					req.Header.Set(bc.header, bc.value)
				}
				for pb.Next() {
					req.SetBody(body)
					if err := client.Do(req, resp); err != nil {
						b.Error(err)
						return
					}
					if resp.StatusCode() != 200 {
						b.Errorf("status %d body %q", resp.StatusCode(), resp.Body())
						return
					}
				}
			})
		})
	}
}
