// Package pool keeps, for each backend of the configuration, a set of persistent RSocket connections and
// chooses one of them for every request.
//
// A Pool owns `connections` slots per configured address (per resolved IP when the address is a DNS name
// re-resolved every resolve_interval). Each slot is a Member: a goroutine dials it (TCP or WebSocket, with the
// backend's TLS settings), sends SETUP through rsocket.Connect, waits for the connection to end, marks the slot
// down and reconnects with jittered exponential backoff. A lost connection fails only its own in-flight streams
// (the rsocket core does that); Pick skips it from the moment its Done channel closes.
//
// Balancing draws two random members and keeps the better one under the backend's balancer: "weighted"
// (the default, weighted.go: availability x success / (1 + predicted latency x (outstanding + 1)), as
// rsocket-java's WeightedLoadbalanceStrategy) or "p2c" (peak EWMA latency x (outstanding + 1), Finagle's
// "peak EWMA"). Members that are not ready, whose connection has no lease left, or whose address is
// ejected by outlier detection (outlier.go) are not chosen. The hot path (Pick, Member.Conn, Member.Done)
// uses only per-member and per-address atomics, the member's mutex in Done, the per-thread runtime random
// source and, when max_inflight is set, one per-pool counter; it does not allocate. PickOther serves
// retries and hedges (another address when possible); Capacity sizes the leases the ingress issues.
//
// Lifetime rules:
//   - Pick reserves one in-flight slot on the returned Member; the caller must call Member.Done exactly once,
//     whatever happened to the request. Member.Conn may be called any number of times in between.
//   - A *Member stays valid after its slot was drained or its pool closed (Done still works); its Conn then
//     reports ErrClosed on new requests.
//   - Pick errors are sentinel-backed values owned by the pool (no allocation); match them with errors.Is
//     against ErrNoConnection, ErrOverloaded, ErrNoLease, ErrClosed and ask RetryAfter for a hint.
//
// Backends with transport "http" (legacy REST upstreams) get an HTTPPool instead (http.go: NewHTTP, one
// fasthttp.HostClient per address); New rejects them with an error matching ErrUnsupportedTransport, and a
// Group keeps them apart (Group.Get returns nil for them, Group.HTTP returns their HTTPPool).
package pool
