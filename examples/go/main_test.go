package main

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/extension"
	"github.com/rsgate/rsgate/rsocket/transport"
)

type items struct {
	mu   sync.Mutex
	got  []string
	done chan struct{}
	once sync.Once
}

func (c *items) OnNext(p rsocket.Payload, complete bool) {
	c.mu.Lock()
	c.got = append(c.got, string(p.Data))
	c.mu.Unlock()
	if complete {
		c.OnComplete()
	}
}
func (c *items) OnComplete()     { c.once.Do(func() { close(c.done) }) }
func (c *items) OnError(e error) { c.OnComplete() }

// The chat channel echoes every message (.ci/examples covers the HTTP routes through the gateway).
func TestChatChannel(t *testing.T) {
	a, b := transport.Pipe()
	go func() { _, _ = rsocket.Accept(context.Background(), a, rsocket.ServerOptions{}, newRouter().Accept) }()
	c, err := rsocket.Connect(context.Background(), b, rsocket.Options{DataMIME: "application/json"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	md, _ := extension.AppendCompositeRoute(nil, []byte("chat"))
	col := &items{done: make(chan struct{})}
	s, err := c.RequestChannel(rsocket.Payload{Metadata: md, Data: []byte("hi")}, 10, false, col)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), rsocket.Payload{Data: []byte("there")}); err != nil {
		t.Fatal(err)
	}
	_ = s.Complete()
	select {
	case <-col.done:
	case <-time.After(10 * time.Second):
		t.Fatal("channel did not complete")
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.got) != 2 || col.got[0] != `{"echo":"hi"}` || col.got[1] != `{"echo":"there"}` {
		t.Fatalf("%q", col.got)
	}
}
