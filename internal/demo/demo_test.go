package demo

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/internal/testutil/rstest"
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

func TestTicksRespectsCredit(t *testing.T) {
	s, c := dial(t)
	col := rstest.NewCreditEachCollector()
	st, err := c.RequestStream(rsocket.Payload{Metadata: route("ticks.50")}, 1, col)
	if err != nil {
		t.Fatal(err)
	}
	col.SetStream(st)
	items, err := col.Wait(t)
	if err != nil || len(items) != 50 || items[0] != `{"tick":0}` || items[49] != `{"tick":49}` {
		t.Fatalf("got %d items, err %v", len(items), err)
	}
	if n := s.Stats.StreamItems.Load(); n != 50 {
		t.Fatalf("server sent %d items", n)
	}
}

func TestTicksStopsWithoutCredit(t *testing.T) {
	s, c := dial(t)
	col := rstest.NewCollector()
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
	col := rstest.NewCollector()
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
	items, err := col.Wait(t)
	if err != nil || len(items) != 60 {
		t.Fatalf("got %d echoes, err %v", len(items), err)
	}
	for i, it := range items {
		if it != "m"+itoa(i) {
			t.Fatalf("echo %d = %q", i, it)
		}
	}
}

func TestClockValidatesInterval(t *testing.T) {
	_, c := dial(t)
	col := rstest.NewCollector()
	if _, err := c.RequestStream(rsocket.Payload{Metadata: route("clock.1")}, 1, col); err != nil {
		t.Fatal(err)
	}
	_, err := col.Wait(t)
	var rerr *rsocket.Error
	if !errors.As(err, &rerr) || rerr.Code != frame.CodeInvalid {
		t.Fatalf("clock.1: %v", err)
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
