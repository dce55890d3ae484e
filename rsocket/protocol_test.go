package rsocket

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/rsocket/frame"
	"github.com/rsgate/rsgate/rsocket/internal/bufpool"
)

func TestKeepaliveAnswer(t *testing.T) {
	leakCheck(t)
	p, _ := rawClient(t, nil, ServerOptions{}, setupFrame(false, nil, nil))
	p.send(frame.AppendKeepalive(nil, true, 0, []byte("ping data")))
	f := p.nextAny()
	if f.Has(frame.FlagRespond) || string(f.Data()) != "ping data" {
		t.Fatalf("answer %v data %q", f, f.Data())
	}
	// An answer (R clear) is not answered.
	p.send(frame.AppendKeepalive(nil, false, 0, []byte("pong")))
	p.quiet(50 * time.Millisecond)
}

func TestKeepaliveSentByClient(t *testing.T) {
	leakCheck(t)
	p, _ := rawServer(t, Options{KeepaliveInterval: 20 * time.Millisecond, MaxLifetime: 10 * time.Second})
	for i := 0; i < 3; i++ {
		select {
		case f := <-p.ch:
			if f.Type() != frame.TypeKeepalive || !f.Has(frame.FlagRespond) || f.StreamID() != 0 {
				t.Fatalf("got %v", f)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("no KEEPALIVE")
		}
	}
}

func TestLifetimeExpiry(t *testing.T) {
	leakCheck(t)
	p, c := rawServer(t, Options{KeepaliveInterval: 10 * time.Millisecond, MaxLifetime: 100 * time.Millisecond})
	// Keep the connection alive for a while by answering...
	stop := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(stop) {
		select {
		case f := <-p.ch:
			if f.Type() == frame.TypeKeepalive && f.Has(frame.FlagRespond) {
				p.send(frame.AppendKeepalive(nil, false, 0, nil))
			}
		case <-c.Done():
			t.Fatal("closed although the peer answered")
		}
	}
	// ... then go silent: the connection must close with ErrKeepaliveTimeout.
	start := time.Now()
	frames := p.closed()
	waitDone(t, c.Done(), "conn")
	if d := time.Since(start); d > time.Second {
		t.Fatalf("closed after %v", d)
	}
	mustErrIs(t, c.Err(), ErrKeepaliveTimeout)
	mustErrIs(t, c.Err(), ErrClosed)
	last := frames[len(frames)-1]
	if last.Type() != frame.TypeError || last.ErrorCode() != frame.CodeConnectionError {
		t.Fatalf("last frame %v", last)
	}
}

func TestLeaseHonoured(t *testing.T) {
	leakCheck(t)
	clk := &testutil.Clock{}
	p, c := rawServer(t, Options{Lease: true, Now: clk.Now})
	if c.LeaseAvailable() {
		t.Fatal("lease available before any LEASE")
	}
	_, _, err := c.RequestResponse(context.Background(), Payload{})
	mustErrIs(t, err, ErrNoLease)
	mustErrIs(t, fnfErr(c.FireAndForget(context.Background(), Payload{}, FireAndForgetOptions{})), ErrNoLease)
	_, err = c.RequestStream(Payload{}, 1, newCollector())
	mustErrIs(t, err, ErrNoLease)

	p.send(frame.AppendLease(nil, 10000, 2, nil))
	testutil.Eventually(t, c.LeaseAvailable, "lease")
	if err := fnfErr(c.FireAndForget(context.Background(), Payload{Data: []byte("1")}, FireAndForgetOptions{})); err != nil {
		t.Fatal(err)
	}
	if err := fnfErr(c.FireAndForget(context.Background(), Payload{Data: []byte("2")}, FireAndForgetOptions{})); err != nil {
		t.Fatal(err)
	}
	mustErrIs(t, fnfErr(c.FireAndForget(context.Background(), Payload{Data: []byte("3")}, FireAndForgetOptions{})), ErrNoLease)
	if c.LeaseAvailable() {
		t.Fatal("lease still available")
	}
	p.expect(frame.TypeRequestFNF, 1)
	p.expect(frame.TypeRequestFNF, 3)
	p.quiet(20 * time.Millisecond)

	// The newest LEASE replaces; it expires after its TTL (60 ms on the manual clock: valid until the
	// last nanosecond before, gone at the TTL).
	p.send(frame.AppendLease(nil, 60, 100, nil))
	testutil.Eventually(t, c.LeaseAvailable, "lease 2")
	if err := fnfErr(c.FireAndForget(context.Background(), Payload{}, FireAndForgetOptions{})); err != nil {
		t.Fatal(err)
	}
	clk.Advance(60*time.Millisecond - 1)
	if n, leased := c.LeaseLeft(); !c.LeaseAvailable() || n != 99 || !leased {
		t.Fatalf("lease before its TTL: available %v, left %d %v", c.LeaseAvailable(), n, leased)
	}
	clk.Advance(1)
	if c.LeaseAvailable() {
		t.Fatal("lease available after TTL")
	}
	if n, leased := c.LeaseLeft(); n != 0 || !leased {
		t.Fatalf("LeaseLeft after TTL = %d %v", n, leased)
	}
	mustErrIs(t, fnfErr(c.FireAndForget(context.Background(), Payload{}, FireAndForgetOptions{})), ErrNoLease)
}

func TestLeaseIssued(t *testing.T) {
	leakCheck(t)
	p, _ := rawClient(t, echoHandler(), ServerOptions{Lease: &LeaseGrant{TTL: 10 * time.Second, Requests: 2}},
		setupFrame(true, nil, nil))
	l := p.expect(frame.TypeLease, 0)
	if l.LeaseRequests() != 2 || l.LeaseTTL() != 10000 {
		t.Fatalf("lease %v", l)
	}
	for _, id := range []uint32{1, 3, 5} {
		p.send(frame.AppendRequestResponse(nil, id, false, nil, []byte("q")))
	}
	p.expect(frame.TypePayload, 1)
	p.expect(frame.TypePayload, 3)
	f := p.expect(frame.TypeError, 5)
	if f.ErrorCode() != frame.CodeRejected {
		t.Fatalf("got %v", f)
	}
}

func TestLeaseNotIssuedRejects(t *testing.T) {
	leakCheck(t)
	p, c := rawClient(t, echoHandler(), ServerOptions{}, setupFrame(true, nil, nil))
	p.send(frame.AppendRequestResponse(nil, 1, false, nil, []byte("q")))
	if f := p.expect(frame.TypeError, 1); f.ErrorCode() != frame.CodeRejected {
		t.Fatalf("got %v", f)
	}
	// The server-side requester must wait for the client's LEASE too.
	_, _, err := c.RequestResponse(context.Background(), Payload{})
	mustErrIs(t, err, ErrNoLease)
	if err := c.SendLease(time.Second, 1, []byte("lmd")); err != nil {
		t.Fatal(err)
	}
	if f := p.expect(frame.TypeLease, 0); f.LeaseRequests() != 1 || string(f.Metadata()) != "lmd" {
		t.Fatalf("got %v", f)
	}
	p.send(frame.AppendRequestResponse(nil, 3, false, nil, []byte("q")))
	p.expect(frame.TypePayload, 3)
}

// Leases end to end between our client and our server.
func TestLeaseEndToEnd(t *testing.T) {
	leakCheck(t)
	client, _ := pair(t, pairCfg{client: Options{Lease: true}, handler: echoHandler(),
		server: ServerOptions{Lease: &LeaseGrant{TTL: time.Minute, Requests: 3}}})
	testutil.Eventually(t, client.LeaseAvailable, "lease")
	for i := 0; i < 3; i++ {
		m, _, err := client.RequestResponse(context.Background(), Payload{Data: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		m.Release()
	}
	_, _, err := client.RequestResponse(context.Background(), Payload{})
	mustErrIs(t, err, ErrNoLease)
}

func TestUnknownStreamFramesIgnored(t *testing.T) {
	leakCheck(t)
	p, _ := rawClient(t, echoHandler(), ServerOptions{}, setupFrame(false, nil, nil))
	for _, b := range [][]byte{
		frame.AppendPayload(nil, 99, frame.FlagNext, nil, []byte("x")),
		frame.AppendError(nil, 99, frame.CodeApplicationError, "x"),
		frame.AppendCancel(nil, 99),
		frame.AppendRequestN(nil, 99, 5),
		frame.AppendPayload(nil, 0, frame.FlagNext, nil, []byte("x")), // PAYLOAD on stream 0
		frame.AppendCancel(nil, 0),
		frame.AppendMetadataPush(nil, []byte("m"))[:0], // placeholder replaced below
	} {
		if len(b) == 0 {
			// METADATA_PUSH on a non-0 stream "MUST be ignored".
			b = frame.AppendMetadataPush(nil, []byte("m"))
			b[3] = 7
		}
		p.send(b)
	}
	p.send(frame.AppendRequestResponse(nil, 2, false, nil, []byte("wrong parity")))
	p.send(frame.AppendResumeOK(nil, 0))
	p.send(frame.AppendRequestResponse(nil, 1, false, nil, []byte("ok")))
	if f := p.expect(frame.TypePayload, 1); string(f.Data()) != "ok" {
		t.Fatalf("got %v", f)
	}
	p.quiet(20 * time.Millisecond)
}

func TestUnknownFrameType(t *testing.T) {
	unknown := func(ignore bool) []byte {
		b := frame.AppendCancel(nil, 1)
		b[4] = 0x20 << 2 // type 0x20, undefined
		if ignore {
			b[4] |= 0x02 // I flag (0x200 in the 16-bit type+flags field)
		}
		return b
	}
	t.Run("with I", func(t *testing.T) {
		leakCheck(t)
		p, _ := rawClient(t, echoHandler(), ServerOptions{}, setupFrame(false, nil, nil))
		p.send(unknown(true))
		p.send(frame.AppendExt(nil, 1, true, 77, nil, []byte("x")))
		p.send(frame.AppendRequestResponse(nil, 1, false, nil, []byte("ok")))
		p.expect(frame.TypePayload, 1)
	})
	t.Run("without I", func(t *testing.T) {
		leakCheck(t)
		p, c := rawClient(t, echoHandler(), ServerOptions{}, setupFrame(false, nil, nil))
		p.send(unknown(false))
		frames := p.closed()
		if len(frames) != 1 || frames[0].Type() != frame.TypeError || frames[0].ErrorCode() != frame.CodeConnectionError {
			t.Fatalf("frames %v", frames)
		}
		waitDone(t, c.Done(), "conn")
		mustErrIs(t, c.Err(), ErrProtocol)
	})
	t.Run("malformed", func(t *testing.T) {
		leakCheck(t)
		p, c := rawClient(t, echoHandler(), ServerOptions{}, setupFrame(false, nil, nil))
		b := frame.AppendRequestN(nil, 1, 5)
		p.send(b[:8]) // truncated REQUEST_N
		frames := p.closed()
		if len(frames) != 1 || frames[0].ErrorCode() != frame.CodeConnectionError {
			t.Fatalf("frames %v", frames)
		}
		waitDone(t, c.Done(), "conn")
		mustErrIs(t, c.Err(), ErrProtocol)
	})
}

func TestRequestOnStreamInUseIgnored(t *testing.T) {
	leakCheck(t)
	calls := 0
	held := make(chan *Stream, 1)
	h := &HandlerFuncs{RequestResponseFunc: func(req Payload, s *Stream) {
		calls++ // reader goroutine only
		if string(req.Data) == "hold" {
			held <- s
			return
		}
		_ = s.Respond(req)
	}}
	p, _ := rawClient(t, h, ServerOptions{}, setupFrame(false, nil, nil))
	p.send(frame.AppendRequestResponse(nil, 1, false, nil, []byte("hold")))
	p.send(frame.AppendRequestResponse(nil, 1, false, nil, []byte("duplicate")))
	p.send(frame.AppendRequestResponse(nil, 3, false, nil, []byte("c")))
	if f := p.expect(frame.TypePayload, 3); string(f.Data()) != "c" {
		t.Fatalf("got %v", f)
	}
	if calls != 2 {
		t.Fatalf("handler called %d times", calls)
	}
	s := <-held
	_ = s.Respond(Payload{Data: []byte("held")})
	if f := p.expect(frame.TypePayload, 1); string(f.Data()) != "held" {
		t.Fatalf("got %v", f)
	}
}

func TestCancelRequestResponseByContext(t *testing.T) {
	leakCheck(t)
	p, c := rawServer(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.RequestResponse(ctx, Payload{Data: []byte("slow")})
		errc <- err
	}()
	f := p.expect(frame.TypeRequestResponse, 1)
	cancel()
	mustErrIs(t, <-errc, context.Canceled)
	p.expect(frame.TypeCancel, f.StreamID())
	// Late answers for the canceled stream are dropped quietly.
	p.send(frame.AppendPayload(nil, 1, frame.FlagNext|frame.FlagComplete, nil, []byte("late")))
	p.send(frame.AppendError(nil, 1, frame.CodeApplicationError, "late"))
	if c.InFlight() != 0 {
		t.Fatal("stream left")
	}
	go func() {
		m, _, err := c.RequestResponse(context.Background(), Payload{Data: []byte("next")})
		if err == nil {
			m.Release()
		}
		errc <- err
	}()
	p.expect(frame.TypeRequestResponse, 3)
	p.send(frame.AppendPayload(nil, 3, frame.FlagNext, nil, []byte("answer without C"))) // C assumed
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestResponderSeesCancel(t *testing.T) {
	leakCheck(t)
	got := make(chan *Stream, 1)
	h := &HandlerFuncs{RequestResponseFunc: func(req Payload, s *Stream) { got <- s }}
	p, c := rawClient(t, h, ServerOptions{}, setupFrame(false, nil, nil))
	p.send(frame.AppendRequestResponse(nil, 1, false, nil, []byte("a")))
	s := <-got
	p.send(frame.AppendCancel(nil, 1))
	waitDone(t, s.Done(), "responder stream")
	mustErrIs(t, s.Respond(Payload{Data: []byte("too late")}), ErrCanceled)
	mustErrIs(t, s.Err(), ErrCanceled)
	p.quiet(20 * time.Millisecond)
	if c.InFlight() != 0 {
		t.Fatal("stream left")
	}
}

func TestResponderCancelSendsCanceledError(t *testing.T) {
	leakCheck(t)
	h := &HandlerFuncs{RequestStreamFunc: func(req Payload, n uint32, s *Stream) { s.Cancel() }}
	p, _ := rawClient(t, h, ServerOptions{}, setupFrame(false, nil, nil))
	p.send(frame.AppendRequestStream(nil, 1, 5, false, nil, []byte("a")))
	if f := p.expect(frame.TypeError, 1); f.ErrorCode() != frame.CodeCanceled {
		t.Fatalf("got %v", f)
	}
}

// The channel requester sends no PAYLOAD until the responder sends REQUEST_N; a stream ERROR ends both
// directions.
func TestChannelCreditAndError(t *testing.T) {
	leakCheck(t)
	p, c := rawServer(t, Options{})
	sub := newCollector()
	st, err := c.RequestChannel(Payload{Data: []byte("first")}, 2, false, sub)
	if err != nil {
		t.Fatal(err)
	}
	f := p.expect(frame.TypeRequestChannel, 1)
	if f.InitialRequestN() != 2 || f.Has(frame.FlagComplete) || string(f.Data()) != "first" {
		t.Fatalf("got %v", f)
	}
	sent := make(chan error, 3)
	for i := 0; i < 3; i++ {
		go func() { sent <- st.Send(context.Background(), Payload{Data: []byte("item")}) }()
	}
	p.quiet(30 * time.Millisecond) // no credit yet: nothing may be sent
	p.send(frame.AppendRequestN(nil, 1, 1))
	p.expect(frame.TypePayload, 1)
	p.quiet(30 * time.Millisecond)
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	// Items within the credit we granted (2) are delivered.
	p.send(frame.AppendPayload(nil, 1, frame.FlagNext, nil, []byte("in1")))
	p.send(frame.AppendError(nil, 1, frame.CodeApplicationError, "broken"))
	sub.wait(t)
	items, _, serr := sub.snapshot()
	if len(items) != 1 || items[0] != "in1" {
		t.Fatalf("items %v", items)
	}
	mustCode(t, serr, frame.CodeApplicationError)
	for i := 0; i < 2; i++ {
		mustCode(t, <-sent, frame.CodeApplicationError)
	}
	waitDone(t, st.Done(), "channel")
	mustCode(t, st.Send(context.Background(), Payload{}), frame.CodeApplicationError)
}

// Unbounded credit (2^31-1) and saturating Request.
func TestUnboundedCredit(t *testing.T) {
	leakCheck(t)
	p, c := rawServer(t, Options{})
	st, err := c.RequestChannel(Payload{}, frame.MaxRequestN, false, newCollector())
	if err != nil {
		t.Fatal(err)
	}
	p.expect(frame.TypeRequestChannel, 1)
	st.Request(5) // inbound already unbounded: nothing sent
	p.send(frame.AppendRequestN(nil, 1, frame.MaxRequestN))
	for i := 0; i < 100; i++ {
		if err := st.Send(context.Background(), Payload{Data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 100; i++ {
		p.expect(frame.TypePayload, 1)
	}
	st2, err := c.RequestStream(Payload{}, 1, newCollector())
	if err != nil {
		t.Fatal(err)
	}
	p.expect(frame.TypeRequestStream, 3)
	st2.Request(1<<32 - 1)
	if f := p.expect(frame.TypeRequestN, 3); f.RequestN() != frame.MaxRequestN {
		t.Fatalf("got %v", f)
	}
	st2.Request(1)
	p.quiet(20 * time.Millisecond)
}

func TestStreamIDsExhausted(t *testing.T) {
	leakCheck(t)
	p, c := rawServer(t, Options{})
	c.smu.Lock()
	c.nextID = frame.MaxStreamID
	c.smu.Unlock()
	if err := fnfErr(c.FireAndForget(context.Background(), Payload{}, FireAndForgetOptions{})); err != nil {
		t.Fatal(err)
	}
	p.expect(frame.TypeRequestFNF, frame.MaxStreamID)
	mustErrIs(t, fnfErr(c.FireAndForget(context.Background(), Payload{}, FireAndForgetOptions{})), ErrStreamIDsExhausted)
	_, _, err := c.RequestResponse(context.Background(), Payload{})
	mustErrIs(t, err, ErrStreamIDsExhausted)
}

func TestCloseFailsInFlight(t *testing.T) {
	leakCheck(t)
	p, c := rawServer(t, Options{})
	errc := make(chan error, 2)
	sub := newCollector()
	if _, err := c.RequestStream(Payload{}, 1, sub); err != nil {
		t.Fatal(err)
	}
	go func() { // after RequestStream took stream id 1
		_, _, err := c.RequestResponse(context.Background(), Payload{Data: []byte("a")})
		errc <- err
	}()
	p.expect(frame.TypeRequestStream, 1)
	p.expect(frame.TypeRequestResponse, 3)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	mustErrIs(t, <-errc, ErrClosed)
	sub.wait(t)
	_, _, serr := sub.snapshot()
	mustErrIs(t, serr, ErrClosed)
	frames := p.closed()
	if len(frames) != 1 || frames[0].ErrorCode() != frame.CodeConnectionClose {
		t.Fatalf("frames %v", frames)
	}
	_, _, err := c.RequestResponse(context.Background(), Payload{})
	mustErrIs(t, err, ErrClosed)
}

func TestConnectionErrorFromPeer(t *testing.T) {
	leakCheck(t)
	p, c := rawServer(t, Options{})
	errc := pendingRR(p, c)
	p.send(frame.AppendError(nil, 0, frame.CodeConnectionError, "server exploded"))
	err := <-errc
	mustErrIs(t, err, ErrClosed)
	if e := mustCode(t, err, frame.CodeConnectionError); e.Message != "server exploded" {
		t.Fatalf("message %q", e.Message)
	}
	waitDone(t, c.Done(), "conn")
	if !strings.Contains(c.Err().Error(), "server exploded") {
		t.Fatalf("Err %v", c.Err())
	}
}

func TestPeerDisconnectFailsStreams(t *testing.T) {
	leakCheck(t)
	p, c := rawServer(t, Options{})
	errc := pendingRR(p, c)
	_ = p.tc.Close()
	err := <-errc
	mustErrIs(t, err, ErrClosed)
	waitDone(t, c.Done(), "conn")
	if errors.Is(err, ErrProtocol) {
		t.Fatal("disconnect reported as protocol error")
	}
}

func TestFragmentationOnTheWire(t *testing.T) {
	leakCheck(t)
	p, c := rawServer(t, Options{MTU: 64})
	md := bytes.Repeat([]byte("m"), 100)
	data := bytes.Repeat([]byte("d"), 300)
	errc := make(chan error, 1)
	var got *Message
	go func() {
		m, _, err := c.RequestResponse(context.Background(), Payload{Metadata: md, Data: data})
		got = m
		errc <- err
	}()
	var gmd, gdata []byte
	first := true
	for {
		f := p.next()
		if len(f) > 64 {
			t.Fatalf("fragment of %d bytes", len(f))
		}
		want := frame.TypePayload
		if first {
			want = frame.TypeRequestResponse
		}
		if f.Type() != want || f.StreamID() != 1 {
			t.Fatalf("got %v", f)
		}
		if len(gdata) > 0 && f.Metadata() != nil {
			t.Fatal("metadata after data")
		}
		gmd = append(gmd, f.Metadata()...)
		gdata = append(gdata, f.Data()...)
		first = false
		if !f.Has(frame.FlagFollows) {
			break
		}
	}
	if !bytes.Equal(gmd, md) || !bytes.Equal(gdata, data) {
		t.Fatal("fragments do not reassemble to the request")
	}
	// Answer in fragments the way rsocket-go v0.8.12 does: C already on the first fragment.
	p.send(frame.AppendPayload(nil, 1, frame.FlagFollows|frame.FlagNext|frame.FlagComplete, []byte("ab"), nil))
	p.send(frame.AppendPayload(nil, 1, frame.FlagFollows|frame.FlagNext, []byte("cd"), []byte("12")))
	p.send(frame.AppendPayload(nil, 1, frame.FlagNext|frame.FlagComplete, nil, []byte("34")))
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if string(got.Metadata) != "abcd" || string(got.Data) != "1234" {
		t.Fatalf("reassembled %q %q", got.Metadata, got.Data)
	}
	got.Release()
}

func TestFragmentationRoundTrip1MiB(t *testing.T) {
	forBoth(t, func(t *testing.T, tcp bool) {
		leakCheck(t)
		client, _ := pair(t, pairCfg{tcp: tcp, client: Options{MTU: 64}, server: ServerOptions{MTU: 64},
			handler: echoHandler()})
		data := make([]byte, 1<<20)
		for i := range data {
			data[i] = byte(i * 7)
		}
		md := bytes.Repeat([]byte("meta"), 50)
		m, _, err := client.RequestResponse(context.Background(), Payload{Metadata: md, Data: data})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m.Data, data) || !bytes.Equal(m.Metadata, md) {
			t.Fatal("1 MiB payload corrupted")
		}
		m.Release()
		// A fragmented stream of items, and a fragmented channel request with C.
		sub := newCollector()
		big := strings.Repeat("z", 1000)
		h := &HandlerFuncs{}
		_ = h
		st, err := client.RequestChannel(Payload{Data: []byte(big)}, 10, true, sub)
		if err != nil {
			t.Fatal(err)
		}
		sub.wait(t)
		_, _, serr := sub.snapshot()
		mustCode(t, serr, frame.CodeRejected) // echo handler has no channel function
		waitDone(t, st.Done(), "channel")
	})
}

func TestReassemblyLimit(t *testing.T) {
	t.Run("answer", func(t *testing.T) {
		leakCheck(t)
		p, c := rawServer(t, Options{MaxReassembledSize: 100})
		errc := pendingRR(p, c)
		chunk := bytes.Repeat([]byte("x"), 60)
		p.send(frame.AppendPayload(nil, 1, frame.FlagFollows|frame.FlagNext, nil, chunk))
		p.send(frame.AppendPayload(nil, 1, frame.FlagFollows|frame.FlagNext, nil, chunk))
		p.send(frame.AppendPayload(nil, 1, frame.FlagNext, nil, chunk)) // dropped: stream is gone
		mustErrIs(t, <-errc, ErrTooLarge)
		p.expect(frame.TypeCancel, 1)
	})
	t.Run("request", func(t *testing.T) {
		leakCheck(t)
		p, _ := rawClient(t, echoHandler(), ServerOptions{MaxReassembledSize: 100}, setupFrame(false, nil, nil))
		chunk := bytes.Repeat([]byte("x"), 60)
		p.send(frame.AppendRequestResponse(nil, 1, true, nil, chunk))
		p.send(frame.AppendPayload(nil, 1, frame.FlagFollows|frame.FlagNext, nil, chunk))
		p.send(frame.AppendPayload(nil, 1, frame.FlagNext, nil, chunk))
		if f := p.expect(frame.TypeError, 1); f.ErrorCode() != frame.CodeRejected {
			t.Fatalf("got %v", f)
		}
		// Within the limit, a fragmented request is served.
		p.send(frame.AppendRequestResponse(nil, 3, true, []byte("m"), chunk[:30]))
		p.send(frame.AppendPayload(nil, 3, frame.FlagNext, nil, chunk[:30]))
		f := p.expect(frame.TypePayload, 3)
		if string(f.Metadata()) != "m" || len(f.Data()) != 60 {
			t.Fatalf("got %v", f)
		}
	})
}

// Close called from a Handler (on the reader goroutine) must not deadlock.
func TestCloseFromHandler(t *testing.T) {
	leakCheck(t)
	var server *Conn
	h := &HandlerFuncs{RequestResponseFunc: func(req Payload, s *Stream) {
		_ = server.Close()
	}}
	p, c := rawClient(t, h, ServerOptions{}, setupFrame(false, nil, nil))
	server = c
	p.send(frame.AppendRequestResponse(nil, 1, false, nil, []byte("close please")))
	frames := p.closed()
	if len(frames) != 1 || frames[0].ErrorCode() != frame.CodeConnectionClose {
		t.Fatalf("frames %v", frames)
	}
	waitDone(t, c.Done(), "conn")
}

// A fragmented answer for a stream we canceled is dropped, and its buffer returned.
func TestReassemblyDroppedAfterCancel(t *testing.T) {
	leakCheck(t)
	bufs := bufpool.Outstanding()
	p, c := rawServer(t, Options{})
	sub := newCollector()
	st, err := c.RequestStream(Payload{}, 5, sub)
	if err != nil {
		t.Fatal(err)
	}
	p.expect(frame.TypeRequestStream, 1)
	p.send(frame.AppendPayload(nil, 1, frame.FlagFollows|frame.FlagNext, nil, []byte("part1")))
	p.send(frame.AppendPayload(nil, 1, frame.FlagFollows|frame.FlagNext, nil, []byte("part2")))
	testutil.Eventually(t, func() bool { return c.InFlight() == 1 }, "stream")
	st.Cancel()
	p.expect(frame.TypeCancel, 1)
	p.send(frame.AppendPayload(nil, 1, frame.FlagFollows|frame.FlagNext, nil, []byte("part3")))
	p.send(frame.AppendPayload(nil, 1, frame.FlagNext, nil, []byte("part4")))
	// Let the reader process them, then check nothing reached the subscriber.
	p.send(frame.AppendKeepalive(nil, true, 0, nil))
	testutil.Eventually(t, func() bool { return len(p.ch) > 0 }, "keepalive answer")
	if items, _, _ := sub.snapshot(); len(items) != 0 {
		t.Fatalf("items after cancel: %v", items)
	}
	if n := bufpool.Outstanding(); n != bufs {
		t.Fatalf("%d reassembly buffers outstanding while the connection is open", n-bufs)
	}
}

// A fragmented request counts as one lease request; a fragmented item as one credit.
func TestFragmentsCountOnce(t *testing.T) {
	leakCheck(t)
	items := make(chan *Stream, 1)
	h := &HandlerFuncs{
		RequestResponseFunc: func(req Payload, s *Stream) { _ = s.Respond(Payload{Data: []byte(strconv.Itoa(len(req.Data)))}) },
		RequestStreamFunc:   func(req Payload, n uint32, s *Stream) { items <- s },
	}
	p, _ := rawClient(t, h, ServerOptions{MTU: 64, Lease: &LeaseGrant{TTL: time.Minute, Requests: 2}}, setupFrame(true, nil, nil))
	p.expect(frame.TypeLease, 0)
	chunk := bytes.Repeat([]byte("x"), 50)
	p.send(frame.AppendRequestResponse(nil, 1, true, nil, chunk))
	p.send(frame.AppendPayload(nil, 1, frame.FlagFollows|frame.FlagNext, nil, chunk))
	p.send(frame.AppendPayload(nil, 1, frame.FlagNext, nil, chunk))
	if f := p.expect(frame.TypePayload, 1); string(f.Data()) != "150" {
		t.Fatalf("got %v", f)
	}
	// Second request (the lease allows 2): a stream with credit 1; the responder's item is fragmented
	// (MTU 64) and still fits in that one credit.
	p.send(frame.AppendRequestStream(nil, 3, 1, false, nil, []byte("s")))
	s := <-items
	if err := s.Send(context.Background(), Payload{Data: bytes.Repeat([]byte("y"), 200)}); err != nil {
		t.Fatal(err)
	}
	var data []byte
	for {
		f := p.expect(frame.TypePayload, 3)
		data = append(data, f.Data()...)
		if !f.Has(frame.FlagFollows) {
			break
		}
	}
	if len(data) != 200 {
		t.Fatalf("item of %d bytes", len(data))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	mustErrIs(t, s.Send(ctx, Payload{Data: []byte("z")}), context.DeadlineExceeded) // credit used up
}

// The reassemblies of one connection together are bounded (4 x MaxReassembledSize).
func TestReassemblyConnectionLimit(t *testing.T) {
	leakCheck(t)
	p, _ := rawClient(t, echoHandler(), ServerOptions{MaxReassembledSize: 100}, setupFrame(false, nil, nil))
	chunk := bytes.Repeat([]byte("x"), 90)
	for id := uint32(1); id <= 9; id += 2 { // 5 requests of 90 bytes pending: 450 > 400
		p.send(frame.AppendRequestResponse(nil, id, true, nil, chunk))
	}
	if f := p.expect(frame.TypeError, 9); f.ErrorCode() != frame.CodeRejected {
		t.Fatalf("got %v", f)
	}
	for id := uint32(1); id <= 7; id += 2 {
		p.send(frame.AppendPayload(nil, id, frame.FlagNext, nil, []byte("y")))
		if f := p.expect(frame.TypePayload, id); len(f.Data()) != 91 {
			t.Fatalf("got %v", f)
		}
	}
}
