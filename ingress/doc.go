// Package ingress is the HTTP front of rsgate: a fasthttp server that maps each HTTP request onto an
// RSocket interaction with a backend, as configured by the route table of package mapping.
//
//	request-response  POST /api/echo     -> REQUEST_RESPONSE -> HTTP response (status/headers from the
//	                                                             optional message/x.rsgate.http.v0 entry)
//	fire-and-forget   POST /api/log      -> REQUEST_FNF      -> 202 Accepted once the frame was written
//	request-stream    GET  /api/ticks/5  -> REQUEST_STREAM   -> SSE (text/event-stream) or NDJSON
//
// Each request is matched with mapping.Table.Match, its metadata (composite: routing tag, bearer
// authentication, zipkin tracing from a W3C traceparent header, the gateway entry of package
// internal/httpmeta) is built into a pooled buffer, and the
// request body is handed to the backend as the payload data without a copy. Errors are answered as JSON
// ({"error":"...","code":"..."}) with the statuses of the error table in README.md ("Errors") and
// docs/METADATA.md ("HTTP statuses").
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
// fasthttp does not tell a handler that its client went away. The ingress watches the client's socket for
// FIN/RST where that matters (Linux, plain TCP connections): request-response calls that are still waiting
// after Options.SlowCallWatch (default 1s; fast calls pay nothing for it) and every stream. A gone client
// cancels the call, and the backend gets CANCEL. Elsewhere (TLS, other systems) a request-response call
// ends at the route timeout or when the answer comes, and a stream notices on its next write: an item, or
// for SSE the ": ping" heartbeat written every Options.SSEHeartbeat.
//
// Per-route policies run after the match and before anything is built from the request (policy.go): CORS
// (cors.go, which also answers preflights), path parameter checks (400 BAD_PARAMETER) and rate limits
// (ratelimit.go, 429).
//
// The WebSocket interactions (request-channel, rsocket) live in ws_*.go, the http interaction with route
// splits and shadowing in http_proxy.go, split.go and shadow.go; each file documents its own rules.
package ingress
