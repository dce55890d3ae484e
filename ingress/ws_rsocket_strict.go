package ingress

import (
	"encoding/binary"
	"strconv"
	"sync/atomic"

	"github.com/rsgate/rsgate/rsocket/frame"
)

// Protocol strictness on rsocket routes. The gateway's RSocket core follows Protocol.md's lenient rule
// ("SHOULD ignore conditions that do not make sense given the current context"), which for a relay at the
// edge hides broken or hostile clients. Before the core sees a client frame (after the SETUP), the session
// screens it:
//
//   - A request frame (REQUEST_RESPONSE, REQUEST_FNF, REQUEST_STREAM, REQUEST_CHANNEL) on stream 0:
//     ERROR[CONNECTION_ERROR] on stream 0 and the connection closes. "Stream ID of value 0 is reserved for
//     any operation involving the connection", so the request has no stream it could be answered on, and
//     a stream-level error code "MUST be > 0" (ERROR codes table); CONNECTION_ERROR is the code for a
//     connection the peer broke.
//   - A request frame on an even stream id: ERROR[CONNECTION_ERROR] and close. "a client MUST generate
//     odd Stream IDs, and a server MUST generate even Stream IDs", and stream id generation "follows
//     general guidelines for HTTP/2", whose answer to a stream id of the wrong parity is a connection
//     error (RFC 9113 section 5.1.1: "MUST respond with a connection error").
//   - A request frame on a stream id that is still in use (a stream the client opened and that has not
//     ended): ERROR[REJECTED] on that stream id, and the stream in use ends with it (an ERROR ends a
//     stream in both directions; the backend's stream is canceled); the new request is never relayed.
//     Protocol.md's Stream ID lifetime section allows it: "The Responder MAY choose to ERROR[REJECT] any
//     Stream ID if it considers the ID still in use." (The "Handling the Unexpected" list says such a
//     request "MUST be ignored"; answering it is the choice the lifetime section leaves open, and it
//     tells the client why its request got nothing.)
//   - A second SETUP: ignored, as the spec requires: "A server MUST ignore a SETUP frame after it has
//     accepted a previous SETUP." It cannot change the session (its metadata, a second token included,
//     is never read), and it is counted.
//
// Every case counts in rsgate_rsocket_protocol_violations_total{route, kind="stream_zero" |
// "even_stream_id" | "stream_in_use" | "second_setup"}.

// verdict is what the screen decides for a client frame.
type verdict uint8

const (
	framePass verdict = iota // hand the frame to the core
	frameDrop                // answered here; the core never sees it
)

// screen applies the rules above to a client frame b read after the handshake.
func (ss *rsSession) screen(b []byte) verdict {
	if ss.violated.Load() {
		return frameDrop // the connection is closing on a violation: nothing more is relayed
	}
	if ss.client == nil {
		return framePass // the SETUP itself (Accept reads it)
	}
	t, id, ok := frameHead(b)
	switch {
	case !ok:
		return framePass // too short: the core rejects it
	case t == frame.TypeSetup:
		ss.countViolation("second_setup")
		return framePass // the core ignores it
	case !isRequestType(t):
		return framePass
	}
	switch {
	case id == 0:
		ss.connectionViolation("stream_zero", "rsgate: "+t.String()+" on stream 0")
		return frameDrop
	case id&1 == 0:
		ss.connectionViolation("even_stream_id", "rsgate: "+t.String()+" on even stream id "+strconv.FormatUint(uint64(id), 10)+" (clients use odd ids)")
		return frameDrop
	}
	if st := ss.client.PeerStream(id); st != nil {
		ss.countViolation("stream_in_use")
		_ = st.Error(frame.CodeRejected, "rsgate: stream id "+strconv.FormatUint(uint64(id), 10)+" is already in use")
		return frameDrop
	}
	return framePass
}

// frameHead reads the type and stream id of a frame's header (big-endian: reserved bit and 31-bit stream
// id, then 6-bit type and 10 flag bits); ok is false when b is shorter than a header.
func frameHead(b []byte) (t frame.Type, id uint32, ok bool) {
	if len(b) < frame.HeaderLen {
		return 0, 0, false
	}
	return frame.Type(b[4] >> 2), binary.BigEndian.Uint32(b) & 0x7fffffff, true
}

func isRequestType(t frame.Type) bool {
	switch t {
	case frame.TypeRequestResponse, frame.TypeRequestFNF, frame.TypeRequestStream, frame.TypeRequestChannel:
		return true
	}
	return false
}

// connectionViolation closes the client connection with ERROR[CONNECTION_ERROR] msg. The close runs on
// its own goroutine: the reader (the caller) must keep reading until the writer has sent the ERROR and
// closed the socket.
func (ss *rsSession) connectionViolation(kind, msg string) {
	ss.countViolation(kind)
	if !ss.violated.CompareAndSwap(false, true) {
		return
	}
	c := ss.client
	go func() { _ = c.CloseWithError(frame.CodeConnectionError, msg) }()
}

func (ss *rsSession) countViolation(kind string) {
	if set := ss.s.set; set != nil {
		set.GetOrCreateCounter(`rsgate_rsocket_protocol_violations_total{route="` + ss.rt.name + `",kind="` + kind + `"}`).Inc()
	}
}

// violationFlag is embedded in rsSession.
type violationFlag struct{ violated atomic.Bool }
