package jwk

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// Keys from RFC 7517 appendix A.1 and A.3 and RFC 8037 appendix A.2.
const (
	rfcEC    = `{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","kid":"1"}`
	rfcECEnc = `{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","use":"enc","kid":"1"}`
	rfcRSA   = `{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`
	rfcOKP   = `{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"ed"}`
	rfcOct   = `{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow","kid":"hmac"}`
	rfcOct16 = `{"kty":"oct","alg":"A128KW","k":"GawgguFyGrWKav7AX4VKUg"}`
)

func TestParseRFCKeys(t *testing.T) {
	doc := `{"keys":[` + strings.Join([]string{rfcEC, rfcRSA, rfcOKP, rfcOct, rfcECEnc, rfcOct16, `{"kty":"XYZ"}`, `17`}, ",") + `]}`
	s, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Keys) != 4 || len(s.Skipped) != 4 {
		t.Fatalf("keys %d skipped %q", len(s.Keys), s.Skipped)
	}
	ec, err := s.Keys[0].Public.(*ecdsa.PublicKey).Bytes()
	if err != nil || s.Keys[0].ID != "1" || hex.EncodeToString(ec[1:33]) != "30a0424cd21c2944838a2d75c92b37e76ea20d9f00893a3b4eee8a3c0aafec3e" {
		t.Fatalf("EC x = %x (%v)", ec, err)
	}
	rk := s.Keys[1].Public.(*rsa.PublicKey)
	if rk.E != 65537 || rk.N.BitLen() != 2048 || s.Keys[1].Alg != "RS256" || s.Keys[1].ID != "2011-04-29" {
		t.Fatalf("RSA e=%d bits=%d", rk.E, rk.N.BitLen())
	}
	if !strings.HasPrefix(rk.N.Text(16), "d2fc7b6a0a1e6c67") {
		t.Fatalf("RSA n = %s", rk.N.Text(16)[:16])
	}
	ed := s.Keys[2].Public.(ed25519.PublicKey)
	if ed[0] != 0xd7 || ed[31] != 0x1a {
		t.Fatalf("Ed25519 x = %x", ed)
	}
	if k := s.Keys[3].Public.([]byte); len(k) != 64 || k[0] != 0x03 {
		t.Fatalf("oct k = %x", k)
	}
	for i, want := range []string{"keys[4]: use", "keys[5]: k: 16 bytes", "keys[6]: kty", "keys[7]: json"} {
		if !strings.HasPrefix(s.Skipped[i], want) {
			t.Errorf("skipped[%d] = %q, want prefix %q", i, s.Skipped[i], want)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, doc := range []string{``, `[]`, `{}`, `{"keys":{}}`, `null`} {
		if _, err := Parse([]byte(doc)); !errors.Is(err, ErrNotSet) {
			t.Errorf("%q: %v", doc, err)
		}
	}
	bad := []string{
		`{"kty":"EC","crv":"P-256","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE"}`, // not on the curve
		`{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}`,
		`{"kty":"RSA","n":"AQAB","e":"AQAB"}`, // 17 bits
		`{"kty":"RSA","n":"0vx7","e":"AAEAAQ"}`,
		`{"kty":"OKP","crv":"X25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`,
		`{"kty":"OKP","crv":"Ed25519","x":"11qY"}`,
		`{"kty":"oct","k":"***"}`,
	}
	for _, k := range bad {
		s, err := Parse([]byte(`{"keys":[` + k + `]}`))
		if err != nil || len(s.Keys) != 0 || len(s.Skipped) != 1 {
			t.Errorf("%s: err %v keys %d skipped %q", k, err, len(s.Keys), s.Skipped)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"keys":[` + rfcEC + `,` + rfcRSA + `]}`))
	f.Add([]byte(`{"keys":[` + rfcOKP + `,` + rfcOct + `]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"","e":""}]}`))
	f.Add([]byte(`{"keys":[]}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		s, err := Parse(doc)
		if err != nil {
			if !errors.Is(err, ErrNotSet) {
				t.Fatalf("error %v does not match ErrNotSet", err)
			}
			return
		}
		for _, k := range s.Keys {
			switch pk := k.Public.(type) {
			case *rsa.PublicKey:
				if pk.N.BitLen() < MinRSABits || k.Kty != KtyRSA {
					t.Fatal("weak RSA key accepted")
				}
			case *ecdsa.PublicKey:
				if _, err := pk.Bytes(); err != nil { // an invalid (off-curve) key cannot be encoded
					t.Fatal("invalid EC key accepted:", err)
				}
			case ed25519.PublicKey:
				if len(pk) != ed25519.PublicKeySize {
					t.Fatal("bad ed25519 size")
				}
			case []byte:
				if len(pk) < MinOctLen {
					t.Fatal("short oct key")
				}
			default:
				t.Fatalf("unexpected key type %T", pk)
			}
		}
	})
}
