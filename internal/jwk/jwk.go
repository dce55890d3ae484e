// Package jwk decodes a JSON Web Key Set (RFC 7517) into verification keys: RSA (kty "RSA"), elliptic
// curve P-256 (kty "EC", crv "P-256"), Ed25519 (kty "OKP", crv "Ed25519", RFC 8037) and symmetric keys
// (kty "oct"). Private members ("d", "p", ...) are ignored: only public (or, for oct, shared) material is
// read.
//
// A key of an unsupported type or curve, or with a malformed member, is skipped and reported in
// Set.Skipped instead of failing the whole set (RFC 7517 section 5: implementations SHOULD ignore keys
// they do not understand), so that one bad key in a rotated set does not lock every client out. Parse fails
// only when the document is not a JWK Set.
package jwk

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
)

// Key types (the "kty" member).
const (
	KtyRSA = "RSA"
	KtyEC  = "EC"
	KtyOKP = "OKP"
	KtyOct = "oct"
)

// Limits.
const (
	// MaxKeys is the largest number of keys read from one set; further keys are skipped.
	MaxKeys = 256
	// MinRSABits is the smallest RSA modulus accepted (NIST SP 800-131A).
	MinRSABits = 2048
	// MaxRSABits bounds the work of one verification.
	MaxRSABits = 8192
	// MinOctLen is the smallest symmetric key accepted, in bytes (RFC 7518 section 3.2, HS256).
	MinOctLen = 32
)

// ErrNotSet matches a document that is not a JWK Set (not a JSON object with a "keys" array).
var ErrNotSet = errors.New("jwk: not a JWK Set")

// Key is one usable key.
type Key struct {
	ID  string // "kid", may be empty
	Kty string // KtyRSA, KtyEC, KtyOKP or KtyOct
	Alg string // "alg", may be empty (then any algorithm of the key type)
	Use string // "use", may be empty; keys with another use than "sig" are skipped
	// Public is *rsa.PublicKey, *ecdsa.PublicKey (P-256), ed25519.PublicKey, or []byte (oct).
	Public any
}

// Set is a decoded JWK Set.
type Set struct {
	Keys    []Key
	Skipped []string // why each skipped key was skipped, "keys[3]: ..."
}

type rawKey struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
	K   string `json:"k"`
}

// Parse decodes a JWK Set document.
func Parse(doc []byte) (*Set, error) {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(doc, &raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotSet, err)
	}
	if raw.Keys == nil {
		return nil, fmt.Errorf("%w: no \"keys\" array", ErrNotSet)
	}
	s := &Set{}
	for i, m := range raw.Keys {
		where := "keys[" + strconv.Itoa(i) + "]"
		if i >= MaxKeys {
			s.Skipped = append(s.Skipped, where+": more than "+strconv.Itoa(MaxKeys)+" keys")
			break
		}
		var rk rawKey
		if err := json.Unmarshal(m, &rk); err != nil {
			s.Skipped = append(s.Skipped, where+": "+err.Error())
			continue
		}
		k, err := decode(&rk)
		if err != nil {
			s.Skipped = append(s.Skipped, where+": "+err.Error())
			continue
		}
		s.Keys = append(s.Keys, k)
	}
	return s, nil
}

func b64(field, s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%s: invalid base64url: %v", field, err)
	}
	return b, nil
}

func decode(rk *rawKey) (Key, error) {
	k := Key{ID: rk.Kid, Kty: rk.Kty, Alg: rk.Alg, Use: rk.Use}
	if rk.Use != "" && rk.Use != "sig" {
		return k, fmt.Errorf("use %q is not \"sig\"", rk.Use)
	}
	switch rk.Kty {
	case KtyRSA:
		n, err := b64("n", rk.N)
		if err != nil {
			return k, err
		}
		e, err := b64("e", rk.E)
		if err != nil {
			return k, err
		}
		if len(n) == 0 || n[0] == 0 {
			return k, errors.New("n: empty or not minimal")
		}
		if len(e) == 0 || len(e) > 4 || e[0] == 0 {
			return k, errors.New("e: empty, not minimal or over 32 bits")
		}
		var ev int64
		for _, c := range e {
			ev = ev<<8 | int64(c)
		}
		if ev < 3 || ev&1 == 0 || ev > 1<<31-1 {
			return k, fmt.Errorf("e: %d is not an odd exponent in 3..2^31-1", ev)
		}
		pk := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(ev)}
		if bits := pk.N.BitLen(); bits < MinRSABits || bits > MaxRSABits {
			return k, fmt.Errorf("n: %d bits, want %d..%d", bits, MinRSABits, MaxRSABits)
		}
		k.Public = pk
	case KtyEC:
		if rk.Crv != "P-256" {
			return k, fmt.Errorf("crv %q is not supported (P-256 only)", rk.Crv)
		}
		x, err := b64("x", rk.X)
		if err != nil {
			return k, err
		}
		y, err := b64("y", rk.Y)
		if err != nil {
			return k, err
		}
		if len(x) != 32 || len(y) != 32 {
			return k, errors.New("x, y: want 32 bytes each for P-256")
		}
		pt := append(append([]byte{4}, x...), y...)
		pk, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pt)
		if err != nil {
			return k, fmt.Errorf("x, y: %v", err) // not on the curve
		}
		k.Public = pk
	case KtyOKP:
		if rk.Crv != "Ed25519" {
			return k, fmt.Errorf("crv %q is not supported (Ed25519 only)", rk.Crv)
		}
		x, err := b64("x", rk.X)
		if err != nil {
			return k, err
		}
		if len(x) != ed25519.PublicKeySize {
			return k, errors.New("x: want 32 bytes for Ed25519")
		}
		k.Public = ed25519.PublicKey(x)
	case KtyOct:
		kb, err := b64("k", rk.K)
		if err != nil {
			return k, err
		}
		if len(kb) < MinOctLen {
			return k, fmt.Errorf("k: %d bytes, want at least %d", len(kb), MinOctLen)
		}
		k.Public = kb
	default:
		return k, fmt.Errorf("kty %q is not supported", rk.Kty)
	}
	return k, nil
}
