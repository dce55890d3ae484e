package rsocket

import (
	"context"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/rsocket/frame"
)

func TestPeerConnectionCloseDrains(t *testing.T) {
	leakCheck(t)
	p, c := rawServer(t, Options{})
	errc := make(chan error, 1)
	go func() {
		m, _, err := c.RequestResponse(context.Background(), Payload{Data: []byte("a")})
		if err == nil {
			if string(m.Data) != "answer" {
				t.Errorf("answer %q", m.Data)
			}
			m.Release()
		}
		errc <- err
	}()
	p.expect(frame.TypeRequestResponse, 1)
	p.send(frame.AppendError(nil, 0, frame.CodeConnectionClose, "restarting"))
	testutil.Eventually(t, c.Draining, "draining")
	if c.LeaseAvailable() {
		t.Fatal("lease available while draining")
	}
	_, _, err := c.RequestResponse(context.Background(), Payload{})
	mustErrIs(t, err, ErrClosed)
	mustCode(t, err, frame.CodeConnectionClose)
	// Requests from the peer are refused meanwhile.
	p.send(frame.AppendRequestResponse(nil, 2, false, nil, []byte("q")))
	if f := p.expect(frame.TypeError, 2); f.ErrorCode() != frame.CodeRejected {
		t.Fatalf("got %v", f)
	}
	select {
	case <-c.Done():
		t.Fatal("closed with a stream open")
	case <-time.After(20 * time.Millisecond):
	}
	p.send(frame.AppendPayload(nil, 1, frame.FlagNext|frame.FlagComplete, nil, []byte("answer")))
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	waitDone(t, c.Done(), "conn")
	mustCode(t, c.Err(), frame.CodeConnectionClose)
	if frames := p.closed(); len(frames) != 0 {
		t.Fatalf("frames after drain: %v", frames)
	}
}

func TestDrain(t *testing.T) {
	leakCheck(t)
	held := make(chan *Stream, 1)
	h := &HandlerFuncs{RequestResponseFunc: func(req Payload, s *Stream) { held <- s }}
	p, c := rawClient(t, h, ServerOptions{}, setupFrame(false, nil, nil))
	p.send(frame.AppendRequestResponse(nil, 1, false, nil, []byte("q")))
	s := <-held
	drained := make(chan error, 1)
	go func() { drained <- c.Drain(context.Background(), "bye") }()
	if f := p.expect(frame.TypeError, 0); f.ErrorCode() != frame.CodeConnectionClose || string(f.ErrorMessage()) != "bye" {
		t.Fatalf("got %v", f)
	}
	p.send(frame.AppendRequestResponse(nil, 3, false, nil, []byte("late")))
	if f := p.expect(frame.TypeError, 3); f.ErrorCode() != frame.CodeRejected {
		t.Fatalf("got %v", f)
	}
	_, _, err := c.RequestResponse(context.Background(), Payload{})
	mustErrIs(t, err, ErrClosed)
	if err := s.Respond(Payload{Data: []byte("done")}); err != nil {
		t.Fatal(err)
	}
	p.expect(frame.TypePayload, 1)
	select {
	case err := <-drained:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Drain did not return")
	}
	if frames := p.closed(); len(frames) != 0 {
		t.Fatalf("frames after drain: %v", frames)
	}
}

func TestDrainTimeout(t *testing.T) {
	leakCheck(t)
	p, c := rawServer(t, Options{})
	errc := pendingRR(p, c)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	mustErrIs(t, c.Drain(ctx, ""), context.DeadlineExceeded)
	mustErrIs(t, <-errc, ErrClosed)
	waitDone(t, c.Done(), "conn")
}

// Our client and our server: Drain on one side, both close once the last stream ended.
func TestDrainEndToEnd(t *testing.T) {
	leakCheck(t)
	release := make(chan struct{})
	h := &HandlerFuncs{RequestResponseFunc: func(req Payload, s *Stream) {
		go func() { <-release; _ = s.Respond(Payload{Data: []byte("ok")}) }()
	}}
	client, server := pair(t, pairCfg{handler: h})
	errc := make(chan error, 1)
	go func() {
		m, _, err := client.RequestResponse(context.Background(), Payload{})
		if err == nil {
			m.Release()
		}
		errc <- err
	}()
	testutil.Eventually(t, func() bool { return server.InFlight() == 1 }, "request")
	drained := make(chan error, 1)
	go func() { drained <- server.Drain(context.Background(), "") }()
	testutil.Eventually(t, client.Draining, "client draining")
	close(release)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	waitDone(t, client.Done(), "client")
}
