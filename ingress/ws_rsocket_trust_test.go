package ingress

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/rsgate/rsgate/internal/auth"
	"github.com/rsgate/rsgate/internal/principal"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/extension"
	"github.com/rsgate/rsgate/rsocket/frame"
)

// trustSession is an rsSession of a route with the given client_metadata mode and allow list.
func trustSession(mode string, allow ...string) *rsSession {
	cr := &mapping.CompiledRoute{Route: mapping.NewRoute("rs", mapping.InteractionRSocket)}
	cr.RSocket = &mapping.RSocketConfig{Allow: allow, ClientMetadata: mode}
	return &rsSession{rt: &route{rsp: newRSPolicy(cr)}}
}

func TestRSPolicyAllowed(t *testing.T) {
	p := trustSession(mapping.ClientMetadataStrip, "echo", "users.*", "a.b.*").rt.rsp
	for tag, want := range map[string]bool{
		"echo": true, "echo.1": false, "users.42": true, "users.": false, "users": false, "usersX": false,
		"a.b.c": true, "a.b": false, "fail": false, "": false, "slow.60000": false,
	} {
		if got := p.allowed([]byte(tag)); got != want {
			t.Errorf("allowed(%q) = %v, want %v", tag, got, want)
		}
	}
}

// TestAdmitStripsReserved: the stripped metadata keeps every other entry, in order, byte for byte, and
// gets the session's principal appended.
func TestAdmitStripsReserved(t *testing.T) {
	ss := trustSession(mapping.ClientMetadataStrip, "*")
	md := routeMD("x")
	md = extension.AppendCompositeEntry(md, "message/x.rsgate.http.v0", []byte("forged"))
	md = extension.AppendCompositeEntry(md, "application/x-keep", []byte("keep"))
	md = extension.AppendCompositeEntry(md, "MESSAGE/X.RSGATE.PRINCIPAL.V0", []byte("forged"))
	md = extension.AppendCompositeEntry(md, extension.MimeAuth, []byte{0x81, 't'}) // auth by name, not id
	md, _ = extension.AppendCompositeBearer(md, []byte("t"))                       // auth by id
	want := extension.AppendCompositeEntry(routeMD("x"), "application/x-keep", []byte("keep"))
	out, err := ss.admit(md, false)
	if err != nil || !bytes.Equal(out, want) {
		t.Fatalf("got %q %v\nwant %q", out, err, want)
	}
	entry, _ := ClientCertPrincipalEntry("CN=svc")
	v, _ := principal.Parse(entry[1+len(principal.MIME)+3:])
	if string(v.Provider) != "mtls" || string(v.Subject) != "CN=svc" {
		t.Fatal("mtls entry")
	}
	ss.id = &auth.Identity{Subject: "CN=svc", Entry: entry}
	out, err = ss.admit(md, false)
	if err != nil || !bytes.Equal(out, append(want, entry...)) {
		t.Fatalf("with identity: %q %v", out, err)
	}
	// Reject mode refuses the same request.
	rj := trustSession(mapping.ClientMetadataReject, "*")
	if _, err := rj.admit(md, false); !errors.Is(err, errReservedMetadata) {
		t.Fatalf("reject mode: %v", err)
	}
	ss.id = nil
	ss.rt.rsp.forwardAuth = true
	out, _ = ss.admit(md, false)
	if n := bytes.Count(out, []byte("rsgate")); n != 0 {
		t.Fatalf("forward_auth: gateway entries left: %q", out)
	}
	if !bytes.Contains(out, []byte{0xFC, 0, 0, 2, 0x81, 't'}) {
		t.Fatalf("forward_auth: bearer entry dropped: %q", out)
	}
}

func TestAdmitPushNeedsNoTag(t *testing.T) {
	ss := trustSession(mapping.ClientMetadataStrip, "echo")
	if out, err := ss.admit(extension.AppendCompositeEntry(nil, "application/x-a", []byte("a")), true); err != nil || len(out) == 0 {
		t.Fatal(out, err)
	}
	out, err := ss.admit(extension.AppendCompositeEntry(nil, "message/x.rsgate.http.v0", []byte("a")), true)
	if err != nil || out != nil {
		t.Fatalf("a push of only reserved entries: %q %v", out, err)
	}
}

// FuzzAdmit: whatever the client sends, what is relayed parses as composite metadata, holds no reserved
// entry, and only allowed routing tags; refusals are REJECTED or INVALID.
func FuzzAdmit(f *testing.F) {
	f.Add(forgedMD("users.1"), false)
	f.Add(routeMD("echo"), false)
	f.Add(append(routeMD("echo"), 0x05, 'x'), true)
	f.Add([]byte{0xFE, 0, 0, 2, 1, 'a'}, false)
	f.Fuzz(func(t *testing.T, md []byte, push bool) {
		for _, mode := range []string{mapping.ClientMetadataStrip, mapping.ClientMetadataReject} {
			ss := trustSession(mode, "echo", "users.*")
			out, err := ss.admit(md, push)
			if err != nil {
				var re *rsocket.Error
				if !errors.As(err, &re) || (re.Code != frame.CodeRejected && re.Code != frame.CodeInvalid) {
					t.Fatalf("error %v", err)
				}
				continue
			}
			it := extension.NewCompositeIter(out)
			for it.Next() {
				e := it.Entry()
				if ss.rt.rsp.reserved(&e, false) {
					t.Fatalf("reserved entry relayed: %q", e.Mime)
				}
				if e.Is(extension.MimeRouting) && !push {
					rt := extension.NewRoutingIter(e.Value)
					for rt.Next() {
						if !ss.rt.rsp.allowed(rt.Tag()) {
							t.Fatalf("tag %q relayed", rt.Tag())
						}
					}
				}
			}
			if it.Err() != nil {
				t.Fatalf("relayed malformed metadata %q: %v", out, it.Err())
			}
		}
	})
}

// FuzzTokenExtraction: the credential parsers never panic, and what they return is a trimmed, non-empty
// sub-slice of their input.
func FuzzTokenExtraction(f *testing.F) {
	f.Add([]byte("Bearer abc.def.ghi"))
	f.Add([]byte("bearer, eyJ0.eyJ1.c2ln"))
	f.Add([]byte("rsocket, Bearer ,  tok  ,x"))
	f.Add([]byte("bearer,"))
	md, _ := extension.AppendCompositeBearer(routeMD("x"), []byte("tok"))
	f.Add(md)
	f.Fuzz(func(t *testing.T, in []byte) {
		for name, tok := range map[string][]byte{
			"bearerToken":      bearerToken(in),
			"subprotocolToken": subprotocolToken(in),
			"setupBearer":      setupBearer(in),
		} {
			if tok == nil {
				continue
			}
			if len(tok) == 0 || !bytes.Contains(in, tok) {
				t.Fatalf("%s(%q) = %q", name, in, tok)
			}
			if name != "setupBearer" && (tok[0] == ' ' || tok[len(tok)-1] == ' ' || strings.ContainsRune(string(tok), ',') && name == "subprotocolToken") {
				t.Fatalf("%s(%q) = %q: not trimmed", name, in, tok)
			}
		}
	})
}

func TestSubprotocolToken(t *testing.T) {
	for in, want := range map[string]string{
		"bearer, tok":           "tok",
		"Bearer,tok":            "tok",
		"rsocket, bearer, tok ": "tok",
		"tok, bearer":           "",
		"bearer, , tok":         "",
		"bearerx, tok":          "",
		"":                      "",
	} {
		if got := string(subprotocolToken([]byte(in))); got != want {
			t.Errorf("subprotocolToken(%q) = %q, want %q", in, got, want)
		}
	}
}
