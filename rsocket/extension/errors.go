package extension

import (
	"errors"
	"fmt"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrMalformed: the bytes do not follow the extension's layout (truncated, a length that does not fit,
	// a non-ASCII MIME name, trailing bytes, ...).
	ErrMalformed = errors.New("malformed extension metadata")
	// ErrUnknownMime: a well-known MIME id (M bit set) that is reserved but not in the table, where the
	// caller asked for the MIME name.
	ErrUnknownMime = errors.New("unknown well-known MIME id")
	// ErrInvalid: an encoder argument breaks a precondition (length out of range, non-ASCII name, ...).
	ErrInvalid = errors.New("invalid extension argument")
	// ErrNoRoutingTag: routing metadata is well formed but holds no tag.
	ErrNoRoutingTag = errors.New("routing metadata has no tag")
	// ErrAuthType: Auth.Simple or Auth.Bearer called on an authentication value of another type.
	ErrAuthType = errors.New("authentication value has another type")
)

// DecodeError describes malformed (or unsupported) extension metadata. It matches errors.Is(err, e.Err),
// which is ErrMalformed or ErrUnknownMime.
type DecodeError struct {
	Codec   string // "composite", "routing", "auth", "mime-type", "accept-mime-types", "zipkin"
	Offset  int    // byte offset into the value where decoding failed
	Reason  string
	Snippet []byte // a copy of up to 8 input bytes from Offset
	Err     error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("extension: %s: %s at offset %d (% x)", e.Codec, e.Reason, e.Offset, e.Snippet)
}

func (e *DecodeError) Unwrap() error { return e.Err }

func decodeErr(kind error, codec string, b []byte, off int, reason string) *DecodeError {
	var snip []byte
	if off >= 0 && off < len(b) {
		end := min(off+8, len(b))
		snip = append([]byte(nil), b[off:end]...)
	}
	return &DecodeError{Codec: codec, Offset: off, Reason: reason, Snippet: snip, Err: kind}
}

func malformed(codec string, b []byte, off int, reason string) *DecodeError {
	return decodeErr(ErrMalformed, codec, b, off, reason)
}

// ArgError reports an encoder argument that breaks a precondition. Append* functions panic with it;
// Encode*/…Checked functions return it. It matches errors.Is(err, ErrInvalid).
type ArgError struct {
	Codec  string
	Reason string
}

func (e *ArgError) Error() string { return "extension: " + e.Codec + ": " + e.Reason }

func (e *ArgError) Unwrap() error { return ErrInvalid }

func argErr(codec, reason string) *ArgError { return &ArgError{Codec: codec, Reason: reason} }
