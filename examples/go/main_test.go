package main

import (
	"context"
	"testing"

	"github.com/rsgate/rsgate/internal/testutil/rstest"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/extension"
	"github.com/rsgate/rsgate/rsocket/transport"
)

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
	col := rstest.NewCollector()
	s, err := c.RequestChannel(rsocket.Payload{Metadata: md, Data: []byte("hi")}, 10, false, col)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), rsocket.Payload{Data: []byte("there")}); err != nil {
		t.Fatal(err)
	}
	_ = s.Complete()
	got, err := col.Wait(t)
	if err != nil || len(got) != 2 || got[0] != `{"echo":"hi"}` || got[1] != `{"echo":"there"}` {
		t.Fatalf("%q %v", got, err)
	}
}
