// Package rstest holds RSocket test helpers shared by the tests of pool, ingress, rsocket/router and the
// examples: an echo handler and a Subscriber that collects what it receives. (rsocket's own internal tests
// cannot import it, since it imports rsocket; they keep theirs in rsocket/helpers_test.go.)
package rstest

import (
	"sync"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/rsocket"
)

// EchoHandler answers request-response with the request's data.
func EchoHandler() *rsocket.HandlerFuncs {
	return &rsocket.HandlerFuncs{
		RequestResponseFunc: func(req rsocket.Payload, s *rsocket.Stream) {
			_ = s.Respond(rsocket.Payload{Data: req.Data}) // Respond copies the payload
		},
	}
}

// Collector is a Subscriber that records the data of every item and how the stream ended.
type Collector struct {
	mu     sync.Mutex
	items  []string
	err    error
	done   chan struct{}
	once   sync.Once
	each   bool            // request one more item per item received (NewCreditEachCollector)
	stream *rsocket.Stream // set by SetStream
	owed   uint32          // credits for items that arrived before SetStream
}

// NewCollector returns an empty Collector.
func NewCollector() *Collector { return &Collector{done: make(chan struct{})} }

// NewCreditEachCollector returns a Collector that requests one more item for each item it receives (a
// slow, credit-by-credit reader), once its stream is known: pass the Stream that RequestStream returned
// to SetStream.
func NewCreditEachCollector() *Collector { return &Collector{done: make(chan struct{}), each: true} }

// SetStream tells a credit-each Collector its stream, and grants the credits owed for items that arrived
// before.
func (c *Collector) SetStream(s *rsocket.Stream) {
	c.mu.Lock()
	c.stream = s
	n := c.owed
	c.owed = 0
	c.mu.Unlock()
	if n > 0 {
		s.Request(n)
	}
}

// OnNext implements rsocket.Subscriber.
func (c *Collector) OnNext(p rsocket.Payload, complete bool) {
	c.mu.Lock()
	c.items = append(c.items, string(p.Data))
	var s *rsocket.Stream
	if c.each && !complete {
		if s = c.stream; s == nil {
			c.owed++
		}
	}
	c.mu.Unlock()
	if s != nil {
		s.Request(1)
	}
	if complete {
		c.end(nil)
	}
}

// OnComplete implements rsocket.Subscriber.
func (c *Collector) OnComplete() { c.end(nil) }

// OnError implements rsocket.Subscriber.
func (c *Collector) OnError(err error) { c.end(err) }

func (c *Collector) end(err error) {
	c.once.Do(func() {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		close(c.done)
	})
}

// Count returns the number of items received so far.
func (c *Collector) Count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}

// Done is closed when the stream has ended (last item, complete or error).
func (c *Collector) Done() <-chan struct{} { return c.done }

// Wait waits until the stream ends (failing the test after testutil.DefaultWait) and returns the items and
// the error it ended with (nil: completed).
func (c *Collector) Wait(t testing.TB) ([]string, error) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(testutil.DefaultWait):
		t.Fatal("stream did not end")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.items...), c.err
}
