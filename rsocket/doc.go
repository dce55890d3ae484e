// Package rsocket implements RSocket 1.0 sessions (protocol core): the SETUP handshake, the four
// interaction models and METADATA_PUSH in both directions, REQUEST_N credit, LEASE, KEEPALIVE,
// fragmentation and reassembly, and resumption (RESUME / RESUME_OK). It sits on rsocket/frame (wire
// codec) and rsocket/transport (frames over TCP, WebSocket or an in-memory pipe).
//
// # Session and binding
//
// A Conn is a session: its streams and request-response calls (rrcall.go), credit, the write queue
// (writequeue.go), leases, keepalive, the implied positions and resume buffer (resume.go, resumebuf.go)
// and its lifecycle (one state: open, draining, closed). A binding (binding.go) joins the session to one
// transport.Conn: the reader goroutine and the target of the writer. Without resumption the session ends
// with its binding; with resumption a lost binding only detaches the session (the queue pauses, streams
// stay open) until a new transport resumes it.
//
// # Goroutines
//
// An idle Conn runs one goroutine, the reader (transport.ReadFrame into the transport's buffer,
// frame.Parse, dispatch by stream id). The writer goroutine runs while frames are queued: it drains the
// write queue (one transport.WriteFrame per frame and one Flush per batch, so frames of many streams
// share a syscall) and exits once the queue stays empty; keepalive is a timer that re-arms itself. Idle
// connections are what a gateway holds most of, and each parked goroutine would cost a stack of KiBs.
// Any goroutine may queue frames (mutex + slice swap). Exactly one writer runs at a time: a flag under
// the queue mutex says whether one is running, and whoever queues a frame while none is starts it
// (shutdown likewise, to flush the final frames); the writer clears the flag under the same mutex when it
// finds the queue empty. Over plain TCP the reader takes the writer's part for what is queued while it
// dispatches the whole frames of one read: it writes that batch itself before it reads again, without
// waiting for the peer (a writer goroutine finishes what the socket does not take at once), so that an
// answer given at once by a handler needs no goroutine hand-off. No channel is ever closed while others
// may send on it. Handler and Subscriber methods run on the reader goroutine: they must not block, and
// must not wait for an answer on the same connection.
//
// # Ownership and lifetimes
//
//   - Payloads passed to Handler and Subscriber methods are views into the transport's read buffer (or a
//     reassembly buffer), valid only during the call.
//   - RequestResponse and FireAndForget (without NoWait) write the caller's slices in place (zero copy)
//     and return only after the writer is done with them (with resumption, after the writer copied them
//     into the resume buffer). Everything else that sends a payload (Stream.Send, Respond,
//     Complete, RequestStream, RequestChannel, MetadataPush) copies it into the write queue at once.
//   - The *Message returned by RequestResponse owns one pooled buffer (the answer is copied once, or the
//     reassembly buffer is handed over); Release returns it.
//   - Stream ids are odd for the client and even for the server and are never reused; when they run out,
//     requests fail with ErrStreamIDsExhausted.
//
// # Lifetime of a session
//
// A session ends on Close/CloseWithError, a connection-level ERROR from the peer, a protocol violation
// (we send ERROR[CONNECTION_ERROR]), and, without resumption, a transport error or keepalive expiry (no
// frame from the peer within the maximum lifetime); with resumption those detach it instead, and it ends
// on a refused resume or after SessionDuration detached. Then every open stream fails with an error matching ErrClosed (and the cause, e.g.
// the peer's *Error), every goroutine returns and every pooled buffer comes back; Done is closed last.
// None of these waits for the peer or for a timer: the end stops the transport's waiting
// (transport.WaitStopper), so a writer blocked on a peer that does not read fails at once.
//
// # Spec decisions
//
//   - Resumption (resume.go) is opt-in on both sides (Options.Resume, ServerOptions.Resume). Without it,
//     SETUP with R gets ERROR[REJECTED_SETUP] and RESUME gets ERROR[REJECTED_RESUME]. Frames that count
//     for the implied position: frame.CountsForResume. rsocket-js 1.0 sends RESUME with version 0.1
//     (major and minor swapped): accepted as 1.0. A session that cannot continue from the peer's
//     position is refused with REJECTED_RESUME (server) or ends with CONNECTION_ERROR (client), as the
//     spec says; REJECTED_RESUME is final.
//   - A received REQUEST_N (or cumulative credit) of 2^31-1 means unbounded, as rsocket-java does.
//   - Leases: with the L flag the requester fails fast with ErrNoLease instead of waiting, so that a pool
//     can use another connection; the responder answers requests beyond its lease with ERROR[REJECTED].
//   - Fragmentation: reassembly is always on and keyed on "this stream has fragments pending", not on N.
//     A fragment with F and C set continues the sequence and completes it at its end (rsocket-go v0.8.12
//     sets C on the first fragment); see onFragment.
//   - Close sends ERROR[CONNECTION_CLOSE] and closes at once; streams in flight fail with ErrClosed. The
//     ERROR (and what was queued before it) goes out only as far as the transport takes it without
//     waiting: a peer that does not read never holds Close (transport.WaitStopper; no timer).
//     Drain is the graceful form: it sends ERROR[CONNECTION_CLOSE], refuses new streams both ways and
//     closes once the open streams have ended. A CONNECTION_CLOSE from the peer starts the same drain
//     ("MUST wait for outstanding streams to terminate"); any other connection-level ERROR ends the
//     connection at once and fails every stream with it (*Error, together with ErrClosed).
//   - Frames on unknown streams, on the wrong stream (e.g. PAYLOAD on 0, METADATA_PUSH on > 0), requests
//     on ids in use or with our parity, SETUP after the handshake, RESUME/RESUME_OK after the handshake: ignored. Unknown frame
//     types with I: ignored; without I, and malformed frames: ERROR[CONNECTION_ERROR] and close.
package rsocket
