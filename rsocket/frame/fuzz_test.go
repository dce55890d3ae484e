package frame

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// touchAll calls every accessor that is meaningful for the frame's type (they must not panic on parsed
// frames).
func touchAll(f Frame) {
	_ = f.StreamID()
	_ = f.Flags()
	_ = f.Has(FlagMetadata)
	_ = f.Metadata()
	_ = f.Data()
	_ = f.InitialRequestN()
	_ = f.RequestN()
	_ = f.String()
	switch f.Type() {
	case TypeSetup:
		f.SetupVersion()
		f.SetupKeepalive()
		f.SetupLifetime()
		f.SetupToken()
		f.SetupMetadataMIME()
		f.SetupDataMIME()
	case TypeLease:
		f.LeaseTTL()
		f.LeaseRequests()
	case TypeKeepalive:
		f.KeepalivePosition()
	case TypeError:
		f.ErrorCode()
		f.ErrorMessage()
	case TypeResume:
		f.ResumeVersion()
		f.ResumeToken()
		f.ResumeLastReceivedServerPosition()
		f.ResumeFirstAvailableClientPosition()
	case TypeResumeOK:
		f.ResumeOKPosition()
	case TypeExt:
		f.ExtendedType()
	}
}

// reencode rebuilds a parsed frame from its accessors with the public encoders.
func reencode(f Frame) []byte {
	id := f.StreamID()
	switch f.Type() {
	case TypeSetup:
		ma, mi := f.SetupVersion()
		return AppendSetup(nil, &Setup{Major: ma, Minor: mi, Keepalive: f.SetupKeepalive(), Lifetime: f.SetupLifetime(),
			Token: f.SetupToken(), Lease: f.Has(FlagLease), MetadataMIME: string(f.SetupMetadataMIME()),
			DataMIME: string(f.SetupDataMIME())}, f.Metadata(), f.Data())
	case TypeLease:
		return AppendLease(nil, f.LeaseTTL(), f.LeaseRequests(), f.Metadata())
	case TypeKeepalive:
		return AppendKeepalive(nil, f.Has(FlagRespond), f.KeepalivePosition(), f.Data())
	case TypeRequestResponse:
		return AppendRequestResponse(nil, id, f.Has(FlagFollows), f.Metadata(), f.Data())
	case TypeRequestFNF:
		return AppendRequestFNF(nil, id, f.Has(FlagFollows), f.Metadata(), f.Data())
	case TypeRequestStream:
		return AppendRequestStream(nil, id, f.InitialRequestN(), f.Has(FlagFollows), f.Metadata(), f.Data())
	case TypeRequestChannel:
		return AppendRequestChannel(nil, id, f.InitialRequestN(), f.Has(FlagFollows), f.Has(FlagComplete), f.Metadata(), f.Data())
	case TypeRequestN:
		return AppendRequestN(nil, id, f.RequestN())
	case TypeCancel:
		return AppendCancel(nil, id)
	case TypePayload:
		return AppendPayload(nil, id, f.Flags(), f.Metadata(), f.Data())
	case TypeError:
		return AppendError(nil, id, f.ErrorCode(), string(f.ErrorMessage()))
	case TypeMetadataPush:
		return AppendMetadataPush(nil, f.Metadata())
	case TypeResume:
		ma, mi := f.ResumeVersion()
		return AppendResume(nil, ma, mi, f.ResumeToken(), f.ResumeLastReceivedServerPosition(), f.ResumeFirstAvailableClientPosition())
	case TypeResumeOK:
		return AppendResumeOK(nil, f.ResumeOKPosition())
	case TypeExt:
		return AppendExt(nil, id, f.Has(FlagIgnore), f.ExtendedType(), f.Metadata(), f.Data())
	}
	panic("reencode: unexpected type " + f.Type().String())
}

// definedFlags are the flags each type defines (the encoders write only these).
var definedFlags = map[Type]Flags{
	TypeSetup:           FlagMetadata | FlagResume | FlagLease,
	TypeLease:           FlagMetadata,
	TypeKeepalive:       FlagRespond,
	TypeRequestResponse: FlagMetadata | FlagFollows,
	TypeRequestFNF:      FlagMetadata | FlagFollows,
	TypeRequestStream:   FlagMetadata | FlagFollows,
	TypeRequestChannel:  FlagMetadata | FlagFollows | FlagComplete,
	TypePayload:         FlagMetadata | FlagFollows | FlagComplete | FlagNext,
	TypeMetadataPush:    FlagMetadata,
	TypeExt:             FlagIgnore | FlagMetadata,
}

// canonical returns the canonical encoding of a valid frame: reserved bits cleared, flags not defined for
// the type cleared, trailing bytes that Parse ignores removed. reencode(Parse(b)) must equal canonical(b).
func canonical(f Frame) []byte {
	b := append([]byte(nil), f...)
	b[0] &= 0x7F
	t := f.Type()
	fl := f.Flags() & definedFlags[t]
	binary.BigEndian.PutUint16(b[4:], uint16(t)<<10|uint16(fl))
	clr := func(offs ...int) {
		for _, o := range offs {
			b[o] &= 0x7F
		}
	}
	switch t {
	case TypeSetup:
		clr(10, 14)
	case TypeLease:
		clr(6, 10)
		if fl&FlagMetadata == 0 {
			b = b[:leaseLen]
		}
	case TypeKeepalive, TypeRequestStream, TypeRequestChannel, TypeExt:
		clr(6)
	case TypeRequestN:
		clr(6)
		b = b[:requestNLen]
	case TypeCancel:
		b = b[:HeaderLen]
	case TypeResume:
		p := resumeFixedLen + int(binary.BigEndian.Uint16(b[10:]))
		clr(p, p+8)
		b = b[:p+16]
	case TypeResumeOK:
		clr(6)
		b = b[:resumeOKLen]
	}
	return b
}

func addSeeds(f *testing.F) {
	for _, g := range goldens {
		f.Add(g.wire)
	}
	for _, v := range badVectors {
		f.Add(v.wire)
	}
}

func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := Parse(b)
		_ = Frame(b).String() // never panics, valid or not
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not *ParseError", err)
			}
			if errors.Is(err, ErrMalformed) == errors.Is(err, ErrUnknownType) {
				t.Fatalf("error must match exactly one of ErrMalformed/ErrUnknownType: %v", err)
			}
			if errors.Is(err, ErrUnknownType) {
				if fr == nil || fr.Type().Known() {
					t.Fatalf("unknown type error for %v", fr)
				}
			} else if fr != nil {
				t.Fatal("non-nil Frame with malformed error")
			}
			return
		}
		touchAll(fr)
		// Invariants.
		if md := fr.Metadata(); (md != nil) != (fr.Has(FlagMetadata) && definedFlags[fr.Type()]&FlagMetadata != 0) {
			t.Fatalf("metadata nil-ness does not follow M: %v", fr)
		}
		if fr.Type().IsStreamZeroOnly() && fr.StreamID() != 0 || fr.Type().IsStreamType() && fr.StreamID() == 0 {
			t.Fatalf("stream rule violated: %v", fr)
		}
		if fr.Type() == TypeRequestN && fr.RequestN() == 0 || fr.Type().HasInitialN() && fr.InitialRequestN() == 0 {
			t.Fatalf("N == 0 accepted: %v", fr)
		}
		// Re-encode from the accessors: must equal the canonical form of the input.
		re := reencode(fr)
		if want := canonical(fr); !bytes.Equal(re, want) {
			t.Fatalf("re-encode mismatch for %v\n  in % X\n re % X\nwant % X", fr, b, re, want)
		}
		fr2, err := Parse(re)
		if err != nil {
			t.Fatalf("re-encoded frame does not parse: %v", err)
		}
		if fr2.String() != Frame(canonical(fr)).String() {
			t.Fatalf("String differs after re-encode")
		}
		// Gather path: AppendPrefix + metadata + data equals the whole-frame encoding.
		if fr.Type().CanFragment() {
			md, data := fr.Metadata(), fr.Data()
			head := AppendPrefix(nil, fr.Type(), fr.StreamID(), fr.Flags()&definedFlags[fr.Type()], fr.InitialRequestN(), len(md), md != nil)
			if len(head) != PrefixLen(fr.Type(), md != nil) {
				t.Fatalf("PrefixLen %d != %d", PrefixLen(fr.Type(), md != nil), len(head))
			}
			g := append(append(head, md...), data...)
			if !bytes.Equal(g, re) {
				t.Fatalf("gather mismatch\n got % X\nwant % X", g, re)
			}
		}
		// Split the input in two: each half must parse or fail cleanly (no panic), and a valid first half
		// is itself consistent.
		if len(b) > 0 {
			cut := int(b[len(b)-1]) % (len(b) + 1)
			for _, part := range [][]byte{b[:cut], b[cut:]} {
				if p, err := Parse(part); err == nil {
					touchAll(p)
				}
			}
		}
	})
}

// FuzzFragment checks Fragmenter: sizes within MTU, spec flag rules, valid frames, exact reassembly.
func FuzzFragment(f *testing.F) {
	f.Add(uint16(64), uint8(TypePayload), uint16(FlagNext|FlagComplete), uint32(1), true, []byte("metadata"), []byte("some data here"))
	f.Add(uint16(70), uint8(TypeRequestChannel), uint16(FlagComplete), uint32(5), true, bytes.Repeat([]byte("m"), 200), bytes.Repeat([]byte("d"), 300))
	f.Add(uint16(0), uint8(TypeRequestStream), uint16(0), uint32(3), false, []byte(nil), bytes.Repeat([]byte("d"), 100))
	f.Add(uint16(100), uint8(TypeRequestFNF), uint16(0), uint32(0), true, []byte{}, bytes.Repeat([]byte("d"), 100))
	f.Add(uint16(1), uint8(TypeRequestResponse), uint16(0), uint32(0), true, bytes.Repeat([]byte("m"), 61), []byte{})
	f.Fuzz(func(t *testing.T, mtu16 uint16, t8 uint8, fl16 uint16, n uint32, hasMD bool, md, data []byte) {
		types := []Type{TypeRequestResponse, TypeRequestFNF, TypeRequestStream, TypeRequestChannel, TypePayload}
		typ := Type(t8)
		if !typ.CanFragment() {
			typ = types[int(t8)%len(types)]
		}
		flags := Flags(fl16) & (FlagFollows | FlagComplete | FlagNext | FlagMetadata)
		if typ.HasInitialN() {
			n = n%MaxRequestN + 1
		} else {
			n = 0
		}
		if !hasMD {
			md = nil
		} else if md == nil {
			md = []byte{}
		}
		mtu := int(mtu16)
		checkFragments(t, mtu, typ, flags, n, md, data)
	})
}

func checkFragments(t *testing.T, mtu int, typ Type, flags Flags, n uint32, md, data []byte) []Fragment {
	t.Helper()
	effMTU := mtu
	if mtu > 0 && mtu < MinMTU {
		effMTU = MinMTU
	}
	fr := NewFragmenter(mtu, typ, flags, n, md, data)
	var frags []Fragment
	var gotMD, gotData []byte
	sawMD := false
	for f, ok := fr.Next(); ok; f, ok = fr.Next() {
		frags = append(frags, f)
		if len(frags) > len(md)+len(data)+2 {
			t.Fatal("too many fragments")
		}
		enc := f.Append(nil, 1)
		if len(enc) != f.Len() {
			t.Fatalf("Len %d != %d", f.Len(), len(enc))
		}
		if effMTU > 0 && len(enc) > effMTU {
			t.Fatalf("fragment of %d bytes > MTU %d", len(enc), effMTU)
		}
		p, err := Parse(enc)
		if err != nil {
			t.Fatalf("fragment %d does not parse: %v", len(frags), err)
		}
		if f.Metadata != nil {
			if len(gotData) > 0 {
				t.Fatal("metadata after data")
			}
			sawMD = true
		}
		gotMD = append(gotMD, p.Metadata()...)
		gotData = append(gotData, p.Data()...)
	}
	if len(frags) == 0 {
		t.Fatal("no fragments")
	}
	if !bytes.Equal(gotMD, md) || !bytes.Equal(gotData, data) || sawMD != (md != nil) {
		t.Fatalf("reassembly mismatch: md %d/%d data %d/%d", len(gotMD), len(md), len(gotData), len(data))
	}
	for i, f := range frags {
		last := i == len(frags)-1
		wantType := typ
		if i > 0 {
			wantType = TypePayload
		}
		if f.Type != wantType {
			t.Fatalf("fragment %d type %v want %v", i, f.Type, wantType)
		}
		if (f.Flags&FlagFollows != 0) == last {
			t.Fatalf("fragment %d/%d F flag wrong: %v", i, len(frags), f.Flags)
		}
		if (f.Flags&FlagMetadata != 0) != (f.Metadata != nil) {
			t.Fatalf("fragment %d M flag wrong", i)
		}
		if f.Flags&^(FlagMetadata|FlagFollows|FlagComplete|FlagNext) != 0 {
			t.Fatalf("fragment %d has unexpected flags %v", i, f.Flags)
		}
		wantC := last && flags&FlagComplete != 0 && (typ == TypePayload || typ == TypeRequestChannel)
		if (f.Flags&FlagComplete != 0) != wantC {
			t.Fatalf("fragment %d C flag wrong: %v", i, f.Flags)
		}
		var wantN bool
		switch {
		case typ == TypePayload:
			wantN = flags&FlagNext != 0
		case i > 0:
			wantN = true
		}
		if (f.Flags&FlagNext != 0) != wantN {
			t.Fatalf("fragment %d N flag wrong: %v", i, f.Flags)
		}
		if i == 0 && f.InitialN != n || i > 0 && f.InitialN != 0 {
			t.Fatalf("fragment %d initial N %d", i, f.InitialN)
		}
	}
	if NeedsFragmentation(mtu, typ, md, data) != (len(frags) > 1) {
		t.Fatalf("NeedsFragmentation inconsistent with %d fragments", len(frags))
	}
	return frags
}
