package rsocket

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/rsocket/frame"
	"github.com/rsgate/rsgate/rsocket/transport"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustBytes(t testing.TB, what string, got []byte, wantHex string) {
	t.Helper()
	if want := mustHex(t, wantHex); !bytes.Equal(got, want) {
		t.Fatalf("%s:\n got  %x\n want %x", what, got, want)
	}
}

// pipeDialer hands out the client ends of new pipes; the test takes the server ends from srv.
type pipeDialer struct{ srv chan transport.Conn }

func newPipeDialer() *pipeDialer { return &pipeDialer{srv: make(chan transport.Conn, 4)} }

func (d *pipeDialer) dial(ctx context.Context) (transport.Conn, error) {
	a, b := transport.Pipe()
	d.srv <- a
	return b, ctx.Err()
}

func (d *pipeDialer) next(t testing.TB) transport.Conn {
	t.Helper()
	select {
	case c := <-d.srv:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("the client did not dial again")
	}
	return nil
}

// Resuming Operation, client side, byte for byte: SETUP carries R and the token; KEEPALIVE carries the
// last received position (bytes of PAYLOAD frames received); RESUME carries the token, the last received
// server position and the first available client position (advanced by the server's KEEPALIVE position);
// after RESUME_OK the client sends again exactly the frames after the server's position; an in-flight
// request-response and a stream then complete on the new transport.
func TestResumeClientGolden(t *testing.T) {
	leakCheck(t)
	d := newPipeDialer()
	a, b := transport.Pipe()
	p1 := newRawPeer(t, a)
	c, err := Connect(context.Background(), b, Options{
		KeepaliveInterval: time.Hour, MaxLifetime: time.Hour, MetadataMIME: "m", DataMIME: "d",
		Resume: ResumeOptions{Enabled: true, Token: []byte("tok"), Dial: d.dial},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	setup := p1.expect(frame.TypeSetup, 0)
	// SETUP (R flag 0x80): version 1.0, keepalive/lifetime 3600000 ms, token "tok", MIME "m" and "d".
	mustBytes(t, "SETUP", setup, "00000000"+"0480"+"00010000"+"0036ee80"+"0036ee80"+"0003746f6b"+"016d"+"0164")

	rr := make(chan string, 1)
	go func() {
		m, _, err := c.RequestResponse(context.Background(), Payload{Data: []byte("q")})
		if err != nil {
			rr <- "error: " + err.Error()
			return
		}
		rr <- string(m.Data)
		m.Release()
	}()
	req := p1.expect(frame.TypeRequestResponse, 1) // 7 bytes: position 0..7
	col := newCollector()
	st, err := c.RequestStream(Payload{Data: []byte("s")}, 10, col)
	if err != nil {
		t.Fatal(err)
	}
	sreq := p1.expect(frame.TypeRequestStream, 3) // 11 bytes: position 7..18
	mustBytes(t, "REQUEST_STREAM", sreq, "00000003"+"1800"+"0000000a"+"73")
	p1.send(frame.AppendPayload(nil, 3, frame.FlagNext, nil, []byte("i1"))) // 8 bytes received

	// The server confirms the REQUEST_RESPONSE only (position 7) and asks for ours.
	p1.send(frame.AppendKeepalive(nil, true, 7, []byte("k")))
	ka := p1.nextAny()
	mustBytes(t, "KEEPALIVE answer", ka, "00000000"+"0c00"+"0000000000000008"+"6b")
	_ = req

	// Cut. The client dials again and sends RESUME.
	_ = a.Close()
	p2 := newRawPeer(t, d.next(t))
	resume := p2.nextAny()
	// RESUME: version 1.0, token "tok", last received server position 8, first available client
	// position 7.
	mustBytes(t, "RESUME", resume, "00000000"+"3400"+"00010000"+"0003746f6b"+"0000000000000008"+"0000000000000007")
	p2.send(frame.AppendResumeOK(nil, 7)) // the server has the REQUEST_RESPONSE, not the REQUEST_STREAM
	again := p2.expect(frame.TypeRequestStream, 3)
	if !bytes.Equal(again, sreq) {
		t.Fatalf("retransmitted %x, sent first %x", []byte(again), []byte(sreq))
	}
	p2.send(frame.AppendPayload(nil, 1, frame.FlagNext|frame.FlagComplete, nil, []byte("answer")))
	p2.send(frame.AppendPayload(nil, 3, frame.FlagNext|frame.FlagComplete, nil, []byte("i2")))
	select {
	case got := <-rr:
		if got != "answer" {
			t.Fatalf("request-response across the resume: %s", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("request-response did not complete after the resume")
	}
	col.wait(t)
	items, _, serr := col.snapshot()
	if serr != nil || len(items) != 2 || items[0] != "i1" || items[1] != "i2" {
		t.Fatalf("stream items %q, %v", items, serr)
	}
	waitDone(t, st.Done(), "stream")
	// Positions continue: 8 + 12 (PAYLOAD "answer") + 8 (PAYLOAD "i2") = 28.
	p2.send(frame.AppendKeepalive(nil, true, 18, nil))
	mustBytes(t, "KEEPALIVE after resume", p2.nextAny(), "00000000"+"0c00"+"000000000000001c")
}

// The client gives up with ErrResumeRejected when the server answers RESUME with REJECTED_RESUME; the
// in-flight request fails with it.
func TestResumeClientRejected(t *testing.T) {
	leakCheck(t)
	d := newPipeDialer()
	a, b := transport.Pipe()
	p1 := newRawPeer(t, a)
	c, err := Connect(context.Background(), b, Options{Resume: ResumeOptions{Enabled: true, Dial: d.dial}})
	if err != nil {
		t.Fatal(err)
	}
	p1.expect(frame.TypeSetup, 0)
	errc := pendingRR(p1, c)
	_ = a.Close()
	p2 := newRawPeer(t, d.next(t))
	p2.expect(frame.TypeResume, 0)
	p2.send(frame.AppendError(nil, 0, frame.CodeRejectedResume, "unknown token"))
	err = <-errc
	mustErrIs(t, err, ErrResumeRejected)
	mustCode(t, err, frame.CodeRejectedResume)
	waitDone(t, c.Done(), "session")
}

// resumeServer starts our server side with resumption against a raw client that sent SETUP with token.
func resumeServer(t *testing.T, h Handler, opts ServerOptions) (*rawPeer, transport.Conn, *Conn) {
	t.Helper()
	a, b := transport.Pipe()
	p := newRawPeer(t, a)
	p.send(frame.AppendSetup(nil, &frame.Setup{Major: 1, Keepalive: 60000, Lifetime: 120000, Token: []byte("tok"),
		MetadataMIME: "m", DataMIME: "d"}, nil, nil))
	c, err := Accept(context.Background(), b, opts, func(s *SetupInfo, _ *Conn) (Handler, error) {
		if !s.Resume || string(s.Token) != "tok" {
			t.Errorf("SetupInfo resume %v token %q", s.Resume, s.Token)
		}
		return h, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return p, a, c
}

// streamHandler answers request-stream with items "0", "1", ... n-1 under credit, then completes.
func digitStream(n int) Handler {
	return &HandlerFuncs{RequestStreamFunc: func(_ Payload, _ uint32, s *Stream) {
		go func() {
			for i := 0; i < n; i++ {
				if s.Send(context.Background(), Payload{Data: []byte{byte('0' + i)}}) != nil {
					return
				}
			}
			_ = s.Complete()
		}()
	}}
}

// Resuming Operation, server side, byte for byte, with rsocket-js 1.0's swapped version (0.1): the
// server answers RESUME_OK with its last received client position and sends again the items after the
// client's position; the stream continues under new credit.
func TestResumeServerGolden(t *testing.T) {
	leakCheck(t)
	opts := ServerOptions{Resume: ResumeOptions{Enabled: true}}
	opts.Sessions = NewSessions(opts.Resume)
	p1, a1, c := resumeServer(t, digitStream(3), opts)
	p1.send(frame.AppendRequestStream(nil, 1, 2, false, nil, []byte("go"))) // 12 bytes
	mustBytes(t, "item 0", p1.expect(frame.TypePayload, 1), "00000001"+"2820"+"30")
	mustBytes(t, "item 1", p1.expect(frame.TypePayload, 1), "00000001"+"2820"+"31")
	// The client confirms item 0 only.
	p1.send(frame.AppendKeepalive(nil, true, 7, nil))
	mustBytes(t, "KEEPALIVE answer", p1.nextAny(), "00000000"+"0c00"+"000000000000000c")
	_ = a1.Close()
	testutil.Eventually(t, func() bool { return !c.Bound() }, "the session to detach")

	a2, b2 := transport.Pipe()
	p2 := newRawPeer(t, a2)
	// rsocket-js 1.0 writes version 0.1 in RESUME.
	p2.send(frame.AppendResume(nil, 0, 1, []byte("tok"), 7, 12))
	if nc, err := Accept(context.Background(), b2, opts, nil); !errors.Is(err, ErrResumed) || nc != c {
		t.Fatalf("Accept(RESUME) = %v, %v; want ErrResumed", nc, err)
	}
	mustBytes(t, "RESUME_OK", p2.nextAny(), "00000000"+"3800"+"000000000000000c")
	mustBytes(t, "item 1 again", p2.expect(frame.TypePayload, 1), "00000001"+"2820"+"31")
	p2.send(frame.AppendRequestN(nil, 1, 5))
	mustBytes(t, "item 2", p2.expect(frame.TypePayload, 1), "00000001"+"2820"+"32")
	last := p2.expect(frame.TypePayload, 1)
	if !frame.Frame(last).Has(frame.FlagComplete) {
		t.Fatalf("want completion, got %v", last)
	}
	if c.Err() != nil || !c.Bound() {
		t.Fatalf("session after resume: err %v bound %v", c.Err(), c.Bound())
	}
}

// REJECTED_RESUME: unknown token; a position the server no longer holds (the session ends); no
// resumption configured.
func TestResumeServerRejects(t *testing.T) {
	leakCheck(t)
	opts := ServerOptions{Resume: ResumeOptions{Enabled: true}}
	opts.Sessions = NewSessions(opts.Resume)
	reject := func(resume []byte, o ServerOptions) {
		t.Helper()
		a, b := transport.Pipe()
		p := newRawPeer(t, a)
		p.send(resume)
		if _, err := Accept(context.Background(), b, o, nil); err == nil {
			t.Fatal("Accept did not fail")
		}
		f := p.expect(frame.TypeError, 0)
		if f.ErrorCode() != frame.CodeRejectedResume {
			t.Fatalf("got %v, want REJECTED_RESUME", f)
		}
	}
	reject(frame.AppendResume(nil, 1, 0, []byte("nope"), 0, 0), opts)
	reject(frame.AppendResume(nil, 1, 0, []byte("tok"), 0, 0), ServerOptions{})

	p1, a1, c := resumeServer(t, digitStream(3), opts)
	p1.send(frame.AppendRequestStream(nil, 1, 2, false, nil, []byte("go")))
	p1.expect(frame.TypePayload, 1)
	p1.expect(frame.TypePayload, 1)
	p1.send(frame.AppendKeepalive(nil, true, 14, nil)) // both items confirmed: dropped from the buffer
	p1.nextAny()
	_ = a1.Close()
	testutil.Eventually(t, func() bool { return !c.Bound() }, "the session to detach")
	reject(frame.AppendResume(nil, 1, 0, []byte("tok"), 7, 12), opts) // item 1 is gone
	waitDone(t, c.Done(), "rejected session")
	mustErrIs(t, c.Err(), ErrResumeRejected)
	if opts.Sessions.Len() != 0 {
		t.Fatalf("%d sessions left", opts.Sessions.Len())
	}
}

// A detached session ends with ErrResumeExpired after SessionDuration; its streams fail.
func TestResumeSessionExpires(t *testing.T) {
	leakCheck(t)
	opts := ServerOptions{Resume: ResumeOptions{Enabled: true, SessionDuration: 50 * time.Millisecond}}
	opts.Sessions = NewSessions(opts.Resume)
	p1, a1, c := resumeServer(t, digitStream(3), opts)
	p1.send(frame.AppendRequestStream(nil, 1, 1, false, nil, []byte("go")))
	p1.expect(frame.TypePayload, 1)
	_ = a1.Close()
	waitDone(t, c.Done(), "expired session")
	mustErrIs(t, c.Err(), ErrResumeExpired)
	if opts.Sessions.Len() != 0 {
		t.Fatalf("%d sessions left", opts.Sessions.Len())
	}
}

// The resume buffer drops what the peer confirmed and refuses positions it cannot honour.
func TestResumeBuffer(t *testing.T) {
	r := resumeBuffer{limit: 100}
	r.mu.Lock()
	r.append([]byte("aaaa"), nil, nil)           // 0..4
	r.append([]byte("bb"), []byte("b"), nil)     // 4..7
	r.append([]byte("c"), nil, []byte("cccccc")) // 7..14
	r.mu.Unlock()
	if _, err := r.trim(5); !errors.Is(err, errPosition) {
		t.Fatalf("trim inside a frame: %v", err)
	}
	if r.first != 4 || r.size.Load() != 10 {
		t.Fatalf("after trim(5): first %d size %d", r.first, r.size.Load())
	}
	var got []string
	r.mu.Lock()
	err := r.from(7, func(f []byte) error { got = append(got, string(f)); return nil })
	r.mu.Unlock()
	if err != nil || len(got) != 1 || got[0] != "ccccccc" {
		t.Fatalf("from(7) = %q, %v", got, err)
	}
	r.mu.Lock()
	if err := r.from(3, func([]byte) error { return nil }); !errors.Is(err, errPosition) {
		t.Fatalf("from before first: %v", err)
	}
	if err := r.from(15, func([]byte) error { return nil }); !errors.Is(err, errPosition) {
		t.Fatalf("from beyond sent: %v", err)
	}
	// Over the limit: the oldest frames go.
	r.append(make([]byte, 120), nil, nil)
	r.mu.Unlock()
	if r.first != 14 || r.size.Load() != 120 {
		t.Fatalf("over the limit: first %d size %d", r.first, r.size.Load())
	}
}

// Close while a RESUME waits for its answer ends the handshake at once (it does not wait for the
// handshake timeout), and the session ends.
func TestResumeCloseDuringHandshake(t *testing.T) {
	leakCheck(t)
	d := newPipeDialer()
	a, b := transport.Pipe()
	p1 := newRawPeer(t, a)
	c, err := Connect(context.Background(), b, Options{Resume: ResumeOptions{Enabled: true, Dial: d.dial}})
	if err != nil {
		t.Fatal(err)
	}
	p1.expect(frame.TypeSetup, 0)
	_ = a.Close()
	p2 := newRawPeer(t, d.next(t))
	p2.expect(frame.TypeResume, 0) // and never answered
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	waitDone(t, c.Done(), "session closed during the resume handshake")
	<-closed
	mustErrIs(t, c.Err(), ErrClosed)
}
