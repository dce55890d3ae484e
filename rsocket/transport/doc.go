// Package transport moves whole RSocket frames over byte streams (TCP, TLS over TCP), over
// WebSocket messages, and over an in-memory pipe for tests.
//
// A Conn knows nothing about frame contents: it delivers and accepts opaque frames without the
// transport's length prefix (RSocket 1.0, "Framing"). Stream transports put a 24-bit big-endian
// length, not counting itself, in front of every frame; WebSocket carries exactly one frame per
// binary message and no prefix.
//
// Concurrency and lifetime rules, shared by every Conn in this package:
//
//   - One goroutine reads (ReadFrame) and one goroutine writes (WriteFrame, Flush); they may be
//     different goroutines. Close, LocalAddr and RemoteAddr may be called from any goroutine,
//     any number of times.
//   - The slice returned by ReadFrame is owned by the Conn and is valid only until the next
//     ReadFrame call (or Close). Callers that keep frame bytes longer must copy them. After an
//     unusually large frame the Conn gives its big buffer back to a shared pool on the next
//     ReadFrame, so an idle connection pins only its small read buffer.
//   - WriteFrame only queues (TCP) or encodes (WebSocket); the head, metadata and data slices
//     passed to it must stay unmodified until the following Flush returns. After Flush returns
//     the Conn holds no reference to them, so pooled buffers can be reused immediately.
//   - Errors: io.EOF when the peer closed cleanly between frames, io.ErrUnexpectedEOF when the
//     stream ended inside a frame, an error matching ErrFrameTooLarge (a *FrameSizeError) for
//     frames over the configured limit in either direction, ErrClosed (net.ErrClosed) after the
//     local Close. Read and write errors other than a too-large WriteFrame are sticky: the
//     connection is unusable afterwards and should be closed.
//   - StopWaiting (WaitStopper, every Conn here) is how a closing session avoids waiting for a peer
//     that does not read: a write blocked on it fails at once, later writes write only what the
//     transport takes without waiting (ErrWouldBlock otherwise), and Close sends no closing
//     handshake the socket does not take at once.
package transport
