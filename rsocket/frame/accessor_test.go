package frame

import "testing"

// TestAccessorsSafeOnEveryType calls every accessor of Frame on a parsed frame of every type (minimal
// frames: shortest body, no metadata, no data, since those are where another type's offsets overrun). An
// accessor of a field the type does not have must return its zero value and never panic.
func TestAccessorsSafeOnEveryType(t *testing.T) {
	frames := map[string][]byte{
		"SETUP":            AppendSetup(nil, &Setup{Major: 1, Keepalive: 1, Lifetime: 1}, nil, nil),
		"SETUP+R":          AppendSetup(nil, &Setup{Major: 1, Keepalive: 1, Lifetime: 1, Token: []byte("t")}, nil, nil),
		"LEASE":            AppendLease(nil, 1, 1, nil),
		"KEEPALIVE":        AppendKeepalive(nil, true, 7, nil),
		"REQUEST_RESPONSE": AppendRequestResponse(nil, 1, false, nil, nil),
		"REQUEST_FNF":      AppendRequestFNF(nil, 1, false, nil, nil),
		"REQUEST_STREAM":   AppendRequestStream(nil, 1, 1, false, nil, nil),
		"REQUEST_CHANNEL":  AppendRequestChannel(nil, 1, 1, false, false, nil, nil),
		"REQUEST_N":        AppendRequestN(nil, 1, 1),
		"CANCEL":           AppendCancel(nil, 1),
		"PAYLOAD":          AppendPayload(nil, 1, FlagNext, nil, nil),
		"PAYLOAD+M":        AppendPayload(nil, 1, FlagNext, []byte{}, nil),
		"ERROR":            AppendError(nil, 1, CodeApplicationError, ""),
		"METADATA_PUSH":    AppendMetadataPush(nil, nil),
		"RESUME":           AppendResume(nil, 1, 0, nil, 0, 0),
		"RESUME_OK":        AppendResumeOK(nil, 0),
		"EXT":              AppendExt(nil, 1, true, 1, nil, nil),
		"unknown+I":        {0, 0, 0, 1, 0x30<<2 | 0x02, 0},
	}
	for name, b := range frames {
		f, err := Parse(b)
		if f == nil {
			t.Fatalf("%s: Parse: %v", name, err)
		}
		typ := f.Type()
		call := func(acc string, fn func() any) {
			t.Helper()
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s.%s panicked: %v", name, acc, r)
				}
			}()
			fn()
		}
		zeroUnless := func(acc string, own Type, v any) {
			t.Helper()
			if typ == own {
				return
			}
			switch x := v.(type) {
			case uint32:
				if x != 0 {
					t.Errorf("%s.%s = %d on a %v, want 0", name, acc, x, typ)
				}
			case uint64:
				if x != 0 {
					t.Errorf("%s.%s = %d on a %v, want 0", name, acc, x, typ)
				}
			case uint16:
				if x != 0 {
					t.Errorf("%s.%s = %d on a %v, want 0", name, acc, x, typ)
				}
			case ErrorCode:
				if x != 0 {
					t.Errorf("%s.%s = %v on a %v, want 0", name, acc, x, typ)
				}
			case []byte:
				if x != nil {
					t.Errorf("%s.%s = %q on a %v, want nil", name, acc, x, typ)
				}
			}
		}
		call("StreamID", func() any { return f.StreamID() })
		call("Flags", func() any { return f.Flags() })
		call("Has", func() any { return f.Has(FlagMetadata) })
		call("Metadata", func() any { return f.Metadata() })
		call("Data", func() any { return f.Data() })
		call("String", func() any { return f.String() })
		call("InitialRequestN", func() any {
			v := f.InitialRequestN()
			zeroUnless("InitialRequestN", typ*Type(b2i(typ.HasInitialN())), v)
			return v
		})
		call("RequestN", func() any { v := f.RequestN(); zeroUnless("RequestN", TypeRequestN, v); return v })
		call("ErrorCode", func() any { v := f.ErrorCode(); zeroUnless("ErrorCode", TypeError, v); return v })
		call("ErrorMessage", func() any { v := f.ErrorMessage(); zeroUnless("ErrorMessage", TypeError, v); return v })
		call("SetupVersion", func() any { a, c := f.SetupVersion(); zeroUnless("SetupVersion", TypeSetup, a|c); return a })
		call("SetupKeepalive", func() any { v := f.SetupKeepalive(); zeroUnless("SetupKeepalive", TypeSetup, v); return v })
		call("SetupLifetime", func() any { v := f.SetupLifetime(); zeroUnless("SetupLifetime", TypeSetup, v); return v })
		call("SetupToken", func() any { v := f.SetupToken(); zeroUnless("SetupToken", TypeSetup, v); return v })
		call("SetupMetadataMIME", func() any { v := f.SetupMetadataMIME(); zeroUnless("SetupMetadataMIME", TypeSetup, v); return v })
		call("SetupDataMIME", func() any { v := f.SetupDataMIME(); zeroUnless("SetupDataMIME", TypeSetup, v); return v })
		call("LeaseTTL", func() any { v := f.LeaseTTL(); zeroUnless("LeaseTTL", TypeLease, v); return v })
		call("LeaseRequests", func() any { v := f.LeaseRequests(); zeroUnless("LeaseRequests", TypeLease, v); return v })
		call("KeepalivePosition", func() any { v := f.KeepalivePosition(); zeroUnless("KeepalivePosition", TypeKeepalive, v); return v })
		call("ResumeVersion", func() any { a, c := f.ResumeVersion(); zeroUnless("ResumeVersion", TypeResume, a|c); return a })
		call("ResumeToken", func() any { v := f.ResumeToken(); zeroUnless("ResumeToken", TypeResume, v); return v })
		call("ResumeLastReceivedServerPosition", func() any { return f.ResumeLastReceivedServerPosition() })
		call("ResumeFirstAvailableClientPosition", func() any { return f.ResumeFirstAvailableClientPosition() })
		call("ResumeOKPosition", func() any { v := f.ResumeOKPosition(); zeroUnless("ResumeOKPosition", TypeResumeOK, v); return v })
		call("ExtendedType", func() any { v := f.ExtendedType(); zeroUnless("ExtendedType", TypeExt, v); return v })
	}
	// The examples, spelled out.
	if f, _ := Parse(AppendCancel(nil, 1)); f.ErrorCode() != 0 {
		t.Errorf("CANCEL.ErrorCode() = %v, want 0", f.ErrorCode())
	}
	if f, _ := Parse(AppendPayload(nil, 1, FlagNext, nil, nil)); f.LeaseTTL() != 0 {
		t.Errorf("PAYLOAD.LeaseTTL() = %d, want 0", f.LeaseTTL())
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
