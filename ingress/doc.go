// Package ingress is the HTTP front of rsgate: a fasthttp server that maps each HTTP request onto an
// RSocket interaction with a backend, as configured by the route table of package mapping.
//
//	request-response  POST /api/echo     -> REQUEST_RESPONSE -> HTTP response (status/headers from the
//	                                                             optional message/x.rsgate.http.v0 entry)
//	fire-and-forget   POST /api/log      -> REQUEST_FNF      -> 202 Accepted once the frame was written
//	request-stream    GET  /api/ticks/5  -> REQUEST_STREAM   -> SSE (text/event-stream) or NDJSON
//
// Each request is matched with mapping.Table.Match, its metadata (composite: routing tag, bearer
// authentication, the gateway entry of package internal/httpmeta) is built into a pooled buffer, and the
// request body is handed to the backend as the payload data without a copy. Errors are answered as JSON
// ({"error":"...","code":"..."}) with the statuses of the error table in docs/METADATA.md and DESIGN.md.
//
// # Lifetime and ownership rules
//
//   - A Server is built once with New and serves one listener at a time (Serve or ListenAndServe). Update
//     swaps the configuration and route table atomically: requests already running finish with the state
//     they started with. Shutdown stops accepting, waits for in-flight requests and streams until its
//     context ends, then cancels the rest (CANCEL upstream) and closes the remaining client connections.
//   - Per-request state (path parameters, the metadata buffer, the timeout context) comes from a pool and
//     goes back to it when the handler returns; nothing refers to fasthttp's request after that. The
//     request body is referenced (not copied) only while the RSocket call that sends it is in progress.
//   - A response payload (*rsocket.Message) is copied into the fasthttp response and released at once.
//   - request-stream: the Subscriber runs on the backend connection's reader goroutine and never blocks: it
//     copies each item into a pooled buffer and queues it. The fasthttp stream-writer goroutine writes and
//     flushes the queued items and only then grants the backend more credit (REQUEST_N), so a slow client
//     throttles the backend and gateway memory per stream stays within stream.window items. A failed write
//     or flush (client gone), the route timeout and a forced shutdown cancel the backend stream. Every
//     stream ends in exactly one place (the writer goroutine), which returns all queued buffers and
//     releases the pool slot.
//
// # Client disconnects
//
// fasthttp offers no notification of a client that goes away while a request-response call is waiting for
// the backend: such a call ends at the route timeout (504, CANCEL upstream) or when the answer comes, and
// the answer is then dropped. Streams notice a gone client on the next write: an item, or for SSE the
// heartbeat comment written every Options.SSEHeartbeat; on Linux, streams served over a plain TCP
// connection also watch the socket for the client's FIN/RST, so an idle NDJSON stream is canceled too.
package ingress
