package rsocket

import "context"

// RequestResponseID is RequestResponse that also stores the stream id the request was sent on in *id
// (left unchanged when the request failed before it got one), for logs that correlate a request with
// frames on the wire. It costs nothing more than RequestResponse. Streams and channels have theirs in
// Stream.ID.
func (c *Conn) RequestResponseID(ctx context.Context, p Payload, id *uint32) (*Message, error) {
	return c.requestResponse(ctx, p, id)
}

// FireAndForgetID is FireAndForget that also stores the stream id of the REQUEST_FNF frame in *id (left
// unchanged when the call failed before the frame got one).
func (c *Conn) FireAndForgetID(ctx context.Context, p Payload, id *uint32) error {
	return c.fireAndForget(ctx, p, id)
}
