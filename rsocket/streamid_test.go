package rsocket

import (
	"context"
	"testing"

	"github.com/rsgate/rsgate/rsocket/frame"
)

// RequestResponse and FireAndForget report the stream id their frame went out on.
func TestRequestAndFireAndForgetIDs(t *testing.T) {
	leakCheck(t)
	p, c := rawServer(t, Options{})
	type answer struct {
		id  uint32
		msg *Message
		err error
	}
	for i := 0; i < 3; i++ {
		got := make(chan answer, 1)
		go func() {
			msg, id, err := c.RequestResponse(context.Background(), Payload{Data: []byte("q")})
			got <- answer{id, msg, err}
		}()
		f := p.next()
		if f.Type() != frame.TypeRequestResponse {
			t.Fatalf("got %v, want REQUEST_RESPONSE", f)
		}
		p.send(frame.AppendPayload(nil, f.StreamID(), frame.FlagNext|frame.FlagComplete, nil, []byte("a")))
		a := <-got
		if a.err != nil {
			t.Fatal(a.err)
		}
		a.msg.Release()
		if a.id != f.StreamID() || a.id == 0 {
			t.Fatalf("RequestResponse reported stream %d; the frame went out on %d", a.id, f.StreamID())
		}

		id, err := c.FireAndForget(context.Background(), Payload{Data: []byte("f")}, FireAndForgetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		f = p.next()
		if f.Type() != frame.TypeRequestFNF || id != f.StreamID() || id == 0 {
			t.Fatalf("FireAndForget reported stream %d; got %v on %d", id, f.Type(), f.StreamID())
		}
	}
	// A request that fails before it has a stream reports id 0.
	_ = c.Close()
	if _, id, err := c.RequestResponse(context.Background(), Payload{}); err == nil || id != 0 {
		t.Fatalf("on a closed connection: err %v, id %d", err, id)
	}
	if id, err := c.FireAndForget(context.Background(), Payload{}, FireAndForgetOptions{}); err == nil || id != 0 {
		t.Fatalf("fire-and-forget on a closed connection: err %v, id %d", err, id)
	}
}
