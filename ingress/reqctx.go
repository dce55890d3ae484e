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

	// Registry links and the slow-call watch, guarded by the mutex of the calls shard the context belongs
	// to (shard, fixed when the context is made).
	shard      uint8
	prev, next *callCtx
	listed     bool
	started    time.Time
	conn       net.Conn         // the client connection to watch once the call is slow; nil: never
	watch      *disconnectWatch // started by calls.scan
}

// nextCallShard spreads new call contexts over the shards of the calls registry. Contexts are pooled, so
// it moves only when one is made, not per call.
var nextCallShard atomic.Uint32

func newCallCtx() *callCtx {
	return &callCtx{done: make(chan struct{}), shard: uint8(nextCallShard.Add(1) % callShards)}
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
//
// Every call is added and removed once, from whatever goroutine serves it, so one mutex for the registry
// was a lock every request took twice on every core (the top lock-contention site in bench/profile.sh at
// 2 cores). The registry is therefore split into callShards lists, each with its own mutex on its own
// cache line; a call context belongs to one shard for its whole (pooled) life.
type calls struct {
	shards     [callShards]callShard
	killed     atomic.Bool   // after Shutdown's grace period: new calls are canceled at once
	scanning   atomic.Bool   // a scan goroutine runs
	watchAfter time.Duration // watch the client of calls running this long (0: never)
}

// callShards is the number of registry shards: enough that 16 cores rarely meet on one lock.
const callShards = 32

type callShard struct {
	mu   sync.Mutex
	head *callCtx
	n    int
	_    [40]byte // pad to a cache line: shards are locked from different cores
}

// add registers c (started by callCtx.start). A call with a client connection (c.conn) that is still running after watchAfter gets a
// disconnectWatch, so that a client that goes away cancels it (and the backend gets CANCEL).
func (r *calls) add(c *callCtx) {
	sh := &r.shards[c.shard]
	sh.mu.Lock()
	// killAll sets killed before it walks the shards, so a call added after its walk sees it here.
	if r.killed.Load() {
		sh.mu.Unlock()
		c.cancel(&ErrShutdown)
		return
	}
	c.next = sh.head
	if sh.head != nil {
		sh.head.prev = c
	}
	sh.head = c
	c.listed = true
	sh.n++
	sh.mu.Unlock()
	if c.conn != nil && r.watchAfter > 0 && !r.scanning.Load() && r.scanning.CompareAndSwap(false, true) {
		go r.scan()
	}
}

// scan starts watches on the connections of slow calls. It runs while calls are registered: a fast
// request-response costs no goroutine, no syscall and no allocation for it.
func (r *calls) scan() {
	t := time.NewTicker(r.watchAfter / 2)
	defer t.Stop()
	for now := range t.C {
		n := 0
		for i := range r.shards {
			sh := &r.shards[i]
			sh.mu.Lock()
			n += sh.n
			for c := sh.head; c != nil; c = c.next {
				if c.conn != nil && c.watch == nil && now.Sub(c.started) >= r.watchAfter {
					if c.watch = watchDisconnect(c.conn, c); c.watch == nil {
						c.conn = nil // not a watchable connection: do not try again
					}
				}
			}
			sh.mu.Unlock()
		}
		if n == 0 {
			r.scanning.Store(false)
			// A call added between the count and the Store saw scanning still set and started no
			// scan: look again, and keep scanning if one did (and no other scan took over).
			if r.len() == 0 || !r.scanning.CompareAndSwap(false, true) {
				return
			}
		}
	}
}

// remove unregisters c and returns its watch, if one was started; the caller stops it before the handler
// returns (fasthttp reads the connection again afterwards).
func (r *calls) remove(c *callCtx) *disconnectWatch {
	sh := &r.shards[c.shard]
	sh.mu.Lock()
	w := c.watch
	c.watch, c.conn = nil, nil
	if c.listed {
		if c.prev != nil {
			c.prev.next = c.next
		} else {
			sh.head = c.next
		}
		if c.next != nil {
			c.next.prev = c.prev
		}
		c.prev, c.next, c.listed = nil, nil, false
		sh.n--
	}
	sh.mu.Unlock()
	return w
}

// killAll cancels every running call with ErrShutdown, and every call started from now on.
func (r *calls) killAll() {
	r.killed.Store(true)
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		for c := sh.head; c != nil; c = c.next {
			c.cancel(&ErrShutdown)
		}
		sh.mu.Unlock()
	}
}

func (r *calls) len() int {
	n := 0
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		n += sh.n
		sh.mu.Unlock()
	}
	return n
}
