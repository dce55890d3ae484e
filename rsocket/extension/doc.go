// Package extension encodes and decodes the metadata formats of the RSocket
// extension specifications (rsocket/rsocket Extensions/, all "v0"):
//
//   - well-known MIME ids (WellKnownMimeTypes.md), lookups in both directions
//   - composite metadata (CompositeMetadata.md): AppendCompositeEntry, CompositeIter, FindComposite
//   - routing (Routing.md): AppendRoutingTag, EncodeRouting, RoutingIter, FirstRoutingTag
//   - authentication (Security/Authentication.md, Simple.md, Bearer.md): AppendAuthBearer, AppendAuthSimple, ParseAuth
//   - per-stream data MIME types (PerStreamDataMimeTypesDefinition.md): AppendMimeType, AppendAcceptMimeTypes
//   - Zipkin tracing (Tracing-Zipkin.md): AppendZipkin, ParseZipkin, and conversion from and to a W3C
//     traceparent header value
//
// # Encoding
//
// Encoders are append-style (dst in, extended dst out) and never allocate when dst has room. Two kinds exist:
//
//   - Append* functions take arguments the caller has already checked (constants, values it built itself). They
//     panic with an *ArgError when a documented precondition is broken (a routing tag of 300 bytes, a custom
//     MIME type with a non-ASCII byte): that is a bug in the caller, not a condition of the input.
//   - Encode* and *Checked functions validate the same preconditions and return an *ArgError (matching
//     errors.Is(err, ErrInvalid)) instead, leaving dst unchanged. Use them for anything derived from a request
//     (path parameters in a routing tag, tokens from headers).
//
// # Decoding
//
// Decoders are views: every []byte they return (CompositeEntry.Value, RoutingIter.Tag, Auth.Payload, MimeRef.Name,
// ...) is a sub-slice of the input, capped so that appending to it cannot overwrite the input. Such a slice is
// valid exactly as long as the input bytes are: when the input is a frame in a reused read buffer, copy what you
// keep before the next read. Iterators (CompositeIter, RoutingIter, MimeIter) do not allocate; they stop at the
// first malformed byte and report it from Err. Decode errors are *DecodeError values matching
// errors.Is(err, ErrMalformed) (or ErrUnknownMime for a well-known id this table does not know, where the
// caller needs a name) and name the codec, the offset and a snippet of the input.
//
// # Custom MIME and auth type lengths (interop)
//
// The composite metadata, per-stream MIME and authentication specifications say that, with the M/A bit clear,
// the 7 low bits hold "the MIME Type Length in bytes". Every implementation (rsocket-java, rsocket-js,
// rsocket-go for composite metadata) writes length-1 instead, since a length of 0 is never valid, so that names
// of 1..128 bytes fit. This package follows the implementations in both directions: a name of n bytes is
// written as n-1, and a byte value of k is read as k+1 name bytes. (rsocket-go v0.8.12 writes custom
// authentication type lengths without the -1; send it well-known auth types only.)
//
// # Simple authentication username length
//
// Early versions of Security/Simple.md give the username length as 8 bits; the current text, rsocket-java and
// rsocket-js use 16 bits (big-endian). This package uses 16 bits.
//
// # Zipkin flags
//
// The flag bits follow rsocket-java's TracingMetadataCodec, which every peer implements: 0x80 IDs set,
// 0x40 debug, 0x20 sampled, 0x10 not sampled, 0x08 128-bit trace id, 0x04 parent span id present. Without
// 0x80 the value is the flags byte alone.
//
// All functions are safe for concurrent use; the package has no mutable state after init.
package extension
