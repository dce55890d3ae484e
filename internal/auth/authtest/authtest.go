// Package authtest makes signing keys, JWK Sets and tokens for tests of the authentication code (package
// internal/auth and the ingress end-to-end tests). Not for production use.
package authtest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Key is a signing key with its id and algorithm.
type Key struct {
	ID      string
	Alg     string // HS256, RS256, PS256, ES256, EdDSA, ...
	Private any    // []byte, *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey
}

var (
	rsaOnce sync.Once
	rsaKeys [2]*rsa.PrivateKey
)

// rsaKey returns one of two shared 2048-bit RSA keys (generating them is slow).
func rsaKey(i int) *rsa.PrivateKey {
	rsaOnce.Do(func() {
		for j := range rsaKeys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaKeys[j] = k
		}
	})
	return rsaKeys[i]
}

// RSA returns an RSA key (n = 0 or 1 selects one of two shared keys) for alg RS256 or PS256.
func RSA(id, alg string, n int) *Key { return &Key{ID: id, Alg: alg, Private: rsaKey(n)} }

// EC returns a new P-256 key for ES256.
func EC(id string) *Key {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return &Key{ID: id, Alg: "ES256", Private: k}
}

// Ed returns a new Ed25519 key for EdDSA.
func Ed(id string) *Key {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return &Key{ID: id, Alg: "EdDSA", Private: k}
}

// HMAC returns a new 64-byte secret for alg (HS256, HS384, HS512).
func HMAC(id, alg string) *Key {
	b := make([]byte, 64)
	_, _ = rand.Read(b)
	return &Key{ID: id, Alg: alg, Private: b}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// JWK is the public JWK of k (with "alg" when withAlg).
func (k *Key) JWK(withAlg bool) map[string]any {
	m := map[string]any{"kid": k.ID}
	if withAlg {
		m["alg"] = k.Alg
	}
	switch p := k.Private.(type) {
	case []byte:
		m["kty"], m["k"] = "oct", b64(p)
	case *rsa.PrivateKey:
		m["kty"], m["n"], m["e"] = "RSA", b64(p.N.Bytes()), b64(big.NewInt(int64(p.E)).Bytes())
	case *ecdsa.PrivateKey:
		b, err := p.PublicKey.Bytes() // 0x04 || x || y
		if err != nil {
			panic(err)
		}
		m["kty"], m["crv"], m["x"], m["y"] = "EC", "P-256", b64(b[1:33]), b64(b[33:])
	case ed25519.PrivateKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", b64(p.Public().(ed25519.PublicKey))
	}
	return m
}

// JWKS is the JWK Set document of keys (public parts, with "alg").
func JWKS(keys ...*Key) []byte {
	set := map[string]any{"keys": []any{}}
	list := []any{}
	for _, k := range keys {
		list = append(list, k.JWK(true))
	}
	set["keys"] = list
	b, _ := json.Marshal(set)
	return b
}

func method(alg string) jwt.SigningMethod { return jwt.GetSigningMethod(alg) }

// Sign signs claims with k (header kid = k.ID unless empty).
func (k *Key) Sign(claims jwt.MapClaims) string {
	t := jwt.NewWithClaims(method(k.Alg), claims)
	if k.ID != "" {
		t.Header["kid"] = k.ID
	}
	s, err := t.SignedString(k.Private)
	if err != nil {
		panic(err)
	}
	return s
}

// Claims returns standard claims: sub, iss, aud, exp = now+ttl, plus extra.
func Claims(sub, iss, aud string, ttl time.Duration, extra map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{"sub": sub, "iss": iss, "aud": aud, "exp": time.Now().Add(ttl).Unix(), "iat": time.Now().Unix()}
	for n, v := range extra {
		c[n] = v
	}
	return c
}

// None is an unsigned token ("alg": "none") with claims.
func None(claims jwt.MapClaims) string {
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		panic(err)
	}
	return s
}

// Confused is the classic algorithm-confusion forgery: an HS256 token whose HMAC secret is the RSA public
// key's bytes (PKIX DER and the JWK's n), with the RSA key's kid.
func Confused(rsaKey *Key, claims jwt.MapClaims, secret []byte) string {
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	t.Header["kid"] = rsaKey.ID
	s, err := t.SignedString(secret)
	if err != nil {
		panic(err)
	}
	return s
}
