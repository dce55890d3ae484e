//go:build !race

package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/auth/authtest"
	"github.com/rsgate/rsgate/mapping"
)

// TestVerifyCachedAllocs: a cached token and an API key are verified without allocating.
func TestVerifyCachedAllocs(t *testing.T) {
	k := authtest.RSA("rs", "RS256", 0)
	c, _ := jwtConfig(t, authtest.JWKS(k))
	p := newProvider(t, c)
	tok := []byte(k.Sign(authtest.Claims("alice", iss, aud, time.Hour, map[string]any{"scope": "a b"})))
	if _, err := p.Verify(tok); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("key"))
	ac := mapping.NewAuthProvider("k")
	ac.Type, ac.Keys = mapping.AuthAPIKey, []mapping.APIKey{{Name: "n", SHA256: hex.EncodeToString(sum[:])}}
	ap := newProvider(t, ac)
	key := []byte("key")
	n := testing.AllocsPerRun(200, func() {
		if _, err := p.Verify(tok); err != nil {
			t.Fatal(err)
		}
		if _, err := ap.Verify(key); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Fatalf("%v allocs per cached verification", n)
	}
}

// BenchmarkVerify compares a cached token, an uncached RS256 and ES256 verification, and an API key.
func BenchmarkVerify(b *testing.B) {
	rs, ec := authtest.RSA("rs", "RS256", 0), authtest.EC("ec")
	c, _ := jwtConfig(b, authtest.JWKS(rs, ec))
	p, err := New(c, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	c.CacheSize = 0
	nc, _ := New(c, nil)
	defer nc.Close()
	rsTok := []byte(rs.Sign(authtest.Claims("alice", iss, aud, time.Hour, nil)))
	ecTok := []byte(ec.Sign(authtest.Claims("alice", iss, aud, time.Hour, nil)))
	for _, bc := range []struct {
		name string
		p    Provider
		tok  []byte
	}{{"cached", p, rsTok}, {"RS256", nc, rsTok}, {"ES256", nc, ecTok}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.p.Verify(bc.tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
