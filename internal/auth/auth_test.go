package auth

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rsgate/rsgate/internal/auth/authtest"
	"github.com/rsgate/rsgate/internal/principal"
	"github.com/rsgate/rsgate/mapping"
)

const (
	iss = "https://login.example.com"
	aud = "api"
)

func jwtConfig(t testing.TB, jwks []byte) (*mapping.AuthProvider, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	c := mapping.NewAuthProvider("users")
	c.Type, c.JWKSFile, c.Issuer, c.Audiences = mapping.AuthJWT, path, iss, []string{aud}
	c.MinRefreshInterval = 0
	c.ForwardClaims = []string{"email", "tenant", "roles"}
	return c, path
}

func newProvider(t testing.TB, c *mapping.AuthProvider) Provider {
	t.Helper()
	p, err := New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func wantReason(t *testing.T, name string, err error, reason string) {
	t.Helper()
	var ae *Error
	if !errors.Is(err, ErrInvalid) || !errors.As(err, &ae) || ae.Reason != reason {
		t.Errorf("%s: got %v, want reason %q", name, err, reason)
	}
}

func TestJWTMatrix(t *testing.T) {
	rs, ps := authtest.RSA("rs", "RS256", 0), authtest.RSA("ps", "PS256", 1)
	ec, ed, hs := authtest.EC("ec"), authtest.Ed("ed"), authtest.HMAC("hs", "HS256")
	hs512 := authtest.HMAC("hs512", "HS512")
	c, _ := jwtConfig(t, authtest.JWKS(rs, ps, ec, ed, hs, hs512))
	c.CacheSize = 0 // every case is verified, not served from the cache
	p := newProvider(t, c)
	good := func(extra map[string]any) jwt.MapClaims {
		return authtest.Claims("alice", iss, aud, time.Minute, extra)
	}

	for _, k := range []*authtest.Key{rs, ps, ec, ed, hs, hs512} {
		id, err := p.Verify([]byte(k.Sign(good(map[string]any{"scope": "profile read", "email": "a@x.io", "roles": []string{"x"}}))))
		if err != nil {
			t.Fatalf("%s: %v", k.Alg, err)
		}
		if id.Subject != "alice" || id.Provider != "users" || !id.HasScopes([]string{"read", "profile"}) || id.HasScopes([]string{"admin"}) {
			t.Fatalf("%s: identity %+v", k.Alg, id)
		}
		v, err := principal.Parse(id.Entry[1+len(principal.MIME)+3:])
		if err != nil || string(v.Subject) != "alice" || v.Claims.Len() != 2 {
			t.Fatalf("%s: entry %v %+v", k.Alg, err, v)
		}
		v.Claims.Next()
		v.Claims.Next()
		if string(v.Claims.Name()) != "roles" || string(v.Claims.Value()) != `["x"]` {
			t.Fatalf("claim %q=%q", v.Claims.Name(), v.Claims.Value())
		}
	}
	// scp as an array and as a string.
	id, _ := p.Verify([]byte(ec.Sign(good(map[string]any{"scp": []string{"a", "b"}}))))
	if id == nil || !id.HasScopes([]string{"a", "b"}) {
		t.Fatal("scp array")
	}
	id, _ = p.Verify([]byte(ec.Sign(good(map[string]any{"scp": "a b"}))))
	if id == nil || !id.HasScopes([]string{"b"}) {
		t.Fatal("scp string")
	}

	other := authtest.EC("ec") // same kid, other key: bad signature
	rsPriv := rs.Private.(*rsa.PrivateKey)
	rsPub, _ := x509.MarshalPKIXPublicKey(&rsPriv.PublicKey)
	cases := []struct {
		name, token, reason string
	}{
		{"expired", rs.Sign(authtest.Claims("alice", iss, aud, -time.Hour, nil)), reasonExpired},
		{"not yet valid", rs.Sign(good(map[string]any{"nbf": time.Now().Add(time.Hour).Unix()})), reasonNotYet},
		{"wrong issuer", rs.Sign(authtest.Claims("alice", "https://evil", aud, time.Minute, nil)), reasonIssuer},
		{"wrong audience", rs.Sign(authtest.Claims("alice", iss, "other", time.Minute, nil)), reasonAudience},
		{"no exp", rs.Sign(jwt.MapClaims{"sub": "alice", "iss": iss, "aud": aud}), reasonClaims},
		{"no sub", rs.Sign(jwt.MapClaims{"iss": iss, "aud": aud, "exp": time.Now().Add(time.Minute).Unix()}), reasonNoSubject},
		{"bad signature", other.Sign(good(nil)), reasonSignature},
		{"alg none", authtest.None(good(nil)), reasonAlgorithm},
		{"HS/RS confusion (DER)", authtest.Confused(rs, good(nil), rsPub), reasonAlgorithm},
		{"HS/RS confusion (n)", authtest.Confused(rs, good(nil), rsPriv.N.Bytes()), reasonAlgorithm},
		{"unknown kid", authtest.EC("nope").Sign(good(nil)), reasonUnknownKey},
		{"malformed", "a.b", reasonMalformed},
		{"garbage", "not a token at all", reasonMalformed},
	}
	for _, tc := range cases {
		_, err := p.Verify([]byte(tc.token))
		wantReason(t, tc.name, err, tc.reason)
	}
	if _, err := p.Verify(nil); !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("empty: %v", err)
	}
}

// TestJWKSFileRotation: a token signed with a key added to the file later is accepted after the file is
// rewritten (unknown kid -> refresh); a removed key's tokens are then rejected, cached or not.
func TestJWKSFileRotation(t *testing.T) {
	k1, k2 := authtest.EC("k1"), authtest.EC("k2")
	c, path := jwtConfig(t, authtest.JWKS(k1))
	p := newProvider(t, c)
	t1 := []byte(k1.Sign(authtest.Claims("alice", iss, aud, time.Minute, nil)))
	t2 := []byte(k2.Sign(authtest.Claims("bob", iss, aud, time.Minute, nil)))
	if _, err := p.Verify(t1); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Verify(t1); err != nil { // cached
		t.Fatal(err)
	}
	_, err := p.Verify(t2)
	wantReason(t, "k2 before rotation", err, reasonUnknownKey)
	time.Sleep(10 * time.Millisecond) // a new modification time on coarse file systems
	if err := os.WriteFile(path, authtest.JWKS(k2), 0o600); err != nil {
		t.Fatal(err)
	}
	if id, err := p.Verify(t2); err != nil || id.Subject != "bob" {
		t.Fatalf("k2 after rotation: %v", err)
	}
	_, err = p.Verify(t1)
	wantReason(t, "k1 after rotation (was cached)", err, reasonUnknownKey)
}

// TestJWKSURL: fetched at start, on an unknown kid (rate-limited by min_refresh_interval), bounded in size.
func TestJWKSURL(t *testing.T) {
	k1, k2 := authtest.RSA("k1", "RS256", 0), authtest.Ed("k2")
	var doc atomic.Pointer[[]byte]
	var fetches atomic.Int32
	d := authtest.JWKS(k1)
	doc.Store(&d)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(*doc.Load())
	}))
	defer srv.Close()
	c := mapping.NewAuthProvider("users")
	c.Type, c.JWKSURL = mapping.AuthJWT, srv.URL+"/jwks"
	c.MinRefreshInterval = mapping.Duration(time.Hour)
	p := newProvider(t, c)
	if fetches.Load() != 1 {
		t.Fatalf("%d fetches at start", fetches.Load())
	}
	if _, err := p.Verify([]byte(k1.Sign(authtest.Claims("a", "x", "y", time.Minute, nil)))); err != nil {
		t.Fatal(err)
	}
	d2 := authtest.JWKS(k1, k2)
	doc.Store(&d2)
	// The start fetch was under an hour ago: unknown kids do not refetch (rate limit).
	for range 5 {
		_, err := p.Verify([]byte(k2.Sign(authtest.Claims("b", "x", "y", time.Minute, nil))))
		wantReason(t, "rate limited", err, reasonUnknownKey)
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1 (rate limit)", n)
	}
	jp := p.(*jwtProvider)
	jp.refreshMu.Lock()
	jp.minRefresh = 0
	jp.refreshMu.Unlock()
	if id, err := p.Verify([]byte(k2.Sign(authtest.Claims("b", "x", "y", time.Minute, nil)))); err != nil || id.Subject != "b" {
		t.Fatalf("after rotation: %v", err)
	}
	if fetches.Load() != 2 {
		t.Fatalf("%d fetches, want 2", fetches.Load())
	}

	// Size bound.
	c2 := mapping.NewAuthProvider("small")
	c2.Type, c2.JWKSURL, c2.MaxJWKSSize = mapping.AuthJWT, srv.URL, 100
	if _, err := New(c2, nil); !errors.Is(err, errTooLarge) {
		t.Fatalf("size bound: %v", err)
	}
	// Time bound.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	c3 := mapping.NewAuthProvider("slow")
	c3.Type, c3.JWKSURL, c3.FetchTimeout = mapping.AuthJWT, slow.URL, mapping.Duration(50*time.Millisecond)
	if _, err := New(c3, nil); err == nil {
		t.Fatal("slow JWKS accepted")
	}
}

func TestAPIKey(t *testing.T) {
	sum := sha256.Sum256([]byte("s3cret"))
	c := mapping.NewAuthProvider("partners")
	c.Type = mapping.AuthAPIKey
	c.Keys = []mapping.APIKey{{Name: "other", SHA256: hex.EncodeToString(make([]byte, 32))}, {Name: "acme", SHA256: hex.EncodeToString(sum[:])}}
	p := newProvider(t, c)
	if p.Header() != "X-API-Key" {
		t.Fatal(p.Header())
	}
	id, err := p.Verify([]byte("s3cret"))
	if err != nil || id.Subject != "acme" || id.Provider != "partners" {
		t.Fatal(id, err)
	}
	_, err = p.Verify([]byte("s3cret2"))
	wantReason(t, "wrong key", err, "unknown API key")
	if _, err := p.Verify(nil); !errors.Is(err, ErrNoCredentials) {
		t.Fatal(err)
	}
}

// TestCacheBounded: the verified-token cache never exceeds cache_size.
func TestCacheBounded(t *testing.T) {
	k := authtest.HMAC("h", "HS256")
	c, _ := jwtConfig(t, authtest.JWKS(k))
	c.CacheSize = 16
	p := newProvider(t, c)
	for i := range 100 {
		if _, err := p.Verify([]byte(k.Sign(authtest.Claims("u", iss, aud, time.Minute, map[string]any{"n": i})))); err != nil {
			t.Fatal(err)
		}
	}
	if n := p.(*jwtProvider).cache.len(); n > 16 || n == 0 {
		t.Fatalf("cache holds %d", n)
	}
}

// TestZeroConfigDefaults: a provider built in Go without NewAuthProvider gets the defaults.
func TestZeroConfigDefaults(t *testing.T) {
	k := authtest.Ed("ed")
	_, path := jwtConfig(t, authtest.JWKS(k))
	p := newProvider(t, &mapping.AuthProvider{Name: "z", Type: mapping.AuthJWT, JWKSFile: path})
	jp := p.(*jwtProvider)
	if jp.refresh != mapping.DefaultJWKSRefresh || jp.cache != nil || jp.leeway != 0 {
		t.Fatalf("refresh %v cache %v leeway %v", jp.refresh, jp.cache, jp.leeway)
	}
	if _, err := p.Verify([]byte(k.Sign(authtest.Claims("a", "any", "any", time.Minute, nil)))); err != nil {
		t.Fatal(err) // no issuer/audience configured: not checked
	}
}
