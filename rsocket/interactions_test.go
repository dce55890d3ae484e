package rsocket

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/rsocket/frame"
	"github.com/rsgate/rsgate/rsocket/transport"
)

func forBoth(t *testing.T, f func(t *testing.T, tcp bool)) {
	t.Run("pipe", func(t *testing.T) { f(t, false) })
	t.Run("tcp", func(t *testing.T) { f(t, true) })
}

func TestRequestResponse(t *testing.T) {
	forBoth(t, func(t *testing.T, tcp bool) {
		leakCheck(t)
		client, _ := pair(t, pairCfg{tcp: tcp, handler: echoHandler()})
		for _, p := range []Payload{
			{Metadata: []byte("md"), Data: []byte("hello")},
			{Data: []byte("no metadata")},
			{Metadata: []byte{}, Data: []byte{}},
			{Metadata: nil, Data: nil},
			{Data: bytes.Repeat([]byte("x"), 100000)},
		} {
			m, _, err := client.RequestResponse(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := payloadString(m.Payload), payloadString(p); got != want && len(p.Data) < 100 {
				t.Fatalf("got %q want %q", got, want)
			}
			if !bytes.Equal(m.Data, p.Data) || (m.Metadata == nil) != (p.Metadata == nil) {
				t.Fatalf("payload mismatch")
			}
			m.Release()
		}
		if n := client.InFlight(); n != 0 {
			t.Fatalf("in flight %d after all requests", n)
		}
	})
}

func TestRequestResponseServerToClient(t *testing.T) {
	leakCheck(t)
	client, server := pair(t, pairCfg{client: Options{Handler: echoHandler()}})
	_ = client
	m, _, err := server.RequestResponse(context.Background(), Payload{Data: []byte("from server")})
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != "from server" {
		t.Fatalf("got %q", m.Data)
	}
	m.Release()
}

func TestRequestResponseConcurrent(t *testing.T) {
	forBoth(t, func(t *testing.T, tcp bool) {
		leakCheck(t)
		// The server answers from other goroutines, in a different order.
		h := &HandlerFuncs{RequestResponseFunc: func(req Payload, s *Stream) {
			data := append([]byte(nil), req.Data...)
			go func() { _ = s.Respond(Payload{Metadata: []byte("r"), Data: data}) }()
		}}
		client, _ := pair(t, pairCfg{tcp: tcp, handler: h})
		const n = 2000
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				want := strconv.Itoa(i)
				m, _, err := client.RequestResponse(context.Background(), Payload{Data: []byte(want)})
				if err != nil {
					errs <- err
					return
				}
				if string(m.Data) != want || string(m.Metadata) != "r" {
					errs <- fmt.Errorf("request %s answered with %q", want, m.Data)
				}
				m.Release()
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	})
}

func TestRequestResponseApplicationError(t *testing.T) {
	leakCheck(t)
	h := &HandlerFuncs{RequestResponseFunc: func(req Payload, s *Stream) {
		_ = s.Error(frame.CodeApplicationError, "boom: "+string(req.Data))
	}}
	client, _ := pair(t, pairCfg{handler: h})
	_, _, err := client.RequestResponse(context.Background(), Payload{Data: []byte("x")})
	e := mustCode(t, err, frame.CodeApplicationError)
	if e.Message != "boom: x" {
		t.Fatalf("message %q", e.Message)
	}
	if !errorsIsCode(err, frame.CodeApplicationError) {
		t.Fatal("errors.Is with &Error{Code} did not match")
	}
}

func errorsIsCode(err error, code frame.ErrorCode) bool {
	return errorsIs(err, &Error{Code: code})
}

func TestRequestResponseNoHandler(t *testing.T) {
	leakCheck(t)
	client, _ := pair(t, pairCfg{})
	_, _, err := client.RequestResponse(context.Background(), Payload{Data: []byte("x")})
	mustCode(t, err, frame.CodeRejected)
	// HandlerFuncs without the function: REJECTED too.
	client2, _ := pair(t, pairCfg{handler: &HandlerFuncs{}})
	_, _, err = client2.RequestResponse(context.Background(), Payload{Data: []byte("x")})
	mustCode(t, err, frame.CodeRejected)
}

func TestRequestResponseEmptyCompletion(t *testing.T) {
	leakCheck(t)
	h := &HandlerFuncs{RequestResponseFunc: func(req Payload, s *Stream) { _ = s.Complete() }}
	client, _ := pair(t, pairCfg{handler: h})
	m, _, err := client.RequestResponse(context.Background(), Payload{Data: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if m.Data != nil || m.Metadata != nil {
		t.Fatalf("want empty message, got %q", m.Data)
	}
	m.Release()
}

func TestFireAndForget(t *testing.T) {
	forBoth(t, func(t *testing.T, tcp bool) {
		leakCheck(t)
		got := make(chan string, 10)
		h := &HandlerFuncs{FireAndForgetFunc: func(req Payload) { got <- payloadString(req) }}
		client, _ := pair(t, pairCfg{tcp: tcp, handler: h})
		if err := fnfErr(client.FireAndForget(context.Background(), Payload{Metadata: []byte("m"), Data: []byte("fnf")}, FireAndForgetOptions{})); err != nil {
			t.Fatal(err)
		}
		select {
		case s := <-got:
			if s != "m|fnf" {
				t.Fatalf("got %q", s)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no fire-and-forget")
		}
		if client.InFlight() != 0 {
			t.Fatal("fire-and-forget left a stream")
		}
	})
}

func TestMetadataPush(t *testing.T) {
	leakCheck(t)
	got := make(chan string, 10)
	h := &HandlerFuncs{MetadataPushFunc: func(md []byte) { got <- string(md) }}
	client, _ := pair(t, pairCfg{handler: h})
	if err := client.MetadataPush([]byte("pushed")); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != "pushed" {
			t.Fatalf("got %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no metadata push")
	}
}

// streamHandler sends count items "0".."count-1" honouring credit, then completes.
func streamHandler(count int) *HandlerFuncs {
	return &HandlerFuncs{RequestStreamFunc: func(req Payload, n uint32, s *Stream) {
		go func() {
			for i := 0; i < count; i++ {
				if err := s.Send(context.Background(), Payload{Data: []byte(strconv.Itoa(i))}); err != nil {
					return
				}
			}
			_ = s.Complete()
		}()
	}}
}

func TestRequestStream(t *testing.T) {
	forBoth(t, func(t *testing.T, tcp bool) {
		leakCheck(t)
		client, _ := pair(t, pairCfg{tcp: tcp, handler: streamHandler(100)})
		sub := newCollector()
		s, err := client.RequestStream(Payload{Data: []byte("go")}, 1000, sub)
		if err != nil {
			t.Fatal(err)
		}
		sub.wait(t)
		items, complete, err := sub.snapshot()
		if err != nil || !complete || len(items) != 100 {
			t.Fatalf("items %d complete %v err %v", len(items), complete, err)
		}
		for i, it := range items {
			if it != strconv.Itoa(i) {
				t.Fatalf("item %d = %q", i, it)
			}
		}
		waitDone(t, s.Done(), "stream")
		// Done closes when the stream ends; the table entry goes right after (Stream.finish).
		testutil.EventuallyWithin(t, time.Second, func() bool { return client.InFlight() == 0 },
			"the stream to leave the table")
	})
}

// A stream with request(1) at a time never has more than one outstanding item.
func TestRequestStreamBackpressure(t *testing.T) {
	forBoth(t, func(t *testing.T, tcp bool) {
		leakCheck(t)
		sent := make(chan int, 1000)
		h := &HandlerFuncs{RequestStreamFunc: func(req Payload, n uint32, s *Stream) {
			go func() {
				for i := 0; i < 50; i++ {
					if err := s.Send(context.Background(), Payload{Data: []byte(strconv.Itoa(i))}); err != nil {
						return
					}
					sent <- i
				}
				_ = s.Complete()
			}()
		}}
		client, _ := pair(t, pairCfg{tcp: tcp, handler: h})
		sub := newCollector()
		var st *Stream
		var mu sync.Mutex
		received := 0
		sub.onNext = func(p Payload, complete bool) {
			mu.Lock()
			received++
			mu.Unlock()
		}
		st, err := client.RequestStream(Payload{Data: []byte("go")}, 1, sub)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 50; i++ {
			// Wait until item i was sent; then the sender must not get further without credit.
			select {
			case <-sent:
			case <-time.After(5 * time.Second):
				t.Fatalf("item %d never sent", i)
			}
			select {
			case j := <-sent:
				t.Fatalf("item %d sent without credit", j)
			case <-time.After(2 * time.Millisecond):
			}
			testutil.EventuallyWithin(t, 5*time.Second, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return received == i+1
			}, fmt.Sprintf("item %d to be received", i))
			st.Request(1)
		}
		sub.wait(t)
	})
}

func TestRequestStreamCancelByRequester(t *testing.T) {
	leakCheck(t)
	responderDone := make(chan error, 1)
	h := &HandlerFuncs{RequestStreamFunc: func(req Payload, n uint32, s *Stream) {
		go func() {
			for {
				if err := s.Send(context.Background(), Payload{Data: []byte("x")}); err != nil {
					<-s.Done()
					responderDone <- err
					return
				}
			}
		}()
	}}
	client, server := pair(t, pairCfg{handler: h})
	sub := newCollector()
	st, err := client.RequestStream(Payload{}, 5, sub)
	if err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyWithin(t, 5*time.Second, func() bool {
		items, _, _ := sub.snapshot()
		return len(items) == 5
	}, "5 items to be received")
	st.Cancel()
	waitDone(t, st.Done(), "requester stream")
	select {
	case err := <-responderDone:
		mustErrIs(t, err, ErrCanceled)
	case <-time.After(5 * time.Second):
		t.Fatal("responder did not see the cancel")
	}
	if client.InFlight() != 0 {
		t.Fatal("client stream left")
	}
	testutil.Eventually(t, func() bool { return server.InFlight() == 0 }, "server streams")
}

// Channel: echo each inbound item back; completion from the requester completes the responder.
func TestRequestChannel(t *testing.T) {
	forBoth(t, func(t *testing.T, tcp bool) {
		leakCheck(t)
		h := &HandlerFuncs{RequestChannelFunc: func(req Payload, n uint32, complete bool, s *Stream) Subscriber {
			in := make(chan string, 100)
			in <- string(req.Data)
			sub := &chanSub{in: in}
			s.Request(100)
			go func() {
				for item := range in {
					if err := s.Send(context.Background(), Payload{Data: []byte("echo " + item)}); err != nil {
						return
					}
				}
				_ = s.Complete()
			}()
			return sub
		}}
		client, server := pair(t, pairCfg{tcp: tcp, handler: h})
		sub := newCollector()
		st, err := client.RequestChannel(Payload{Data: []byte("0")}, 100, false, sub)
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < 10; i++ {
			if err := st.Send(context.Background(), Payload{Data: []byte(strconv.Itoa(i))}); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.Complete(); err != nil {
			t.Fatal(err)
		}
		sub.wait(t)
		items, complete, err := sub.snapshot()
		if err != nil || !complete || len(items) != 10 {
			t.Fatalf("items %v complete %v err %v", items, complete, err)
		}
		for i, it := range items {
			if it != "echo "+strconv.Itoa(i) {
				t.Fatalf("item %d = %q", i, it)
			}
		}
		waitDone(t, st.Done(), "channel")
		testutil.Eventually(t, func() bool { return server.InFlight() == 0 && client.InFlight() == 0 }, "streams")
	})
}

type chanSub struct {
	in   chan string
	err  error
	once sync.Once
}

func (c *chanSub) OnNext(p Payload, complete bool) {
	c.in <- string(p.Data)
	if complete {
		c.once.Do(func() { close(c.in) })
	}
}
func (c *chanSub) OnComplete()       { c.once.Do(func() { close(c.in) }) }
func (c *chanSub) OnError(err error) { c.err = err; c.once.Do(func() { close(c.in) }) }

// The responder completes first; the requester keeps sending; the channel ends when both completed.
func TestRequestChannelResponderCompletesFirst(t *testing.T) {
	leakCheck(t)
	got := make(chan string, 100)
	h := &HandlerFuncs{RequestChannelFunc: func(req Payload, n uint32, complete bool, s *Stream) Subscriber {
		_ = s.Respond(Payload{Data: []byte("only")})
		s.Request(10)
		return &funcSub{next: func(p Payload, c bool) { got <- string(p.Data) }, complete: func() { close(got) }}
	}}
	client, server := pair(t, pairCfg{handler: h})
	sub := newCollector()
	st, err := client.RequestChannel(Payload{Data: []byte("first")}, 1, false, sub)
	if err != nil {
		t.Fatal(err)
	}
	sub.wait(t)
	if items, complete, _ := sub.snapshot(); len(items) != 1 || !complete {
		t.Fatalf("items %v complete %v", items, complete)
	}
	select {
	case <-st.Done():
		t.Fatal("channel ended while the requester direction is open")
	default:
	}
	for i := 0; i < 3; i++ {
		if err := st.Send(context.Background(), Payload{Data: []byte("more")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Complete(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for range got {
		n++
	}
	if n != 3 {
		t.Fatalf("responder got %d items", n)
	}
	waitDone(t, st.Done(), "channel")
	testutil.Eventually(t, func() bool { return server.InFlight() == 0 }, "server streams")
}

type funcSub struct {
	next     func(Payload, bool)
	complete func()
	err      func(error)
}

func (f *funcSub) OnNext(p Payload, c bool) {
	if f.next != nil {
		f.next(p, c)
	}
}
func (f *funcSub) OnComplete() {
	if f.complete != nil {
		f.complete()
	}
}
func (f *funcSub) OnError(err error) {
	if f.err != nil {
		f.err(err)
	}
}

// Channel opened by the server towards the client (the connection is symmetric).
func TestRequestChannelServerToClient(t *testing.T) {
	leakCheck(t)
	h := &HandlerFuncs{RequestChannelFunc: func(req Payload, n uint32, complete bool, s *Stream) Subscriber {
		_ = s.Respond(Payload{Data: append([]byte("got "), req.Data...)})
		return nil
	}}
	_, server := pair(t, pairCfg{client: Options{Handler: h}})
	sub := newCollector()
	st, err := server.RequestChannel(Payload{Data: []byte("x")}, 1, true, sub)
	if err != nil {
		t.Fatal(err)
	}
	sub.wait(t)
	if items, _, _ := sub.snapshot(); len(items) != 1 || items[0] != "got x" {
		t.Fatalf("items %v", items)
	}
	waitDone(t, st.Done(), "channel")
	if st.ID()%2 != 0 {
		t.Fatalf("server stream id %d is odd", st.ID())
	}
}

// Send is bounded by MaxQueuedBytes when the transport does not drain: it waits for queue space (up to
// its ctx), and nothing is lost or sent twice.
func TestSendQueueBackpressure(t *testing.T) {
	leakCheck(t)
	a, b := transport.Pipe()
	c, err := Connect(context.Background(), b, Options{MaxQueuedBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	defer a.Close()
	read := func() frame.Frame {
		fb, err := a.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		f, err := frame.Parse(fb)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	if read().Type() != frame.TypeSetup {
		t.Fatal("no SETUP")
	}
	st, err := c.RequestChannel(Payload{Data: []byte("open")}, 1, false, newCollector())
	if err != nil {
		t.Fatal(err)
	}
	if read().Type() != frame.TypeRequestChannel {
		t.Fatal("no REQUEST_CHANNEL")
	}
	_ = a.WriteFrame(frame.AppendRequestN(nil, 1, frame.MaxRequestN), nil, nil)
	_ = a.Flush()
	item := bytes.Repeat([]byte("i"), 1024)
	sent := 0
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		err := st.Send(ctx, Payload{Data: item})
		cancel()
		if err != nil {
			mustErrIs(t, err, context.DeadlineExceeded)
			break
		}
		sent++
		if sent > 10000 {
			t.Fatal("Send never blocked although nobody reads")
		}
	}
	if sent < 4 {
		t.Fatalf("only %d items queued before Send blocked", sent)
	}
	if err := st.Complete(); err != nil {
		t.Fatal(err)
	}
	got := 0
	for {
		f := read()
		if f.Type() == frame.TypeKeepalive {
			continue
		}
		if f.Type() != frame.TypePayload {
			t.Fatalf("got %v", f)
		}
		if f.Has(frame.FlagNext) {
			got++
		}
		if f.Has(frame.FlagComplete) {
			break
		}
	}
	if got != sent {
		t.Fatalf("%d items sent, %d arrived", sent, got)
	}
}

// TestHandlerSendsOnReader: a stream handler that sends every item before it returns, on the reader
// goroutine, more than the write queue holds (MaxQueuedBytes): over TCP the reader writes what its
// frames produce itself (writeQueue.flushFromReader), so a Send that waits for queue space there must
// start a writer rather than wait for the reader. All items arrive, and request-responses answered on
// the reader go on after it.
func TestHandlerSendsOnReader(t *testing.T) {
	forBoth(t, func(t *testing.T, tcp bool) {
		leakCheck(t)
		const items = 200
		item := bytes.Repeat([]byte("i"), 1024)
		h := echoHandler()
		h.RequestStreamFunc = func(req Payload, n uint32, s *Stream) {
			for range items {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := s.Send(ctx, Payload{Data: item})
				cancel()
				if err != nil {
					_ = s.Error(frame.CodeApplicationError, err.Error())
					return
				}
			}
			_ = s.Complete()
		}
		client, _ := pair(t, pairCfg{tcp: tcp, handler: h, server: ServerOptions{MaxQueuedBytes: 8 << 10}})
		sub := newCollector()
		if _, err := client.RequestStream(Payload{Data: []byte("go")}, frame.MaxRequestN, sub); err != nil {
			t.Fatal(err)
		}
		sub.wait(t)
		got, complete, err := sub.snapshot()
		if err != nil || !complete || len(got) != items {
			t.Fatalf("%d items, complete %v, err %v; want %d, true, nil", len(got), complete, err, items)
		}
		for i := range 50 {
			msg := []byte(strconv.Itoa(i))
			resp, _, err := client.RequestResponse(context.Background(), Payload{Data: msg})
			if err != nil || !bytes.Equal(resp.Data, msg) {
				t.Fatalf("request-response %d after the stream: %q, %v", i, resp.Data, err)
			}
			resp.Release()
		}
	})
}
