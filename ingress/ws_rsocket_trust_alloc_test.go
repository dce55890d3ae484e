//go:build !race

package ingress

import (
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/rsgate/rsgate/internal/auth"
	"github.com/rsgate/rsgate/internal/auth/authtest"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket/extension"
)

// TestAdmitAllocs: relaying a request that has nothing to strip and no identity to add neither copies nor
// allocates (the relay is hot); the allow-list check (exact and prefix) allocates nothing either.
func TestAdmitAllocs(t *testing.T) {
	ss := trustSession(mapping.ClientMetadataStrip, "echo", "users.*")
	md, _ := extension.AppendCompositeBearer(routeMD("users.42"), nil)
	md = extension.AppendCompositeEntry(md, "application/x-custom", []byte("v"))
	ss.rt.rsp.forwardAuth = true // the bearer entry passes
	exact := routeMD("echo")
	n := testing.AllocsPerRun(500, func() {
		out, err := ss.admit(md, false)
		if err != nil || &out[0] != &md[0] {
			t.Fatal("not relayed as is", err)
		}
		if _, err := ss.admit(exact, false); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Fatalf("%v allocs per admitted request, want 0", n)
	}
}

// BenchmarkAdmit: the per-request cost of the relay's metadata check, clean and with an entry to strip.
func BenchmarkAdmit(b *testing.B) {
	ss := trustSession(mapping.ClientMetadataStrip, "*")
	clean := routeMD("users.42")
	dirty := forgedMD("users.42")
	b.Run("clean", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = ss.admit(clean, false)
		}
	})
	b.Run("strip", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = ss.admit(dirty, false)
		}
	})
}

// TestAuthenticateAllocs: an HTTP request with a cached token (or an API key) is authenticated without
// allocating: header read, cache lookup, scope check, principal attached.
func TestAuthenticateAllocs(t *testing.T) {
	k := authtest.EC("ec")
	c := jwtProvider("users", writeJWKS(t, authtest.JWKS(k)))
	p, err := auth.New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	rt := &route{kind: kindRequestResponse, auth: newRouteAuth(p, &mapping.RouteAuth{Provider: "users", Scopes: []string{"profile"}})}
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.Set("Authorization", "Bearer "+k.Sign(claims("alice", time.Hour, map[string]any{"scope": "profile"})))
	rq := &request{}
	s := &Server{}
	if !s.authenticate(&ctx, rt, rq) {
		t.Fatal(ctx.Response.String())
	}
	n := testing.AllocsPerRun(500, func() {
		if !s.authenticate(&ctx, rt, rq) || rq.principal == nil {
			t.Fatal("refused")
		}
		if sub, ok := SubjectOf(&ctx); !ok || sub != "alice" {
			t.Fatal(sub)
		}
	})
	if n != 0 {
		t.Fatalf("%v allocs per authenticated request, want 0", n)
	}
}
