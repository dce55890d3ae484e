package ingress

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/rsgate/rsgate/internal/httpmeta"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket/extension"
)

// The example of docs/METADATA.md: GET /api/users/42?x=1 on route users (tag "users.{id}", forward_headers
// [X-Trace, Accept]) with "Authorization: Bearer secret-token", "X-Trace: abc" and two Accept headers.
const docExampleHex = "" +
	"fe000009" + "08" + "75736572732e3432" + // routing entry: id 0x7E, len 9, tag len 8, "users.42"
	"fc00000d" + "81" + "7365637265742d746f6b656e" + // auth entry: id 0x7C, len 13, bearer (0x81), token
	"17" + "6d6573736167652f782e7273676174652e687474702e7630" + // custom MIME, 24 bytes
	"000054" + // entry length 84
	"0101" + "03474554" + "0011" + "2f6170692f75736572732f34323f783d31" + // v1 request, "GET", "/api/users/42?x=1"
	"0003" + // 3 headers
	"07782d7472616365" + "0003616263" + // x-trace: abc
	"06616363657074" + "0010" + "6170706c69636174696f6e2f6a736f6e" + // accept: application/json
	"06616363657074" + "000a" + "746578742f706c61696e" // accept: text/plain

func TestRequestMetadataWireBytes(t *testing.T) {
	rt, ps, mr := metadataFixture(t)
	md, err := appendRequestMetadata(nil, rt, ps, mr)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(md); got != docExampleHex {
		t.Fatalf("metadata\n got %s\nwant %s", got, docExampleHex)
	}
}

func TestMetadataKinds(t *testing.T) {
	rt, ps, mr := metadataFixture(t)
	// Plain routing metadata: just [len][tag].
	r2 := *rt
	r2.mdKind = mdRouting
	md, err := appendRequestMetadata(nil, &r2, ps, mr)
	if err != nil || string(md) != "\x08users.42" {
		t.Fatalf("routing-only metadata %q, %v", md, err)
	}
	// Another metadata MIME type: nothing is sent.
	r2.mdKind = mdNone
	if md, err := appendRequestMetadata(nil, &r2, ps, mr); md != nil || err != nil {
		t.Fatalf("mdNone metadata %q, %v", md, err)
	}
	// Composite without tag, auth or forwarded headers: nil metadata (M flag clear).
	r2 = *rt
	r2.forward, r2.forwardAuth = nil, false
	r2.cr = &mapping.CompiledRoute{Route: rt.cr.Route}
	if md, err := appendRequestMetadata(nil, &r2, ps, mr); md != nil || err != nil {
		t.Fatalf("empty composite %q, %v", md, err)
	}
	// A forwarded header longer than the gateway entry allows.
	var h fasthttp.RequestHeader
	h.Set("X-Trace", strings.Repeat("v", 1<<16))
	big := *mr
	big.header = &h
	if _, err := appendRequestMetadata(nil, rt, ps, &big); !errors.Is(err, ErrHeaderTooLong) {
		t.Fatalf("long header: %v", err)
	}
}

func TestBearerToken(t *testing.T) {
	for in, want := range map[string]string{
		"Bearer abc":     "abc",
		"bearer  abc ":   "abc",
		"BEARER\tx":      "",
		"Bearer ":        "",
		"Basic dXNlcjpw": "",
		"Bearerabc":      "",
		"":               "",
	} {
		if got := string(bearerToken([]byte(in))); got != want {
			t.Errorf("bearerToken(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAppendJSONString(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:          `"plain"`,
		"q\"b\\n\n\r\t":  `"q\"b\\n\n\r\t"`,
		"\x01\x1f":       `"\u0001\u001f"`,
		"caf\xc3\xa9":    `"café"`,
		"bad\xff\xfeend": `"bad\ufffd\ufffdend"`,
		"</script>":      `"</script>"`,
	} {
		if got := string(appendJSONString(nil, in)); got != want {
			t.Errorf("appendJSONString(%q) = %s, want %s", in, got, want)
		}
	}
}

// The response example of docs/METADATA.md.
const docResponseHex = "17" + "6d6573736167652f782e7273676174652e687474702e7630" + "00001e" +
	"010200c9" + "0001" + "086c6f636174696f6e" + "000d" + "2f6170692f75736572732f3433"

func TestResponseEntryDocExample(t *testing.T) {
	v, err := httpmeta.AppendResponse(nil, 201, httpmeta.Header{Name: []byte("Location"), Value: []byte("/api/users/43")})
	if err != nil {
		t.Fatal(err)
	}
	entry := extension.AppendCompositeEntry(nil, MimeGateway, v)
	if got := hex.EncodeToString(entry); got != docResponseHex {
		t.Fatalf("response entry\n got %s\nwant %s", got, docResponseHex)
	}
	if n := len(docExampleHex) / 2; n != 142 {
		t.Fatalf("request example is %d bytes; docs/METADATA.md says 142", n)
	}
	// And the gateway applies it.
	var resp fasthttp.Response
	applyResponseMetadata(&resp, entry)
	if resp.StatusCode() != 201 || string(resp.Header.Peek("Location")) != "/api/users/43" {
		t.Fatalf("applied: %d %q", resp.StatusCode(), resp.Header.Peek("Location"))
	}
}
