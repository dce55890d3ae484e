package extension

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// Golden authentication values from Security/Authentication.md, Simple.md and Bearer.md, matching what
// rsocket-js's encodeBearerAuthMetadata, encodeSimpleAuthMetadata and encodeCustomAuthMetadata produce.
func TestAuthGolden(t *testing.T) {
	// encodeBearerAuthMetadata("token"): 0x01|0x80, then the token
	if b := AppendAuthBearer(nil, []byte("token")); string(b) != "\x81token" {
		t.Errorf("bearer = % x", b)
	}
	// encodeSimpleAuthMetadata("user", "pass"): 0x00|0x80, u16 4, "user", "pass"
	if b := AppendAuthSimple(nil, []byte("user"), []byte("pass")); string(b) != "\x80\x00\x04userpass" {
		t.Errorf("simple = % x", b)
	}
	// encodeCustomAuthMetadata("custom", "payload"): length-1 = 5, name, payload
	if b := AppendAuthCustom(nil, "custom", []byte("payload")); string(b) != "\x05custompayload" {
		t.Errorf("custom = % x", b)
	}
	if b := AppendAuthID(nil, 0x05, []byte("x")); string(b) != "\x85x" {
		t.Errorf("id = % x", b)
	}
	long := strings.Repeat("u", 300)
	if b := AppendAuthSimple(nil, []byte(long), nil); string(b[:3]) != "\x80\x01\x2c" || len(b) != 303 {
		t.Errorf("simple 300-byte user header = % x", b[:3])
	}
}

func TestParseAuth(t *testing.T) {
	a, err := ParseAuth([]byte("\x81token"))
	if err != nil || !a.WellKnown || a.Type != AuthBearer || a.TypeString() != "bearer" {
		t.Fatalf("bearer: %+v %v", a, err)
	}
	if tok, err := a.Bearer(); err != nil || string(tok) != "token" {
		t.Errorf("Bearer() = %q, %v", tok, err)
	}
	if _, _, err := a.Simple(); !errors.Is(err, ErrAuthType) {
		t.Errorf("Simple() on bearer err = %v", err)
	}

	a, err = ParseAuth([]byte("\x80\x00\x04userpass"))
	if err != nil || a.TypeString() != "simple" {
		t.Fatalf("simple: %+v %v", a, err)
	}
	u, p, err := a.Simple()
	if err != nil || string(u) != "user" || string(p) != "pass" {
		t.Errorf("Simple() = %q %q %v", u, p, err)
	}
	if _, err := a.Bearer(); !errors.Is(err, ErrAuthType) {
		t.Errorf("Bearer() on simple err = %v", err)
	}
	// empty username and password are well formed
	a, _ = ParseAuth([]byte("\x80\x00\x00"))
	if u, p, err := a.Simple(); err != nil || len(u) != 0 || len(p) != 0 {
		t.Errorf("empty simple = %q %q %v", u, p, err)
	}

	a, err = ParseAuth([]byte("\x05custompayload"))
	if err != nil || a.WellKnown || string(a.CustomType) != "custom" || string(a.Payload) != "payload" {
		t.Fatalf("custom: %+v %v", a, err)
	}
	if a.TypeString() != "custom" {
		t.Errorf("TypeString = %q", a.TypeString())
	}
	// a custom type spelled "bearer" is not the well-known bearer
	a, _ = ParseAuth([]byte("\x05bearertok"))
	if _, err := a.Bearer(); !errors.Is(err, ErrAuthType) {
		t.Errorf("spelled-out bearer accepted: %v", err)
	}
	for _, wire := range []string{"\x81token", "\x80\x00\x04userpass", "\x05custompayload", "\xff"} {
		a, err := ParseAuth([]byte(wire))
		if err != nil {
			t.Fatal(err)
		}
		if b := AppendAuth(nil, &a); string(b) != wire {
			t.Errorf("AppendAuth(%q) = % x", wire, b)
		}
	}
}

func TestAuthErrors(t *testing.T) {
	for _, wire := range []string{"", "\x05cus", "\x01\xc3\xa9"} {
		if _, err := ParseAuth([]byte(wire)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseAuth(% x) err = %v", wire, err)
		}
	}
	for _, wire := range []string{"\x80", "\x80\x00", "\x80\x00\x05user"} {
		a, err := ParseAuth([]byte(wire))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := a.Simple(); !errors.Is(err, ErrMalformed) {
			t.Errorf("Simple(% x) err = %v", wire, err)
		}
	}
	if _, err := EncodeAuthSimple([]byte("k"), make([]byte, 1<<16), nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("EncodeAuthSimple(65536-byte user) err = %v", err)
	}
	for _, typ := range []string{"", strings.Repeat("a", 129), "tÿpe"} {
		out, err := EncodeAuthCustom([]byte("k"), typ, nil)
		if !errors.Is(err, ErrInvalid) || !bytes.Equal(out, []byte("k")) {
			t.Errorf("EncodeAuthCustom(%q) = %q, %v", typ, out, err)
		}
	}
	mustPanic(t, "AppendAuthCustom(empty)", func() { AppendAuthCustom(nil, "", nil) })
	mustPanic(t, "AppendAuthSimple(long)", func() { AppendAuthSimple(nil, make([]byte, 1<<16), nil) })
	mustPanic(t, "AppendAuthID(0x80)", func() { AppendAuthID(nil, 0x80, nil) })
	if n, ok := AuthTypeName(2); ok || n != "" {
		t.Errorf("AuthTypeName(2) = %q", n)
	}
	if id, ok := AuthTypeID("bearer"); !ok || id != AuthBearer {
		t.Errorf("AuthTypeID(bearer) = %d %v", id, ok)
	}
}
