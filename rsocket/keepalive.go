package rsocket

import (
	"sync"
	"time"

	"github.com/rsgate/rsgate/rsocket/frame"
)

// keepalive sends KEEPALIVE(R) every interval (client side) and closes the connection with
// ErrKeepaliveTimeout when no frame at all arrived from the peer for lifetime. It is a timer that re-arms
// itself every tick, not a goroutine: a gateway holds many idle connections, and a parked goroutine costs
// a stack of several KiB where a timer costs a hundred bytes. The reader marks received frames in
// gotFrame; each tick samples it, so the lifetime is measured from the last received frame with the
// resolution of one tick (at most a quarter of the lifetime).
type keepalive struct {
	mu                 sync.Mutex // held by a tick while it runs; stopped and the fields below
	t                  *time.Timer
	stopped            bool
	tick               time.Duration
	interval, lifetime time.Duration
	send               bool
	lastRecv, lastSent time.Time
}

// startKeepalive arms the first tick.
func (c *Conn) startKeepalive(interval, lifetime time.Duration, send bool) {
	tick := interval
	if q := lifetime / 4; q < tick {
		tick = q
	}
	if tick < time.Millisecond {
		tick = time.Millisecond
	}
	k := &c.ka
	k.mu.Lock()
	defer k.mu.Unlock()
	k.tick, k.interval, k.lifetime, k.send = tick, interval, lifetime, send
	k.lastRecv = time.Now()
	k.lastSent = k.lastRecv
	if !k.stopped {
		k.t = time.AfterFunc(tick, c.keepaliveTick)
	}
}

// keepaliveTick runs on the timer's goroutine; ticks never overlap (the next one is armed at the end).
func (c *Conn) keepaliveTick() {
	k := &c.ka
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stopped || c.Err() != nil {
		return
	}
	now := time.Now()
	b := c.b.Load()
	if c.gotFrame.Swap(false) || b == nil {
		k.lastRecv = now // detached (resumption): the session duration applies instead
	} else if now.Sub(k.lastRecv) >= k.lifetime {
		if c.res != nil {
			// Resumable: a silent transport is a lost binding, not the end of the session.
			b.close()
			k.lastRecv = now
		} else {
			k.stopped = true
			c.shutdown(ErrKeepaliveTimeout, &control{t: frame.TypeError, code: frame.CodeConnectionError, msg: "no keepalive within the maximum lifetime"})
			return
		}
	}
	if c.res != nil {
		c.res.buf.shrinkIfIdle()
	}
	if k.send && b != nil && now.Sub(k.lastSent) >= k.interval-k.tick/2 {
		var pos uint64
		if c.res != nil {
			pos = c.res.recvPos.Load()
		}
		_ = c.sendControl(control{t: frame.TypeKeepalive, respond: true, position: pos})
		k.lastSent = now
	}
	k.t.Reset(k.tick)
}

// stopKeepalive stops the ticks (teardown). A tick that fired already returns without doing anything.
func (c *Conn) stopKeepalive() {
	k := &c.ka
	k.mu.Lock()
	k.stopped = true
	if k.t != nil {
		k.t.Stop()
	}
	k.mu.Unlock()
}
