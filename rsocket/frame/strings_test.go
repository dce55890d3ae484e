package frame

import (
	"strings"
	"testing"
)

func TestTypeString(t *testing.T) {
	want := map[Type]string{
		TypeSetup: "SETUP", TypeLease: "LEASE", TypeKeepalive: "KEEPALIVE", TypeRequestResponse: "REQUEST_RESPONSE",
		TypeRequestFNF: "REQUEST_FNF", TypeRequestStream: "REQUEST_STREAM", TypeRequestChannel: "REQUEST_CHANNEL",
		TypeRequestN: "REQUEST_N", TypeCancel: "CANCEL", TypePayload: "PAYLOAD", TypeError: "ERROR",
		TypeMetadataPush: "METADATA_PUSH", TypeResume: "RESUME", TypeResumeOK: "RESUME_OK", TypeExt: "EXT",
		0x15: "UNKNOWN_0x15", 0x00: "UNKNOWN_0x00", 0x0F: "UNKNOWN_0x0F", 0x3E: "UNKNOWN_0x3E", 0xFF: "UNKNOWN_0xFF",
	}
	for ty, s := range want {
		eq(t, "Type("+s+")", ty.String(), s)
	}
	for i := 0; i < 256; i++ {
		ty := Type(i)
		s := ty.String()
		if ty.Known() == strings.HasPrefix(s, "UNKNOWN_0x") {
			t.Errorf("Type(%d) = %q, Known=%v", i, s, ty.Known())
		}
	}
}

func TestTypePredicates(t *testing.T) {
	for i := 0; i < 64; i++ {
		ty := Type(i)
		zero := ty == TypeSetup || ty == TypeLease || ty == TypeKeepalive || ty == TypeMetadataPush || ty == TypeResume || ty == TypeResumeOK
		req := ty >= TypeRequestResponse && ty <= TypeRequestChannel
		stream := req || ty == TypeRequestN || ty == TypeCancel || ty == TypePayload
		eq(t, ty.String()+".IsStreamZeroOnly", ty.IsStreamZeroOnly(), zero)
		eq(t, ty.String()+".IsRequest", ty.IsRequest(), req)
		eq(t, ty.String()+".IsStreamType", ty.IsStreamType(), stream)
		eq(t, ty.String()+".HasInitialN", ty.HasInitialN(), ty == TypeRequestStream || ty == TypeRequestChannel)
		eq(t, ty.String()+".CanFragment", ty.CanFragment(), req || ty == TypePayload)
	}
}

func TestFlagsString(t *testing.T) {
	for fl, s := range map[Flags]string{
		0: "0",
		FlagMetadata | FlagFollows | FlagComplete: "M|F|C",
		FlagIgnore: "I",
		FlagNext:   "N",
		FlagIgnore | FlagMetadata | FlagFollows | FlagComplete | FlagNext: "I|M|F|C|N",
		0x3FF:  "I|M|F|C|N|0x1F",
		0x01:   "0x01",
		0xFFFF: "I|M|F|C|N|0xFC1F",
	} {
		eq(t, "Flags", fl.String(), s)
	}
}

func TestErrorCodeString(t *testing.T) {
	for c, s := range map[ErrorCode]string{
		CodeInvalidSetup: "INVALID_SETUP", CodeUnsupportedSetup: "UNSUPPORTED_SETUP", CodeRejectedSetup: "REJECTED_SETUP",
		CodeRejectedResume: "REJECTED_RESUME", CodeConnectionError: "CONNECTION_ERROR", CodeConnectionClose: "CONNECTION_CLOSE",
		CodeApplicationError: "APPLICATION_ERROR", CodeRejected: "REJECTED", CodeCanceled: "CANCELED", CodeInvalid: "INVALID",
		0x301: "APPLICATION_CODE_0x301", 0xFFFFFFFE: "APPLICATION_CODE_0xFFFFFFFE", 0xABCDEF: "APPLICATION_CODE_0xABCDEF",
		0: "UNKNOWN_0x0", 0x005: "UNKNOWN_0x5", 0x300: "UNKNOWN_0x300", 0xFFFFFFFF: "UNKNOWN_0xFFFFFFFF",
	} {
		eq(t, "ErrorCode", c.String(), s)
	}
}

func TestErrorCodePredicates(t *testing.T) {
	for _, c := range []ErrorCode{CodeInvalidSetup, CodeUnsupportedSetup, CodeRejectedSetup, CodeRejectedResume, CodeConnectionError, CodeConnectionClose} {
		if !c.IsConnectionLevel() || c.IsApplication() {
			t.Errorf("%v: connection level expected", c)
		}
	}
	for _, c := range []ErrorCode{CodeApplicationError, CodeRejected, CodeCanceled, CodeInvalid, 0x301, 0xFFFFFFFE, 0, 0xFFFFFFFF} {
		if c.IsConnectionLevel() {
			t.Errorf("%v: stream level expected", c)
		}
	}
	eq(t, "setup", CodeRejectedResume.IsSetupError(), true)
	eq(t, "setup", CodeConnectionError.IsSetupError(), false)
}

func TestFrameString(t *testing.T) {
	for _, c := range []struct {
		b    []byte
		want string
	}{
		{AppendRequestStream(nil, 3, 5, true, make([]byte, 12), []byte("abc")), "REQUEST_STREAM stream=3 flags=M|F n=5 md=12B data=3B"},
		{AppendPayload(nil, 1, FlagNext|FlagComplete, nil, []byte("x")), "PAYLOAD stream=1 flags=C|N data=1B"},
		{AppendCancel(nil, 9), "CANCEL stream=9 flags=0"},
		{AppendRequestN(nil, 9, 100), "REQUEST_N stream=9 flags=0 n=100"},
		{AppendError(nil, 0, CodeConnectionClose, "bye"), `ERROR stream=0 flags=0 code=CONNECTION_CLOSE msg="bye"`},
		{AppendKeepalive(nil, true, 5, nil), "KEEPALIVE stream=0 flags=R position=5 data=0B"},
		{AppendLease(nil, 100, 2, nil), "LEASE stream=0 flags=0 ttl=100ms requests=2"},
		{AppendSetup(nil, &Setup{Major: 1, Keepalive: 1, Lifetime: 2, Lease: true, MetadataMIME: "a", DataMIME: "b"}, nil, nil),
			`SETUP stream=0 flags=L version=1.0 keepalive=1ms lifetime=2ms mdmime="a" datamime="b" data=0B`},
		{AppendMetadataPush(nil, []byte("mm")), "METADATA_PUSH stream=0 flags=M md=2B"},
		{AppendResumeOK(nil, 4), "RESUME_OK stream=0 flags=0 position=4"},
		{[]byte{0, 0, 0, 1, 0x82, 0x00}, "UNKNOWN_0x20 stream=1 flags=I len=6 invalid: unknown frame type"},
		{[]byte{1, 2}, "INVALID(2B)"},
		{nil, "INVALID(0B)"},
	} {
		eq(t, "String", Frame(c.b).String(), c.want)
	}
}
