package frame

import (
	"bytes"
	"testing"
)

// "Fragmentation And Reassembly" example: 20MB of metadata and 25MB of data with 16MB frames give three
// fragments: metadata only (M|F), the rest of the metadata and the start of the data (M|F), data only.
func TestFragmentSpecExample(t *testing.T) {
	if testing.Short() {
		t.Skip("45 MB example")
	}
	const mb = 1 << 20
	md := bytes.Repeat([]byte("m"), 20*mb)
	data := bytes.Repeat([]byte("d"), 25*mb)
	for _, typ := range []Type{TypePayload, TypeRequestResponse} {
		flags := Flags(0)
		if typ == TypePayload {
			flags = FlagNext | FlagComplete
		}
		frags := checkFragments(t, MaxFrameLen, typ, flags, 0, md, data)
		if len(frags) != 3 {
			t.Fatalf("%v: %d fragments, want 3", typ, len(frags))
		}
		f1, f2, f3 := frags[0], frags[1], frags[2]
		if f1.Type != typ || f1.Flags&(FlagMetadata|FlagFollows) != FlagMetadata|FlagFollows || len(f1.Data) != 0 ||
			f1.Len() != MaxFrameLen {
			t.Errorf("fragment 1: %v %v md=%d data=%d", f1.Type, f1.Flags, len(f1.Metadata), len(f1.Data))
		}
		if f2.Type != TypePayload || f2.Flags&(FlagMetadata|FlagFollows) != FlagMetadata|FlagFollows || len(f2.Data) == 0 ||
			f2.Len() != MaxFrameLen {
			t.Errorf("fragment 2: %v %v md=%d data=%d", f2.Type, f2.Flags, len(f2.Metadata), len(f2.Data))
		}
		if f3.Type != TypePayload || f3.Flags&(FlagMetadata|FlagFollows) != 0 || f3.Metadata != nil {
			t.Errorf("fragment 3: %v %v md=%d data=%d", f3.Type, f3.Flags, len(f3.Metadata), len(f3.Data))
		}
		if typ == TypePayload && f3.Flags != FlagNext|FlagComplete {
			t.Errorf("last PAYLOAD fragment flags %v, want C|N", f3.Flags)
		}
		if typ == TypeRequestResponse && (f1.Flags&FlagNext != 0 || f2.Flags&FlagNext == 0) {
			t.Errorf("request fragments N: %v %v", f1.Flags, f2.Flags)
		}
	}
}

func TestFragmentCases(t *testing.T) {
	d100 := bytes.Repeat([]byte("d"), 100)
	m100 := bytes.Repeat([]byte("m"), 100)
	// No fragmentation: mtu 0, or the frame fits.
	for _, mtu := range []int{0, -1, 1000} {
		fr := checkFragments(t, mtu, TypeRequestChannel, FlagComplete, 3, m100, d100)
		if len(fr) != 1 || fr[0].Flags != FlagMetadata|FlagComplete || fr[0].InitialN != 3 {
			t.Fatalf("mtu %d: %+v", mtu, fr)
		}
	}
	// MTU below MinMTU is raised.
	fr := checkFragments(t, 1, TypeRequestStream, 0, 9, nil, d100)
	if len(fr) != 2 || fr[0].Len() != MinMTU || fr[0].Type != TypeRequestStream || fr[1].Flags != FlagNext {
		t.Fatalf("mtu 1: %d fragments, first %d bytes, %v", len(fr), fr[0].Len(), fr[1].Flags)
	}
	// Empty non-nil metadata travels with M in the first fragment.
	fr = checkFragments(t, 64, TypeRequestFNF, 0, 0, []byte{}, d100)
	if fr[0].Metadata == nil || len(fr[0].Metadata) != 0 || fr[0].Flags&FlagMetadata == 0 {
		t.Fatalf("empty metadata lost: %+v", fr[0])
	}
	// Metadata ending exactly at a fragment boundary: next fragment has no M.
	md := bytes.Repeat([]byte("m"), 64-PrefixLen(TypePayload, true))
	fr = checkFragments(t, 64, TypePayload, FlagNext, 0, md, d100)
	if len(fr[0].Data) != 0 || fr[1].Metadata != nil {
		t.Fatalf("boundary: %+v", fr[:2])
	}
	// PAYLOAD with C only (no N) keeps N clear everywhere.
	checkFragments(t, 64, TypePayload, FlagComplete, 0, nil, d100)
	// All sizes around the boundary.
	for mtu := 64; mtu < 130; mtu++ {
		for _, m := range [][]byte{nil, {}, m100[:1], m100} {
			checkFragments(t, mtu, TypePayload, FlagNext|FlagComplete, 0, m, d100)
			checkFragments(t, mtu, TypeRequestChannel, FlagComplete, 1, m, d100)
		}
	}
}

func TestAppendPrefix(t *testing.T) {
	// M follows hasMetadata, whatever flags says; initial N only for STREAM/CHANNEL.
	eqb(t, "no md", AppendPrefix(nil, TypePayload, 1, FlagMetadata|FlagNext, 7, 5, false), []byte{0, 0, 0, 1, 0x28, 0x20})
	eqb(t, "md", AppendPrefix(nil, TypePayload, 1, FlagNext, 0, 0x010203, true), []byte{0, 0, 0, 1, 0x29, 0x20, 0x01, 0x02, 0x03})
	eqb(t, "stream", AppendPrefix(nil, TypeRequestStream, 1, 0, 7, 2, true), []byte{0, 0, 0, 1, 0x19, 0x00, 0, 0, 0, 7, 0, 0, 2})
	for _, ty := range []Type{TypeRequestResponse, TypeRequestFNF, TypeRequestStream, TypeRequestChannel, TypePayload} {
		for _, m := range []bool{false, true} {
			eq(t, "PrefixLen", PrefixLen(ty, m), len(AppendPrefix(nil, ty, 1, 0, 1, 0, m)))
		}
	}
}
