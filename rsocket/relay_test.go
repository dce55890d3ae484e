package rsocket

import (
	"testing"
	"time"

	"github.com/rsgate/rsgate/rsocket/frame"
)

// TestRelayCredit: TakeCredit hands out the initial N and each REQUEST_N exactly once; CreditNotify
// signals each grant; Forward sends items without consuming credit; Forward(complete) ends our side.
func TestRelayCredit(t *testing.T) {
	leakCheck(t)
	streams := make(chan *Stream, 1)
	h := &HandlerFuncs{RequestStreamFunc: func(req Payload, n uint32, s *Stream) { streams <- s }}
	p, _ := rawClient(t, h, ServerOptions{}, setupFrame(false, nil, nil))
	p.send(frame.AppendRequestStream(nil, 1, 5, false, nil, []byte("go")))
	var s *Stream
	select {
	case s = <-streams:
	case <-time.After(5 * time.Second):
		t.Fatal("no request")
	}
	notify := s.Relay().CreditNotify()
	select {
	case <-notify: // the initial N is pending
	case <-time.After(time.Second):
		t.Fatal("CreditNotify did not signal the initial N")
	}
	if n := s.Relay().TakeCredit(); n != 5 {
		t.Fatalf("TakeCredit = %d, want the initial 5", n)
	}
	if n := s.Relay().TakeCredit(); n != 0 {
		t.Fatalf("second TakeCredit = %d, want 0", n)
	}
	p.send(frame.AppendRequestN(nil, 1, 3))
	select {
	case <-notify:
	case <-time.After(5 * time.Second):
		t.Fatal("REQUEST_N not signalled")
	}
	if n := s.Relay().TakeCredit(); n != 3 {
		t.Fatalf("TakeCredit = %d, want 3", n)
	}
	// Forward ignores credit (it was handed on): 10 items go out although none is left here.
	for i := 0; i < 10; i++ {
		if err := s.Relay().Forward(Payload{Data: []byte{byte('a' + i)}}, false); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 10; i++ {
		f := p.expect(frame.TypePayload, 1)
		if f.Flags()&(frame.FlagNext|frame.FlagComplete) != frame.FlagNext || string(f.Data()) != string(rune('a'+i)) {
			t.Fatalf("item %d: %v", i, f)
		}
	}
	if s.InboundDone() != true {
		t.Fatal("a request-stream responder has no inbound direction")
	}
	if err := s.Relay().Forward(Payload{Data: []byte("z")}, true); err != nil {
		t.Fatal(err)
	}
	if f := p.expect(frame.TypePayload, 1); !f.Has(frame.FlagComplete) || !f.Has(frame.FlagNext) {
		t.Fatalf("last item %v, want N|C", f)
	}
	waitDone(t, s.Done(), "stream end after Forward(complete)")
	if err := s.Relay().Forward(Payload{Data: []byte("late")}, false); err == nil {
		t.Fatal("Forward after the end succeeded")
	}
	if n := s.Relay().TakeCredit(); n != 0 {
		t.Fatalf("TakeCredit after the end = %d", n)
	}
}

// TestRelayUnbounded: after 2^31-1 in total, TakeCredit reports unbounded on every call.
func TestRelayUnbounded(t *testing.T) {
	leakCheck(t)
	streams := make(chan *Stream, 1)
	h := &HandlerFuncs{RequestStreamFunc: func(req Payload, n uint32, s *Stream) { streams <- s }}
	p, _ := rawClient(t, h, ServerOptions{}, setupFrame(false, nil, nil))
	p.send(frame.AppendRequestStream(nil, 1, frame.MaxRequestN, false, nil, nil))
	s := <-streams
	for i := 0; i < 2; i++ {
		if n := s.Relay().TakeCredit(); n != frame.MaxRequestN {
			t.Fatalf("TakeCredit = %d, want MaxRequestN", n)
		}
	}
	s.Cancel()
}
