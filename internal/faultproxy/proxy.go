// Package faultproxy is a TCP proxy for tests that cuts every connection through it at a fixed period:
// both sides are reset (SO_LINGER 0, so the peers see RST, not an orderly close). It proves that
// resumable sessions survive connection flaps. Listens on 127.0.0.1 only.
package faultproxy

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy forwards connections accepted on Addr to a target address.
type Proxy struct {
	ln     net.Listener
	target string
	every  time.Duration

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	cuts   atomic.Int64
	wg     sync.WaitGroup
	stop   chan struct{}
}

// Start listens on 127.0.0.1:0 and forwards to target; every > 0 cuts all connections at that period
// (0: never; use Cut).
func Start(target string, every time.Duration) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, every: every, conns: make(map[net.Conn]struct{}), stop: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	if every > 0 {
		p.CutEvery(every)
	}
	return p, nil
}

// CutEvery starts cutting every connection at this period (once per Proxy; Start with every > 0 has
// started it already).
func (p *Proxy) CutEvery(every time.Duration) {
	p.every = every
	p.wg.Add(1)
	go p.cutter()
}

// Addr is the address clients dial.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetTarget sends new connections to addr (a restarted backend, another replica); connections already
// through the proxy keep theirs.
func (p *Proxy) SetTarget(addr string) {
	p.mu.Lock()
	p.target = addr
	p.mu.Unlock()
}

// Cuts returns how many connections were cut so far.
func (p *Proxy) Cuts() int64 { return p.cuts.Load() }

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		target := p.target
		p.mu.Unlock()
		u, err := net.Dial("tcp", target)
		if err != nil {
			reset(c)
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			reset(c)
			reset(u)
			return
		}
		p.conns[c], p.conns[u] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, u)
		go p.pipe(u, c)
	}
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	reset(dst)
	reset(src)
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

func (p *Proxy) cutter() {
	defer p.wg.Done()
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.Cut()
		}
	}
}

// Cut resets every connection through the proxy now.
func (p *Proxy) Cut() {
	p.mu.Lock()
	n := 0
	for c := range p.conns {
		reset(c)
		n++
	}
	p.mu.Unlock()
	if n > 0 {
		p.cuts.Add(1)
	}
}

// Close stops the proxy and resets every connection.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	close(p.stop)
	_ = p.ln.Close()
	p.Cut()
	p.wg.Wait()
}

// reset closes c with RST.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
