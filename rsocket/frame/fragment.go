package frame

// MinMTU is the smallest fragment size Fragmenter uses; smaller MTUs are raised to it.
const MinMTU = 64

// Fragment is one frame produced by a Fragmenter. Metadata is nil when the fragment has no M flag.
type Fragment struct {
	Type     Type   // the original request type for the first fragment, TypePayload for continuations
	Flags    Flags  // F on all but the last fragment; M iff Metadata != nil; N/C as described on Fragmenter
	InitialN uint32 // REQUEST_STREAM/REQUEST_CHANNEL first fragment only
	Metadata []byte // sub-slice of the original metadata, or nil
	Data     []byte // sub-slice of the original data (maybe empty)
}

// AppendPrefix appends the fragment's header (+ initial N) (+ metadata length); the caller then writes
// Metadata and Data.
func (fr *Fragment) AppendPrefix(dst []byte, id uint32) []byte {
	return AppendPrefix(dst, fr.Type, id, fr.Flags, fr.InitialN, len(fr.Metadata), fr.Metadata != nil)
}

// Append appends the whole fragment frame.
func (fr *Fragment) Append(dst []byte, id uint32) []byte {
	dst = fr.AppendPrefix(dst, id)
	dst = append(dst, fr.Metadata...)
	return append(dst, fr.Data...)
}

// Len returns the encoded length of the fragment frame.
func (fr *Fragment) Len() int {
	return PrefixLen(fr.Type, fr.Metadata != nil) + len(fr.Metadata) + len(fr.Data)
}

// FrameLen returns the encoded length of a REQUEST_*/PAYLOAD frame with the given metadata and data
// (hasMetadata selects the M flag and metadata length field).
func FrameLen(t Type, metadataLen, dataLen int, hasMetadata bool) int {
	return PrefixLen(t, hasMetadata) + metadataLen + dataLen
}

// Fragmenter splits one logical REQUEST_RESPONSE, REQUEST_FNF, REQUEST_STREAM, REQUEST_CHANNEL or PAYLOAD
// frame into fragments of at most MTU bytes each (frame bytes, excluding any transport length prefix),
// following the spec's "Fragmentation And Reassembly":
//
//   - The first fragment has the original type and initial N; continuations are PAYLOAD frames.
//   - Every fragment except the last has F set; the last has F clear.
//   - All metadata is sent before any data. A fragment carries M (with a metadata length) iff it carries
//     a part of the metadata; an original with empty non-nil metadata sends M with length 0 in the first
//     fragment.
//   - For a PAYLOAD original, every fragment carries the original's N flag and only the last carries its C
//     flag. For a request original, continuation PAYLOAD fragments carry N, and for REQUEST_CHANNEL with
//     C the C flag moves to the last fragment.
//
// When mtu <= 0 or the whole frame fits in mtu, Next yields exactly one fragment equal to the original
// frame. Fragmenter does not allocate. Usage:
//
//	fr := frame.NewFragmenter(mtu, frame.TypePayload, frame.FlagNext|frame.FlagComplete, 0, md, data)
//	for f, ok := fr.Next(); ok; f, ok = fr.Next() {
//		head = f.AppendPrefix(head[:0], streamID)
//		write(head, f.Metadata, f.Data)
//	}
type Fragmenter struct {
	mtu      int
	t        Type
	flags    Flags
	initialN uint32
	md, data []byte
	hasMD    bool // metadata (possibly empty) still to be sent with M
	n        int  // fragments produced
	done     bool
}

// NewFragmenter prepares the fragmentation of one frame. flags are the original frame's flags: only C (PAYLOAD,
// REQUEST_CHANNEL) and N (PAYLOAD) are used; M follows metadata != nil and F is set as needed. mtu values in 1..MinMTU-1 are raised to MinMTU.
func NewFragmenter(mtu int, t Type, flags Flags, initialN uint32, metadata, data []byte) Fragmenter {
	if mtu > 0 && mtu < MinMTU {
		mtu = MinMTU
	}
	switch t {
	case TypePayload:
		flags &= FlagComplete | FlagNext
	case TypeRequestChannel:
		flags &= FlagComplete
	default:
		flags = 0
	}
	if !t.HasInitialN() {
		initialN = 0
	}
	return Fragmenter{
		mtu: mtu, t: t, flags: flags, initialN: initialN,
		md: metadata, data: data, hasMD: metadata != nil,
	}
}

// NeedsFragmentation reports whether a frame of type t with this metadata and data exceeds mtu (mtu <= 0:
// never).
func NeedsFragmentation(mtu int, t Type, metadata, data []byte) bool {
	if mtu <= 0 {
		return false
	}
	if mtu < MinMTU {
		mtu = MinMTU
	}
	return FrameLen(t, len(metadata), len(data), metadata != nil) > mtu
}

// Next returns the next fragment, or ok == false when all fragments have been returned.
func (f *Fragmenter) Next() (fr Fragment, ok bool) {
	if f.done {
		return Fragment{}, false
	}
	first := f.n == 0
	f.n++
	t := f.t
	if !first {
		t = TypePayload
	}
	if first && !NeedsFragmentation(f.mtu, f.t, f.md, f.data) {
		f.done = true
		fl := f.flags
		if f.hasMD {
			fl |= FlagMetadata
		}
		return Fragment{Type: t, Flags: fl, InitialN: f.initialN, Metadata: f.md, Data: f.data}, true
	}
	budget := f.mtu - PrefixLen(t, f.hasMD)
	if budget < 0 {
		budget = 0
	}
	if f.hasMD {
		m := len(f.md)
		if m > budget {
			m = budget
		}
		fr.Metadata = f.md[:m:m]
		f.md = f.md[m:]
		budget -= m
		if len(f.md) == 0 {
			f.hasMD = false
		}
	}
	if !f.hasMD {
		d := len(f.data)
		if d > budget {
			d = budget
		}
		fr.Data = f.data[:d:d]
		f.data = f.data[d:]
	}
	last := !f.hasMD && len(f.data) == 0
	fr.Type = t
	if first {
		fr.InitialN = f.initialN
		fr.Flags = f.flags & FlagNext // N for PAYLOAD originals; requests have no N
	} else if f.t == TypePayload {
		fr.Flags = f.flags & FlagNext
	} else {
		fr.Flags = FlagNext
	}
	if last {
		fr.Flags |= f.flags & FlagComplete
		f.done = true
	} else {
		fr.Flags |= FlagFollows
	}
	if fr.Metadata != nil {
		fr.Flags |= FlagMetadata
	}
	return fr, true
}
