package frame

import (
	"bytes"
	"errors"
	"testing"
)

// Golden vectors written by hand from the byte layouts of the RSocket 1.0 specification (Protocol.md,
// "Framing" / "Frame Types"). Each name is the spec section the layout comes from. Header reminder:
// [Stream ID (32, top bit reserved)] [Frame Type (6) | I | M | Flags (8)], big endian.

type golden struct {
	name  string
	wire  []byte
	enc   func(dst []byte) []byte // nil: parse-only vector (non-canonical encoding)
	check func(t *testing.T, f Frame)
}

func eqb(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) || (got == nil) != (want == nil) {
		t.Errorf("%s = %q (nil=%v), want %q (nil=%v)", what, got, got == nil, want, want == nil)
	}
}

func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func hdr(t *testing.T, f Frame, typ Type, id uint32, fl Flags) {
	t.Helper()
	eq(t, "Type", f.Type(), typ)
	eq(t, "StreamID", f.StreamID(), id)
	eq(t, "Flags", f.Flags(), fl)
}

var goldens = []golden{
	{
		name: "SETUP Frame (0x01)/M|R|L with token, MIME types, metadata and data",
		wire: []byte{
			0x00, 0x00, 0x00, 0x00, // Stream ID = 0
			0x05, 0xC0, // type 0x01<<2 | M ; R|L
			0x00, 0x01, 0x00, 0x00, // Major 1, Minor 0
			0x00, 0x00, 0x01, 0xF4, // Time Between KEEPALIVE = 500ms
			0x00, 0x01, 0x5F, 0x90, // Max Lifetime = 90000ms
			0x00, 0x02, 't', 'k', // Token Length 2, token
			0x03, 'a', '/', 'b', // Metadata MIME
			0x03, 'c', '/', 'd', // Data MIME
			0x00, 0x00, 0x02, 'm', 'd', // Metadata Length 2, metadata
			'h', 'i', // Setup Data
		},
		enc: func(d []byte) []byte {
			return AppendSetup(d, &Setup{Major: 1, Minor: 0, Keepalive: 500, Lifetime: 90000, Token: []byte("tk"),
				Lease: true, MetadataMIME: "a/b", DataMIME: "c/d"}, []byte("md"), []byte("hi"))
		},
		check: func(t *testing.T, f Frame) {
			hdr(t, f, TypeSetup, 0, FlagMetadata|FlagResume|FlagLease)
			ma, mi := f.SetupVersion()
			eq(t, "major", ma, 1)
			eq(t, "minor", mi, 0)
			eq(t, "keepalive", f.SetupKeepalive(), 500)
			eq(t, "lifetime", f.SetupLifetime(), 90000)
			eqb(t, "token", f.SetupToken(), []byte("tk"))
			eqb(t, "mdmime", f.SetupMetadataMIME(), []byte("a/b"))
			eqb(t, "datamime", f.SetupDataMIME(), []byte("c/d"))
			eqb(t, "metadata", f.Metadata(), []byte("md"))
			eqb(t, "data", f.Data(), []byte("hi"))
		},
	},
	{
		name: "SETUP Frame (0x01)/no flags, empty MIME types, no payload",
		wire: []byte{
			0x00, 0x00, 0x00, 0x00,
			0x04, 0x00,
			0x00, 0x01, 0x00, 0x02, // 1.2
			0x00, 0x00, 0x4E, 0x20, // 20000
			0x00, 0x01, 0x5F, 0x90, // 90000
			0x00, // empty metadata MIME
			0x00, // empty data MIME
		},
		enc: func(d []byte) []byte {
			return AppendSetup(d, &Setup{Major: 1, Minor: 2, Keepalive: 20000, Lifetime: 90000}, nil, nil)
		},
		check: func(t *testing.T, f Frame) {
			hdr(t, f, TypeSetup, 0, 0)
			ma, mi := f.SetupVersion()
			eq(t, "version", [2]uint16{ma, mi}, [2]uint16{1, 2})
			eqb(t, "token", f.SetupToken(), nil)
			eqb(t, "mdmime", f.SetupMetadataMIME(), []byte{})
			eqb(t, "datamime", f.SetupDataMIME(), []byte{})
			eqb(t, "metadata", f.Metadata(), nil)
			eqb(t, "data", f.Data(), []byte{})
		},
	},
	{
		name: "ERROR Frame (0x0B)/APPLICATION_ERROR on stream 5",
		wire: []byte{
			0x00, 0x00, 0x00, 0x05,
			0x2C, 0x00, // 0x0B<<2
			0x00, 0x00, 0x02, 0x01, // APPLICATION_ERROR
			'b', 'o', 'o', 'm',
		},
		enc: func(d []byte) []byte { return AppendError(d, 5, CodeApplicationError, "boom") },
		check: func(t *testing.T, f Frame) {
			hdr(t, f, TypeError, 5, 0)
			eq(t, "code", f.ErrorCode(), CodeApplicationError)
			eqb(t, "message", f.ErrorMessage(), []byte("boom"))
			eqb(t, "data", f.Data(), []byte("boom"))
			eqb(t, "metadata", f.Metadata(), nil)
		},
	},
	{
		name: "ERROR Frame (0x0B)/INVALID_SETUP on stream 0, empty data",
		wire: []byte{0x00, 0x00, 0x00, 0x00, 0x2C, 0x00, 0x00, 0x00, 0x00, 0x01},
		enc:  func(d []byte) []byte { return AppendError(d, 0, CodeInvalidSetup, "") },
		check: func(t *testing.T, f Frame) {
			hdr(t, f, TypeError, 0, 0)
			eq(t, "code", f.ErrorCode(), CodeInvalidSetup)
			eqb(t, "message", f.ErrorMessage(), []byte{})
		},
	},
	{
		name: "LEASE Frame (0x02)/with metadata (no length field)",
		wire: []byte{
			0x00, 0x00, 0x00, 0x00,
			0x09, 0x00, // 0x02<<2 | M
			0x00, 0x00, 0x03, 0xE8, // TTL 1000ms
			0x00, 0x00, 0x00, 0x0A, // Number of Requests 10
			'm', 'd', // Metadata: rest of frame
		},
		enc: func(d []byte) []byte { return AppendLease(d, 1000, 10, []byte("md")) },
		check: func(t *testing.T, f Frame) {
			hdr(t, f, TypeLease, 0, FlagMetadata)
			eq(t, "ttl", f.LeaseTTL(), 1000)
			eq(t, "requests", f.LeaseRequests(), 10)
			eqb(t, "metadata", f.Metadata(), []byte("md"))
			eqb(t, "data", f.Data(), nil)
		},
	},
	{
		name: "LEASE Frame (0x02)/without metadata",
		wire: []byte{0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x7F, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00},
		enc:  func(d []byte) []byte { return AppendLease(d, MaxRequestN, 0, nil) },
		check: func(t *testing.T, f Frame) {
			hdr(t, f, TypeLease, 0, 0)
			eq(t, "ttl", f.LeaseTTL(), MaxRequestN)
			eq(t, "requests", f.LeaseRequests(), 0)
			eqb(t, "metadata", f.Metadata(), nil)
		},
	},
	{
		name: "KEEPALIVE Frame (0x03)/R with position and data",
		wire: []byte{
			0x00, 0x00, 0x00, 0x00,
			0x0C, 0x80, // 0x03<<2 ; R
			0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, // Last Received Position 258
			'k', 'a',
		},
		enc: func(d []byte) []byte { return AppendKeepalive(d, true, 258, []byte("ka")) },
		check: func(t *testing.T, f Frame) {
			hdr(t, f, TypeKeepalive, 0, FlagRespond)
			eq(t, "position", f.KeepalivePosition(), 258)
			eqb(t, "data", f.Data(), []byte("ka"))
			eqb(t, "metadata", f.Metadata(), nil)
		},
	},
	{
		name: "KEEPALIVE Frame (0x03)/response, max position, no data",
		wire: []byte{0x00, 0x00, 0x00, 0x00, 0x0C, 0x00, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF},
		enc:  func(d []byte) []byte { return AppendKeepalive(d, false, MaxPosition, nil) },
		check: func(t *testing.T, f Frame) {
			hdr(t, f, TypeKeepalive, 0, 0)
			eq(t, "position", f.KeepalivePosition(), uint64(MaxPosition))
			eqb(t, "data", f.Data(), []byte{})
		},
	},
	{
		name: "REQUEST_RESPONSE Frame (0x04)/M with metadata and data",
		wire: []byte{
			0x00, 0x00, 0x00, 0x01,
			0x11, 0x00, // 0x04<<2 | M
			0x00, 0x00, 0x02, 'm', 'd', // Metadata Length 2
			'h', 'i',
		},
		enc: func(d []byte) []byte { return AppendRequestResponse(d, 1, false, []byte("md"), []byte("hi")) },
		check: func(t *testing.T, f Frame) {
			hdr(t, f, TypeRequestResponse, 1, FlagMetadata)
			eqb(t, "metadata", f.Metadata(), []byte("md"))
			eqb(t, "data", f.Data(), []byte("hi"))
			eq(t, "initialN", f.InitialRequestN(), 0)
		},
	},
	{
		name: "REQUEST_RESPONSE Frame (0x04)/F without metadata",
		wire: []byte{0x00, 0x00, 0x00, 0x03, 0x10, 0x80, 'h', 'i'},
		enc:  func(d []byte) []byte { return AppendRequestResponse(d, 3, true, nil, []byte("hi")) },
		check: func(t *testing.T, f Frame) {
			hdr(t, f, TypeRequestResponse, 3, FlagFollows)
			eqb(t, "metadata", f.Metadata(), nil)
			eqb(t, "data", f.Data(), []byte("hi"))
		},
	},
	{
		name: "REQUEST_RESPONSE Frame (0x04)/M with empty metadata and empty data",
		wire: []byte{0x00, 0x00, 0x00, 0x01, 0x11, 0x00, 0x00, 0x00, 0x00},
		enc:  func(d []byte) []byte { return AppendRequestResponse(d, 1, false, []byte{}, nil) },
		check: func(t *testing.T, f Frame) {
			hdr(t, f, TypeRequestResponse, 1, FlagMetadata)
			eqb(t, "metadata", f.Metadata(), []byte{})
			eqb(t, "data", f.Data(), []byte{})
		},
	},
	{
		name: "REQUEST_FNF (Fire-n-Forget) Frame (0x05)/M|F",
		wire: []byte{0x00, 0x00, 0x00, 0x07, 0x15, 0x80, 0x00, 0x00, 0x01, 'm', 'x', 'y'},
		enc:  func(d []byte) []byte { return AppendRequestFNF(d, 7, true, []byte("m"), []byte("xy")) },
		check: func(t *testing.T, f Frame) {
			hdr(t, f, TypeRequestFNF, 7, FlagMetadata|FlagFollows)
			eqb(t, "metadata", f.Metadata(), []byte("m"))
			eqb(t, "data", f.Data(), []byte("xy"))
		},
	},
	{
		name: "REQUEST_STREAM Frame (0x06)/M with initial N",
		wire: []byte{
			0x00, 0x00, 0x00, 0x03,
			0x19, 0x00, // 0x06<<2 | M
			0x00, 0x00, 0x00, 0x05, // Initial Request N 5
			0x00, 0x00, 0x02, 'm', 'd',
			'a', 'b', 'c',
		},
		enc: func(d []byte) []byte { return AppendRequestStream(d, 3, 5, false, []byte("md"), []byte("abc")) },
		check: func(t *testing.T, f Frame) {
			hdr(t, f, TypeRequestStream, 3, FlagMetadata)
			eq(t, "initialN", f.InitialRequestN(), 5)
			eqb(t, "metadata", f.Metadata(), []byte("md"))
			eqb(t, "data", f.Data(), []byte("abc"))
		},
	},
	{
		name: "REQUEST_STREAM Frame (0x06)/max stream ID and N, no metadata",
		wire: []byte{0x7F, 0xFF, 0xFF, 0xFF, 0x18, 0x00, 0x7F, 0xFF, 0xFF, 0xFF},
		enc:  func(d []byte) []byte { return AppendRequestStream(d, MaxStreamID, MaxRequestN, false, nil, nil) },
		check: func(t *testing.T, f Frame) {
			hdr(t, f, TypeRequestStream, MaxStreamID, 0)
			eq(t, "initialN", f.InitialRequestN(), MaxRequestN)
			eqb(t, "data", f.Data(), []byte{})
		},
	},
	{
		name: "REQUEST_CHANNEL Frame (0x07)/M|C with initial N",
		wire: []byte{
			0x00, 0x00, 0x00, 0x09,
			0x1D, 0x40, // 0x07<<2 | M ; C
			0x00, 0x00, 0x01, 0x00, // Initial Request N 256
			0x00, 0x00, 0x01, 'm',
			'd',
		},
		enc: func(d []byte) []byte { return AppendRequestChannel(d, 9, 256, false, true, []byte("m"), []byte("d")) },
		check: func(t *testing.T, f Frame) {
			hdr(t, f, TypeRequestChannel, 9, FlagMetadata|FlagComplete)
			eq(t, "initialN", f.InitialRequestN(), 256)
			eqb(t, "metadata", f.Metadata(), []byte("m"))
			eqb(t, "data", f.Data(), []byte("d"))
		},
	},
	{
		name: "REQUEST_CHANNEL Frame (0x07)/F without metadata",
		wire: []byte{0x00, 0x00, 0x00, 0x0B, 0x1C, 0x80, 0x00, 0x00, 0x00, 0x01, 'z'},
		enc:  func(d []byte) []byte { return AppendRequestChannel(d, 11, 1, true, false, nil, []byte("z")) },
		check: func(t *testing.T, f Frame) {
			hdr(t, f, TypeRequestChannel, 11, FlagFollows)
			eq(t, "initialN", f.InitialRequestN(), 1)
			eqb(t, "data", f.Data(), []byte("z"))
		},
	},
	{
		name: "REQUEST_N Frame (0x08)",
		wire: []byte{0x00, 0x00, 0x00, 0x03, 0x20, 0x00, 0x00, 0x00, 0x00, 0x40},
		enc:  func(d []byte) []byte { return AppendRequestN(d, 3, 64) },
		check: func(t *testing.T, f Frame) {
			hdr(t, f, TypeRequestN, 3, 0)
			eq(t, "n", f.RequestN(), 64)
			eqb(t, "data", f.Data(), nil)
		},
	},
	{
		name: "CANCEL Frame (0x09)",
		wire: []byte{0x00, 0x00, 0x01, 0x01, 0x24, 0x00},
		enc:  func(d []byte) []byte { return AppendCancel(d, 257) },
		check: func(t *testing.T, f Frame) {
			hdr(t, f, TypeCancel, 257, 0)
			eqb(t, "metadata", f.Metadata(), nil)
			eqb(t, "data", f.Data(), nil)
		},
	},
	{
		name: "PAYLOAD Frame (0x0A)/M|C|N",
		wire: []byte{
			0x00, 0x00, 0x00, 0x01,
			0x29, 0x60, // 0x0A<<2 | M ; C|N
			0x00, 0x00, 0x02, 'm', 'd',
			'h', 'i',
		},
		enc: func(d []byte) []byte { return AppendPayload(d, 1, FlagComplete|FlagNext, []byte("md"), []byte("hi")) },
		check: func(t *testing.T, f Frame) {
			hdr(t, f, TypePayload, 1, FlagMetadata|FlagComplete|FlagNext)
			eqb(t, "metadata", f.Metadata(), []byte("md"))
			eqb(t, "data", f.Data(), []byte("hi"))
		},
	},
	{
		name: "PAYLOAD Frame (0x0A)/C only (onComplete)",
		wire: []byte{0x00, 0x00, 0x00, 0x02, 0x28, 0x40},
		enc:  func(d []byte) []byte { return AppendPayload(d, 2, FlagComplete, nil, nil) },
		check: func(t *testing.T, f Frame) {
			hdr(t, f, TypePayload, 2, FlagComplete)
			eqb(t, "metadata", f.Metadata(), nil)
			eqb(t, "data", f.Data(), []byte{})
		},
	},
	{
		name: "PAYLOAD Frame (0x0A)/F|N fragment",
		wire: []byte{0x00, 0x00, 0x00, 0x02, 0x28, 0xA0, 'x'},
		enc:  func(d []byte) []byte { return AppendPayload(d, 2, FlagFollows|FlagNext, nil, []byte("x")) },
		check: func(t *testing.T, f Frame) {
			hdr(t, f, TypePayload, 2, FlagFollows|FlagNext)
			eqb(t, "data", f.Data(), []byte("x"))
		},
	},
	{
		name: "METADATA_PUSH Frame (0x0C)",
		wire: []byte{0x00, 0x00, 0x00, 0x00, 0x31, 0x00, 'm', 'd'},
		enc:  func(d []byte) []byte { return AppendMetadataPush(d, []byte("md")) },
		check: func(t *testing.T, f Frame) {
			hdr(t, f, TypeMetadataPush, 0, FlagMetadata)
			eqb(t, "metadata", f.Metadata(), []byte("md"))
			eqb(t, "data", f.Data(), nil)
		},
	},
	{
		name: "EXT (Extension) Frame (0x3F)/I|M",
		wire: []byte{
			0x00, 0x00, 0x00, 0x01,
			0xFF, 0x00, // 0x3F<<2 | I | M
			0x00, 0x00, 0x00, 0x07, // Extended Type 7
			0x00, 0x00, 0x01, 'm',
			'x',
		},
		enc: func(d []byte) []byte { return AppendExt(d, 1, true, 7, []byte("m"), []byte("x")) },
		check: func(t *testing.T, f Frame) {
			hdr(t, f, TypeExt, 1, FlagIgnore|FlagMetadata)
			eq(t, "ext", f.ExtendedType(), 7)
			eqb(t, "metadata", f.Metadata(), []byte("m"))
			eqb(t, "data", f.Data(), []byte("x"))
		},
	},
	{
		name: "EXT (Extension) Frame (0x3F)/stream 0, no flags",
		wire: []byte{0x00, 0x00, 0x00, 0x00, 0xFC, 0x00, 0x00, 0x00, 0x01, 0x00},
		enc:  func(d []byte) []byte { return AppendExt(d, 0, false, 256, nil, nil) },
		check: func(t *testing.T, f Frame) {
			hdr(t, f, TypeExt, 0, 0)
			eq(t, "ext", f.ExtendedType(), 256)
			eqb(t, "metadata", f.Metadata(), nil)
		},
	},
	{
		name: "RESUME Frame (0x0D)",
		wire: []byte{
			0x00, 0x00, 0x00, 0x00,
			0x34, 0x00, // 0x0D<<2
			0x00, 0x01, 0x00, 0x00, // 1.0
			0x00, 0x02, 't', 'k', // Token Length 2, token
			0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, // Last Received Server Position 4096
			0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, // First Available Client Position 128
		},
		enc: func(d []byte) []byte { return AppendResume(d, 1, 0, []byte("tk"), 4096, 128) },
		check: func(t *testing.T, f Frame) {
			hdr(t, f, TypeResume, 0, 0)
			ma, mi := f.ResumeVersion()
			eq(t, "version", [2]uint16{ma, mi}, [2]uint16{1, 0})
			eqb(t, "token", f.ResumeToken(), []byte("tk"))
			eq(t, "server", f.ResumeLastReceivedServerPosition(), 4096)
			eq(t, "client", f.ResumeFirstAvailableClientPosition(), 128)
		},
	},
	{
		name: "RESUME_OK Frame (0x0E)",
		wire: []byte{0x00, 0x00, 0x00, 0x00, 0x38, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00},
		enc:  func(d []byte) []byte { return AppendResumeOK(d, 1<<32) },
		check: func(t *testing.T, f Frame) {
			hdr(t, f, TypeResumeOK, 0, 0)
			eq(t, "position", f.ResumeOKPosition(), 1<<32)
		},
	},
	// Parse-only vectors: reserved bits set, undefined flags, ignored trailing bytes.
	{
		name: "Frame Header Format/reserved stream ID bit is ignored",
		wire: []byte{0x80, 0x00, 0x00, 0x05, 0x24, 0x00},
		check: func(t *testing.T, f Frame) {
			hdr(t, f, TypeCancel, 5, 0)
		},
	},
	{
		name: "REQUEST_N Frame (0x08)/reserved bit of N is ignored",
		wire: []byte{0x00, 0x00, 0x00, 0x03, 0x20, 0x00, 0x80, 0x00, 0x00, 0x07},
		check: func(t *testing.T, f Frame) {
			eq(t, "n", f.RequestN(), 7)
		},
	},
	{
		name: "KEEPALIVE Frame (0x03)/reserved bit of position is ignored",
		wire: []byte{0x00, 0x00, 0x00, 0x00, 0x0C, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09},
		check: func(t *testing.T, f Frame) {
			eq(t, "position", f.KeepalivePosition(), 9)
		},
	},
	{
		name: "SETUP Frame (0x01)/reserved bits of keepalive and lifetime are ignored",
		wire: []byte{0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x01, 0x00, 0x00,
			0x80, 0x00, 0x00, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00},
		check: func(t *testing.T, f Frame) {
			eq(t, "keepalive", f.SetupKeepalive(), 1)
			eq(t, "lifetime", f.SetupLifetime(), MaxRequestN)
		},
	},
	{
		name: "Handling Ignore Flag/I on a known type is accepted",
		wire: []byte{0x00, 0x00, 0x00, 0x01, 0x2A, 0x20, 'x'},
		check: func(t *testing.T, f Frame) {
			hdr(t, f, TypePayload, 1, FlagIgnore|FlagNext)
			eqb(t, "data", f.Data(), []byte("x"))
		},
	},
	{
		name: "CANCEL Frame (0x09)/M flag not defined for CANCEL is ignored",
		wire: []byte{0x00, 0x00, 0x00, 0x01, 0x25, 0x00, 0x00, 0x00},
		check: func(t *testing.T, f Frame) {
			eqb(t, "metadata", f.Metadata(), nil)
		},
	},
	{
		name: "ERROR Frame (0x0B)/application code range",
		wire: []byte{0x00, 0x00, 0x00, 0x01, 0x2C, 0x00, 0x00, 0x00, 0x03, 0x01},
		check: func(t *testing.T, f Frame) {
			eq(t, "code", f.ErrorCode().String(), "APPLICATION_CODE_0x301")
		},
	},
}

func TestGoldenEncode(t *testing.T) {
	for _, g := range goldens {
		if g.enc == nil {
			continue
		}
		t.Run(g.name, func(t *testing.T) {
			if got := g.enc(nil); !bytes.Equal(got, g.wire) {
				t.Fatalf("encode:\n got % X\nwant % X", got, g.wire)
			}
			// Appending after existing bytes leaves them intact.
			pre := []byte{0xAA, 0xBB}
			got := g.enc(pre)
			if !bytes.Equal(got[:2], pre) || !bytes.Equal(got[2:], g.wire) {
				t.Fatalf("append after prefix: % X", got)
			}
		})
	}
}

func TestGoldenParse(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.name, func(t *testing.T) {
			f, err := Parse(g.wire)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if &f[0] != &g.wire[0] || len(f) != len(g.wire) {
				t.Fatal("Parse did not return a view over its input")
			}
			g.check(t, f)
			if s := f.String(); s == "" {
				t.Error("empty String()")
			}
		})
	}
}

type badVector struct {
	name   string
	wire   []byte
	want   error // ErrMalformed or ErrUnknownType
	stream bool  // also matches ErrStreamID
	typ    Type
	id     uint32
	offset int
	ignore bool // ParseError.Ignorable()
}

var badVectors = []badVector{
	{name: "Frame Header Format/empty", wire: []byte{}, want: ErrMalformed},
	{name: "Frame Header Format/truncated header", wire: []byte{0x00, 0x00, 0x00, 0x01, 0x24}, want: ErrMalformed, offset: 5},
	{name: "Frame Types/RESERVED 0x00", wire: []byte{0x00, 0x00, 0x00, 0x01, 0x00, 0x00}, want: ErrUnknownType, typ: 0, id: 1, offset: 4},
	{name: "Handling Ignore Flag/unknown type 0x20 without I", wire: []byte{0x00, 0x00, 0x00, 0x01, 0x80, 0x00, 1, 2},
		want: ErrUnknownType, typ: 0x20, id: 1, offset: 4},
	{name: "Handling Ignore Flag/unknown type 0x20 with I", wire: []byte{0x00, 0x00, 0x00, 0x01, 0x82, 0x00, 1, 2},
		want: ErrUnknownType, typ: 0x20, id: 1, offset: 4, ignore: true},
	{name: "SETUP Frame (0x01)/on stream 1", wire: []byte{0x00, 0x00, 0x00, 0x01, 0x04, 0x00, 0x00, 0x01, 0x00, 0x00,
		0x00, 0x00, 0x01, 0xF4, 0x00, 0x01, 0x5F, 0x90, 0x00, 0x00}, want: ErrMalformed, stream: true, typ: TypeSetup, id: 1},
	{name: "SETUP Frame (0x01)/truncated fixed fields", wire: []byte{0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x01, 0x00, 0x00,
		0x00, 0x00, 0x01, 0xF4}, want: ErrMalformed, typ: TypeSetup, offset: 14},
	{name: "SETUP Frame (0x01)/token overflows frame", wire: []byte{0x00, 0x00, 0x00, 0x00, 0x04, 0x80, 0x00, 0x01, 0x00, 0x00,
		0x00, 0x00, 0x01, 0xF4, 0x00, 0x01, 0x5F, 0x90, 0x00, 0x09, 't', 'k', 0x00, 0x00}, want: ErrMalformed, typ: TypeSetup, offset: 18},
	{name: "SETUP Frame (0x01)/MIME type overflows frame", wire: []byte{0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x01, 0x00, 0x00,
		0x00, 0x00, 0x01, 0xF4, 0x00, 0x01, 0x5F, 0x90, 0x00, 0x05, 'a'}, want: ErrMalformed, typ: TypeSetup, offset: 19},
	{name: "SETUP Frame (0x01)/data MIME length missing", wire: []byte{0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x01, 0x00, 0x00,
		0x00, 0x00, 0x01, 0xF4, 0x00, 0x01, 0x5F, 0x90, 0x00}, want: ErrMalformed, typ: TypeSetup, offset: 19},
	{name: "SETUP Frame (0x01)/metadata length overflows frame", wire: []byte{0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x01, 0x00, 0x00,
		0x00, 0x00, 0x01, 0xF4, 0x00, 0x01, 0x5F, 0x90, 0x00, 0x00, 0x00, 0x00, 0x03, 'm', 'd'}, want: ErrMalformed, typ: TypeSetup, offset: 20},
	{name: "LEASE Frame (0x02)/truncated", wire: []byte{0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x03, 0xE8, 0x00},
		want: ErrMalformed, typ: TypeLease, offset: 11},
	{name: "LEASE Frame (0x02)/on stream 1", wire: []byte{0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0, 0, 0, 1, 0, 0, 0, 1},
		want: ErrMalformed, stream: true, typ: TypeLease, id: 1},
	{name: "KEEPALIVE Frame (0x03)/truncated position", wire: []byte{0x00, 0x00, 0x00, 0x00, 0x0C, 0x80, 0, 0, 0, 0, 0, 0, 1},
		want: ErrMalformed, typ: TypeKeepalive, offset: 13},
	{name: "KEEPALIVE Frame (0x03)/on stream 3", wire: []byte{0x00, 0x00, 0x00, 0x03, 0x0C, 0x80, 0, 0, 0, 0, 0, 0, 0, 1},
		want: ErrMalformed, stream: true, typ: TypeKeepalive, id: 3},
	{name: "REQUEST_RESPONSE Frame (0x04)/on stream 0", wire: []byte{0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 'h', 'i'},
		want: ErrMalformed, stream: true, typ: TypeRequestResponse},
	{name: "REQUEST_RESPONSE Frame (0x04)/metadata length overflowing", wire: []byte{0x00, 0x00, 0x00, 0x01, 0x11, 0x00, 0x00, 0x00, 0x03, 'm', 'd'},
		want: ErrMalformed, typ: TypeRequestResponse, id: 1, offset: 6},
	{name: "REQUEST_FNF (Fire-n-Forget) Frame (0x05)/metadata length truncated", wire: []byte{0x00, 0x00, 0x00, 0x01, 0x15, 0x00, 0x00, 0x00},
		want: ErrMalformed, typ: TypeRequestFNF, id: 1, offset: 8},
	{name: "REQUEST_STREAM Frame (0x06)/initial N 0", wire: []byte{0x00, 0x00, 0x00, 0x01, 0x18, 0x00, 0x00, 0x00, 0x00, 0x00},
		want: ErrMalformed, typ: TypeRequestStream, id: 1, offset: 6},
	{name: "REQUEST_STREAM Frame (0x06)/initial N 0 with reserved bit set", wire: []byte{0x00, 0x00, 0x00, 0x01, 0x18, 0x00, 0x80, 0x00, 0x00, 0x00},
		want: ErrMalformed, typ: TypeRequestStream, id: 1, offset: 6},
	{name: "REQUEST_STREAM Frame (0x06)/initial N truncated", wire: []byte{0x00, 0x00, 0x00, 0x01, 0x18, 0x00, 0x00, 0x00, 0x01},
		want: ErrMalformed, typ: TypeRequestStream, id: 1, offset: 9},
	{name: "REQUEST_CHANNEL Frame (0x07)/metadata length overflowing", wire: []byte{0x00, 0x00, 0x00, 0x01, 0x1D, 0x00, 0x00, 0x00, 0x00, 0x01, 0xFF, 0xFF, 0xFF, 'm'},
		want: ErrMalformed, typ: TypeRequestChannel, id: 1, offset: 10},
	{name: "REQUEST_N Frame (0x08)/N is 0", wire: []byte{0x00, 0x00, 0x00, 0x01, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00},
		want: ErrMalformed, typ: TypeRequestN, id: 1, offset: 6},
	{name: "REQUEST_N Frame (0x08)/truncated", wire: []byte{0x00, 0x00, 0x00, 0x01, 0x20, 0x00, 0x00, 0x00, 0x01},
		want: ErrMalformed, typ: TypeRequestN, id: 1, offset: 9},
	{name: "REQUEST_N Frame (0x08)/on stream 0", wire: []byte{0x00, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x01},
		want: ErrMalformed, stream: true, typ: TypeRequestN},
	{name: "CANCEL Frame (0x09)/on stream 0", wire: []byte{0x00, 0x00, 0x00, 0x00, 0x24, 0x00},
		want: ErrMalformed, stream: true, typ: TypeCancel},
	{name: "CANCEL Frame (0x09)/on stream 0 via reserved bit only", wire: []byte{0x80, 0x00, 0x00, 0x00, 0x24, 0x00},
		want: ErrMalformed, stream: true, typ: TypeCancel},
	{name: "PAYLOAD Frame (0x0A)/on stream 0", wire: []byte{0x00, 0x00, 0x00, 0x00, 0x28, 0x20, 'x'},
		want: ErrMalformed, stream: true, typ: TypePayload},
	{name: "PAYLOAD Frame (0x0A)/metadata length overflowing", wire: []byte{0x00, 0x00, 0x00, 0x01, 0x29, 0x20, 0x00, 0x00, 0x10, 'm', 'd'},
		want: ErrMalformed, typ: TypePayload, id: 1, offset: 6},
	{name: "PAYLOAD Frame (0x0A)/metadata length missing", wire: []byte{0x00, 0x00, 0x00, 0x01, 0x29, 0x20},
		want: ErrMalformed, typ: TypePayload, id: 1, offset: 6},
	{name: "ERROR Frame (0x0B)/code truncated", wire: []byte{0x00, 0x00, 0x00, 0x01, 0x2C, 0x00, 0x00, 0x00, 0x02},
		want: ErrMalformed, typ: TypeError, id: 1, offset: 9},
	{name: "METADATA_PUSH Frame (0x0C)/without M", wire: []byte{0x00, 0x00, 0x00, 0x00, 0x30, 0x00, 'm'},
		want: ErrMalformed, typ: TypeMetadataPush, offset: 4},
	{name: "METADATA_PUSH Frame (0x0C)/on stream 1", wire: []byte{0x00, 0x00, 0x00, 0x01, 0x31, 0x00, 'm'},
		want: ErrMalformed, stream: true, typ: TypeMetadataPush, id: 1},
	{name: "EXT (Extension) Frame (0x3F)/extended type truncated", wire: []byte{0x00, 0x00, 0x00, 0x01, 0xFE, 0x00, 0x00},
		want: ErrMalformed, typ: TypeExt, id: 1, offset: 7},
	{name: "EXT (Extension) Frame (0x3F)/metadata length overflowing", wire: []byte{0x00, 0x00, 0x00, 0x01, 0xFD, 0x00, 0, 0, 0, 1, 0, 0, 2, 'm'},
		want: ErrMalformed, typ: TypeExt, id: 1, offset: 10},
	{name: "RESUME Frame (0x0D)/positions truncated", wire: []byte{0x00, 0x00, 0x00, 0x00, 0x34, 0x00, 0x00, 0x01, 0x00, 0x00,
		0x00, 0x02, 't', 'k', 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}, want: ErrMalformed, typ: TypeResume, offset: 10},
	{name: "RESUME Frame (0x0D)/token length missing", wire: []byte{0x00, 0x00, 0x00, 0x00, 0x34, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00},
		want: ErrMalformed, typ: TypeResume, offset: 11},
	{name: "RESUME Frame (0x0D)/on stream 1", wire: []byte{0x00, 0x00, 0x00, 0x01, 0x34, 0x00},
		want: ErrMalformed, stream: true, typ: TypeResume, id: 1},
	{name: "RESUME_OK Frame (0x0E)/truncated", wire: []byte{0x00, 0x00, 0x00, 0x00, 0x38, 0x00, 0, 0, 0, 0, 0, 0, 0},
		want: ErrMalformed, typ: TypeResumeOK, offset: 13},
	{name: "RESUME_OK Frame (0x0E)/on stream 2", wire: []byte{0x00, 0x00, 0x00, 0x02, 0x38, 0x00, 0, 0, 0, 0, 0, 0, 0, 0},
		want: ErrMalformed, stream: true, typ: TypeResumeOK, id: 2},
}

func TestParseBad(t *testing.T) {
	for _, v := range badVectors {
		t.Run(v.name, func(t *testing.T) {
			f, err := Parse(v.wire)
			if err == nil {
				t.Fatalf("Parse accepted bad frame: %v", f)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not *ParseError", err)
			}
			if !errors.Is(err, v.want) {
				t.Fatalf("errors.Is(%v, %v) = false", err, v.want)
			}
			other := ErrUnknownType
			if v.want == ErrUnknownType {
				other = ErrMalformed
			}
			if errors.Is(err, other) {
				t.Errorf("error also matches %v", other)
			}
			eq(t, "errors.Is(ErrStreamID)", errors.Is(err, ErrStreamID), v.stream)
			eq(t, "Type", pe.Type, v.typ)
			eq(t, "StreamID", pe.StreamID, v.id)
			eq(t, "Offset", pe.Offset, v.offset)
			eq(t, "Ignorable", pe.Ignorable(), v.ignore)
			if pe.Reason == "" || err.Error() == "" {
				t.Error("empty reason")
			}
			if v.want == ErrUnknownType {
				if f == nil || f.Type() != v.typ {
					t.Errorf("unknown type: Frame not returned for header inspection")
				}
			} else if f != nil {
				t.Error("malformed frame returned non-nil Frame")
			}
			_ = Frame(v.wire).String() // must not panic
		})
	}
}

func TestParseTooLong(t *testing.T) {
	b := make([]byte, MaxFrameLen+1)
	b[3] = 1
	b[4] = byte(TypePayload) << 2
	_, err := Parse(b)
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v", err)
	}
	f, err := Parse(b[:MaxFrameLen])
	if err != nil || len(f.Data()) != MaxFrameLen-HeaderLen {
		t.Fatalf("max-size frame: %v", err)
	}
}

// Every truncation of every golden vector must either parse (when the shorter frame is still valid) or fail
// with a *ParseError; never panic.
func TestParseTruncations(t *testing.T) {
	for _, g := range goldens {
		for i := 0; i < len(g.wire); i++ {
			f, err := Parse(g.wire[:i])
			if err != nil {
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Fatalf("%s[:%d]: %T", g.name, i, err)
				}
				continue
			}
			touchAll(f)
		}
	}
}
