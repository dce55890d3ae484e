package demo

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/extension"
	"github.com/rsgate/rsgate/rsocket/frame"
	"github.com/rsgate/rsgate/rsocket/transport"
)

func dial(t *testing.T) (*Server, *rsocket.Conn) {
	t.Helper()
	s, err := Serve("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tc, err := transport.DialTCP(ctx, s.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := rsocket.Connect(ctx, tc, rsocket.Options{DataMIME: "application/json"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return s, c
}

func route(tag string) []byte {
	return extension.AppendCompositeEntry(nil, extension.MimeRouting, extension.AppendRouting(nil, tag))
}

func call(t *testing.T, c *rsocket.Conn, tag, data string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, _, err := c.RequestResponse(ctx, rsocket.Payload{Metadata: route(tag), Data: []byte(data)})
	if err != nil {
		return "", err
	}
	defer m.Release()
	return string(m.Data), nil
}

func TestRequestResponseRoutes(t *testing.T) {
	_, c := dial(t)
	for _, tc := range []struct{ tag, data, want string }{
		{"echo", `{"a":1}`, `{"a":1}`},
		{"echo", "", ""},
		{"users.42", "", `{"id":"42"}`},
		{`users.a"b`, "", `{"id":"a\"b"}`},
		{"slow.1", "late", "late"},
	} {
		got, err := call(t, c, tc.tag, tc.data)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.tag, got, err, tc.want)
		}
	}
	var rerr *rsocket.Error
	if _, err := call(t, c, "fail", ""); !errors.As(err, &rerr) || rerr.Code != frame.CodeApplicationError || rerr.Message != "demo failure" {
		t.Errorf("fail: %v", err)
	}
	if _, err := call(t, c, "nope", ""); !errors.As(err, &rerr) || rerr.Code != frame.CodeInvalid {
		t.Errorf("unknown route: %v", err)
	}
	if _, err := call(t, c, "slow.x", ""); !errors.As(err, &rerr) || rerr.Code != frame.CodeInvalid {
		t.Errorf("bad slow: %v", err)
	}
}

func TestFireAndForgetCounted(t *testing.T) {
	s, c := dial(t)
	for i := 0; i < 3; i++ {
		if _, err := c.FireAndForget(context.Background(), rsocket.Payload{Metadata: route("log"), Data: []byte("x")}, rsocket.FireAndForgetOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, func() bool { return s.Stats.FireAndForget.Load() >= 3 }, "3 fire-and-forget requests")
	if n := s.Stats.FireAndForget.Load(); n != 3 {
		t.Fatalf("fire-and-forget count %d, want 3", n)
	}
}

// collector gathers a stream's items and grants one credit per item when oneByOne is set.
type collector struct {
	mu       sync.Mutex
	items    []string
	err      error
	done     chan struct{}
	stream   *rsocket.Stream
	oneByOne bool
}

func (c *collector) OnNext(p rsocket.Payload, complete bool) {
	c.mu.Lock()
	c.items = append(c.items, string(p.Data))
	s := c.stream
	c.mu.Unlock()
	if complete {
		close(c.done)
		return
	}
	if c.oneByOne && s != nil {
		s.Request(1)
	}
}
func (c *collector) OnComplete()       { close(c.done) }
func (c *collector) OnError(err error) { c.err = err; close(c.done) }

func (c *collector) wait(t *testing.T) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("stream did not end")
	}
}

func TestTicksRespectsCredit(t *testing.T) {
	s, c := dial(t)
	col := &collector{done: make(chan struct{}), oneByOne: true}
	col.mu.Lock()
	st, err := c.RequestStream(rsocket.Payload{Metadata: route("ticks.50")}, 1, col)
	col.stream = st
	col.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	col.wait(t)
	if col.err != nil || len(col.items) != 50 || col.items[0] != `{"tick":0}` || col.items[49] != `{"tick":49}` {
		t.Fatalf("got %d items, err %v", len(col.items), col.err)
	}
	if n := s.Stats.StreamItems.Load(); n != 50 {
		t.Fatalf("server sent %d items", n)
	}
}

func TestTicksStopsWithoutCredit(t *testing.T) {
	s, c := dial(t)
	col := &collector{done: make(chan struct{})}
	st, err := c.RequestStream(rsocket.Payload{Metadata: route("ticks.1000")}, 3, col)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, func() bool { return s.Stats.StreamItems.Load() >= 3 }, "3 stream items")
	time.Sleep(50 * time.Millisecond) // would the producer overrun its credit?
	if n := s.Stats.StreamItems.Load(); n != 3 {
		t.Fatalf("producer sent %d items with credit 3", n)
	}
	st.Cancel()
	testutil.Eventually(t, func() bool { return s.Stats.Cancels.Load() >= 1 }, "the producer to see the cancel")
	if s.Stats.Cancels.Load() != 1 {
		t.Fatal("producer did not see the cancel")
	}
}

func TestChatEchoes(t *testing.T) {
	_, c := dial(t)
	col := &collector{done: make(chan struct{})}
	st, err := c.RequestChannel(rsocket.Payload{Metadata: route("chat"), Data: []byte("m0")}, 100, false, col)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := 1; i < 60; i++ {
		if err := st.Send(ctx, rsocket.Payload{Data: []byte("m" + itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Complete(); err != nil {
		t.Fatal(err)
	}
	col.wait(t)
	if col.err != nil || len(col.items) != 60 {
		t.Fatalf("got %d echoes, err %v", len(col.items), col.err)
	}
	for i, it := range col.items {
		if it != "m"+itoa(i) {
			t.Fatalf("echo %d = %q", i, it)
		}
	}
}

func TestClockValidatesInterval(t *testing.T) {
	_, c := dial(t)
	col := &collector{done: make(chan struct{})}
	if _, err := c.RequestStream(rsocket.Payload{Metadata: route("clock.1")}, 1, col); err != nil {
		t.Fatal(err)
	}
	col.wait(t)
	var rerr *rsocket.Error
	if !errors.As(col.err, &rerr) || rerr.Code != frame.CodeInvalid {
		t.Fatalf("clock.1: %v", col.err)
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
