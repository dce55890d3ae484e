package ingress

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// callCtx is the context.Context of one backend call (a request-response or fire-and-forget call, or a
// stream). It is pooled with its request, so a call costs no context allocation: its timer and done
// channel are reused while they were not fired.
//
// It ends (Done closes) when the route timeout fires, when Shutdown's grace period ends, or when the ingress
// sees the client go away; cause tells which. The rsocket core sends CANCEL upstream when it ends.
type callCtx struct {
	mu       sync.Mutex
	done     chan struct{}
	cause    atomic.Pointer[error] // nil while running; &ErrRouteTimeout, &ErrShutdown or &ErrClientGone
	deadline time.Time
	timer    *time.Timer
	armed    bool // the timer was started for this call

	// Registry links for Shutdown, guarded by the server's callsMu.
	prev, next *callCtx
	listed     bool
}

func newCallCtx() *callCtx {
	return &callCtx{done: make(chan struct{})}
}

// Deadline implements context.Context.
func (c *callCtx) Deadline() (time.Time, bool) { return c.deadline, !c.deadline.IsZero() }

// Done implements context.Context.
func (c *callCtx) Done() <-chan struct{} { return c.done }

// Err implements context.Context: context.DeadlineExceeded after the route timeout, context.Canceled
// after any other cancellation.
func (c *callCtx) Err() error {
	p := c.cause.Load()
	switch {
	case p == nil:
		return nil
	case *p == ErrRouteTimeout:
		return context.DeadlineExceeded
	}
	return context.Canceled
}

// Value implements context.Context; a call context carries no values.
func (c *callCtx) Value(any) any { return nil }

// Cause returns why the context ended (nil while it runs).
func (c *callCtx) Cause() error {
	if p := c.cause.Load(); p != nil {
		return *p
	}
	return nil
}

// cancel ends the context with cause (a pointer to one of the package's error variables) unless it has
// ended already.
func (c *callCtx) cancel(cause *error) {
	c.mu.Lock()
	if c.cause.Load() == nil {
		c.cause.Store(cause)
		close(c.done)
	}
	c.mu.Unlock()
}

func (c *callCtx) onTimer() { c.cancel(&ErrRouteTimeout) }

// start arms the route timeout (0: none).
func (c *callCtx) start(timeout time.Duration) {
	if timeout <= 0 {
		c.deadline = time.Time{}
		return
	}
	c.deadline = time.Now().Add(timeout)
	c.armed = true
	if c.timer == nil {
		c.timer = time.AfterFunc(timeout, c.onTimer)
	} else {
		c.timer.Reset(timeout)
	}
}

// finish stops the timer and prepares the context for reuse. It reports false when the context must not
// be reused because its timer function may still run.
func (c *callCtx) finish() bool {
	if c.armed {
		c.armed = false
		if !c.timer.Stop() {
			return false // fired (or firing): onTimer may not have run yet
		}
	}
	if c.cause.Load() != nil {
		c.done = make(chan struct{})
		c.cause.Store(nil)
	}
	c.deadline = time.Time{}
	return true
}

// calls is the registry of running calls, so that Shutdown can cancel what is left when its grace period
// ends.
type calls struct {
	mu     sync.Mutex
	head   *callCtx
	n      int
	killed bool // after Shutdown's grace period: new calls are canceled at once
}

func (r *calls) add(c *callCtx) {
	r.mu.Lock()
	if r.killed {
		r.mu.Unlock()
		c.cancel(&ErrShutdown)
		return
	}
	c.next = r.head
	if r.head != nil {
		r.head.prev = c
	}
	r.head = c
	c.listed = true
	r.n++
	r.mu.Unlock()
}

func (r *calls) remove(c *callCtx) {
	r.mu.Lock()
	if c.listed {
		if c.prev != nil {
			c.prev.next = c.next
		} else {
			r.head = c.next
		}
		if c.next != nil {
			c.next.prev = c.prev
		}
		c.prev, c.next, c.listed = nil, nil, false
		r.n--
	}
	r.mu.Unlock()
}

// killAll cancels every running call with ErrShutdown, and every call started from now on.
func (r *calls) killAll() {
	r.mu.Lock()
	r.killed = true
	for c := r.head; c != nil; c = c.next {
		c.cancel(&ErrShutdown)
	}
	r.mu.Unlock()
}

func (r *calls) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}
