package rsocket

import (
	"context"
	"testing"
	"time"

	"github.com/rsgate/rsgate/rsocket/frame"
)

// relay.go (written by the ingress side) shares creditCh with Send: the stream's end must wake it and
// must never close the channel.
func TestCreditNotifyAcrossEnd(t *testing.T) {
	leakCheck(t)
	p, c := rawServer(t, Options{})
	st, err := c.RequestChannel(Payload{}, 1, false, newCollector())
	if err != nil {
		t.Fatal(err)
	}
	p.expect(frame.TypeRequestChannel, 1)
	ch := st.CreditNotify()
	p.send(frame.AppendRequestN(nil, 1, 3))
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no credit notification")
	}
	if n := st.TakeCredit(); n != 3 {
		t.Fatalf("TakeCredit %d", n)
	}
	if err := st.Forward(Payload{Data: []byte("x")}, false); err != nil {
		t.Fatal(err)
	}
	p.expect(frame.TypePayload, 1)
	errc := make(chan error, 1)
	go func() { errc <- st.Send(context.Background(), Payload{}) }() // no credit left: waits
	p.send(frame.AppendError(nil, 1, frame.CodeApplicationError, "end"))
	mustCode(t, <-errc, frame.CodeApplicationError)
	waitDone(t, st.Done(), "channel")
	ch = st.CreditNotify() // after the end: signalled, not a panic
	select {
	case <-ch:
	default:
		t.Fatal("CreditNotify after the end is not signalled")
	}
	if st.TakeCredit() != 0 || !st.InboundDone() {
		t.Fatal("ended stream still has credit or inbound")
	}
}
