package rsocket

import (
	"context"
	"testing"
	"time"

	"github.com/rsgate/rsgate/rsocket/frame"
)

// A relay's credit channel: the stream's end must wake it and must never close it. A stream in relay mode
// refuses Send and Respond (the two credit models cannot be mixed).
func TestCreditNotifyAcrossEnd(t *testing.T) {
	leakCheck(t)
	p, c := rawServer(t, Options{})
	st, err := c.RequestChannel(Payload{}, 1, false, newCollector())
	if err != nil {
		t.Fatal(err)
	}
	p.expect(frame.TypeRequestChannel, 1)
	ch := st.Relay().CreditNotify()
	p.send(frame.AppendRequestN(nil, 1, 3))
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no credit notification")
	}
	if n := st.Relay().TakeCredit(); n != 3 {
		t.Fatalf("TakeCredit %d", n)
	}
	if err := st.Relay().Forward(Payload{Data: []byte("x")}, false); err != nil {
		t.Fatal(err)
	}
	p.expect(frame.TypePayload, 1)
	mustErrIs(t, st.Send(context.Background(), Payload{}), ErrRelayMode)
	mustErrIs(t, st.Respond(Payload{}), ErrRelayMode)
	p.send(frame.AppendError(nil, 1, frame.CodeApplicationError, "end"))
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("the end did not signal the credit channel")
	}
	waitDone(t, st.Done(), "channel")
	mustCode(t, st.Err(), frame.CodeApplicationError)
	ch = st.Relay().CreditNotify() // after the end: signalled, not a panic
	select {
	case <-ch:
	default:
		t.Fatal("CreditNotify after the end is not signalled")
	}
	if st.Relay().TakeCredit() != 0 || !st.InboundDone() {
		t.Fatal("ended stream still has credit or inbound")
	}
}
