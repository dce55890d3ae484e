package principal

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

// golden is the example of docs/METADATA.md: alice verified by provider "users", scopes profile and read,
// claim email.
const golden = "\x01" + // version
	"\x05users" + // provider
	"\x00\x05alice" + // subject
	"\x02\x07profile\x04read" + // scopes
	"\x01\x05email\x00\x06a@x.io" // claims

var goldenPrincipal = Principal{
	Subject: "alice", Provider: "users", Scopes: []string{"profile", "read"},
	Claims: []Claim{{Name: "email", Value: "a@x.io"}},
}

func TestAppendGolden(t *testing.T) {
	b, err := Append(nil, &goldenPrincipal)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != golden {
		t.Fatalf("got %q\nwant %q", b, golden)
	}
}

func TestEntryGolden(t *testing.T) {
	e := AppendEntry(nil, []byte{1, 2})
	want := "\x1cmessage/x.rsgate.principal.v0\x00\x00\x02\x01\x02"
	if string(e) != want {
		t.Fatalf("got %q want %q", e, want)
	}
}

func TestParseGolden(t *testing.T) {
	v, err := Parse([]byte(golden))
	if err != nil {
		t.Fatal(err)
	}
	if string(v.Provider) != "users" || string(v.Subject) != "alice" {
		t.Fatalf("provider %q subject %q", v.Provider, v.Subject)
	}
	var scopes []string
	for v.Scopes.Next() {
		scopes = append(scopes, string(v.Scopes.Value()))
	}
	if len(scopes) != 2 || scopes[0] != "profile" || scopes[1] != "read" {
		t.Fatalf("scopes %q", scopes)
	}
	if !v.Claims.Next() || string(v.Claims.Name()) != "email" || string(v.Claims.Value()) != "a@x.io" || v.Claims.Next() {
		t.Fatal("claims")
	}
}

func TestParseErrors(t *testing.T) {
	for i := 0; i < len(golden); i++ {
		_, err := Parse([]byte(golden[:i]))
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("truncated at %d: %v", i, err)
		}
	}
	if _, err := Parse([]byte("\x02" + golden[1:])); !errors.Is(err, ErrVersion) {
		t.Fatalf("version: %v", err)
	}
	// Trailing bytes are reserved within version 1.
	if _, err := Parse([]byte(golden + "xyz")); err != nil {
		t.Fatal(err)
	}
}

func TestAppendTooLong(t *testing.T) {
	long := string(bytes.Repeat([]byte("a"), 256))
	for _, p := range []Principal{
		{Provider: long},
		{Scopes: []string{long}},
		{Claims: []Claim{{Name: long}}},
		{Subject: string(bytes.Repeat([]byte("a"), 1<<16))},
	} {
		if b, err := Append([]byte("x"), &p); !errors.Is(err, ErrTooLong) || string(b) != "x" {
			t.Fatalf("%v %q", err, b)
		}
	}
}

func TestFromClientCert(t *testing.T) {
	p := FromClientCert("CN=svc,O=acme")
	b, _ := Append(nil, p)
	v, err := Parse(b)
	if err != nil || string(v.Provider) != "mtls" || string(v.Subject) != "CN=svc,O=acme" {
		t.Fatal(err, v)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(golden))
	f.Add([]byte("\x01\x00\x00\x00\x00\x00"))
	f.Add([]byte("\x01\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Parse(b)
		if err != nil {
			return
		}
		p := Principal{Provider: string(v.Provider), Subject: string(v.Subject)}
		for v.Scopes.Next() {
			p.Scopes = append(p.Scopes, string(v.Scopes.Value()))
		}
		for v.Claims.Next() {
			p.Claims = append(p.Claims, Claim{string(v.Claims.Name()), string(v.Claims.Value())})
		}
		out, err := Append(nil, &p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, out) {
			t.Fatalf("round trip: %q is not a prefix of %q", out, b)
		}
	})
}

// TestDocExample is the composite entry of docs/METADATA.md's example.
func TestDocExample(t *testing.T) {
	v, _ := Append(nil, &goldenPrincipal)
	got := hex.EncodeToString(AppendEntry(nil, v))
	want := "1c" + "6d6573736167652f782e7273676174652e7072696e636970616c2e7630" + "00002b" +
		"01" + "057573657273" + "0005616c696365" + "020770726f66696c650472656164" + "0105656d61696c00066140782e696f"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
