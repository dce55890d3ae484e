package ingress

import (
	"context"
	"net"
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

	// Registry links and the slow-call watch, guarded by calls.mu.
	prev, next *callCtx
	listed     bool
	started    time.Time
	conn       net.Conn         // the client connection to watch once the call is slow; nil: never
	watch      *disconnectWatch // started by calls.scan
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

// start arms the route timeout (0: none) for a call that started at now (the request's time: clock reads
// cost more than they should on some virtual machines, so the handler reads the clock once).
func (c *callCtx) start(now time.Time, timeout time.Duration) {
	c.started = now
	if timeout <= 0 {
		c.deadline = time.Time{}
		return
	}
	c.deadline = now.Add(timeout)
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
// ends, and so that slow request-response calls get their client connection watched (scan).
type calls struct {
	mu         sync.Mutex
	head       *callCtx
	n          int
	killed     bool          // after Shutdown's grace period: new calls are canceled at once
	watchAfter time.Duration // watch the client of calls running this long (0: never)
	scanning   bool          // a scan goroutine runs
}

// add registers c (started by callCtx.start). A call with a client connection (c.conn) that is still running after watchAfter gets a
// disconnectWatch, so that a client that goes away cancels it (and the backend gets CANCEL).
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
	if c.conn != nil && r.watchAfter > 0 && !r.scanning {
		r.scanning = true
		go r.scan()
	}
	r.mu.Unlock()
}

// scan starts watches on the connections of slow calls. It runs while calls are registered: a fast
// request-response costs no goroutine, no syscall and no allocation for it.
func (r *calls) scan() {
	t := time.NewTicker(r.watchAfter / 2)
	defer t.Stop()
	for now := range t.C {
		r.mu.Lock()
		if r.n == 0 {
			r.scanning = false
			r.mu.Unlock()
			return
		}
		for c := r.head; c != nil; c = c.next {
			if c.conn != nil && c.watch == nil && now.Sub(c.started) >= r.watchAfter {
				if c.watch = watchDisconnect(c.conn, c); c.watch == nil {
					c.conn = nil // not a watchable connection: do not try again
				}
			}
		}
		r.mu.Unlock()
	}
}

// remove unregisters c and returns its watch, if one was started; the caller stops it before the handler
// returns (fasthttp reads the connection again afterwards).
func (r *calls) remove(c *callCtx) *disconnectWatch {
	r.mu.Lock()
	w := c.watch
	c.watch, c.conn = nil, nil
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
	return w
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
