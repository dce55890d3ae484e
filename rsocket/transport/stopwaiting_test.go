package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// liveBound is a liveness bound for writes and Close after StopWaiting while the peer does not read:
// generous for a loaded machine (they should not wait at all), far below any of the waits they replace
// (TLS close_notify 5 s, WebSocket close message 250 ms plus its lock wait, a blocked write: forever).
const liveBound = 500 * time.Millisecond

// swKinds are the Conns StopWaiting is tested on; netpipe is a stream Conn over net.Pipe (a net.Conn
// without a socket: no writability to poll).
var swKinds = []string{"pipe", "tcp", "tls", "websocket", "netpipe"}

// swPair returns a connected pair of kind.
func swPair(t *testing.T, kind string) (client, server Conn) {
	t.Helper()
	switch kind {
	case "pipe":
		a, b := Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		return a, b
	case "tcp":
		return loopbackPair(t, Options{})
	case "websocket":
		c, s, _ := wsPair(t, nil, nil, Options{})
		return c, s
	case "netpipe":
		a, b := net.Pipe()
		ca, cb := NewTCPConn(a), NewTCPConn(b)
		t.Cleanup(func() { ca.Close(); cb.Close() })
		return ca, cb
	case "tls":
		srvCfg, cliCfg := testTLS(t)
		ln, err := ListenTCP("127.0.0.1:0", srvCfg)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		accepted := make(chan Conn, 1)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				err = c.(*streamConn).nc.(*tls.Conn).Handshake() // lazy on the server: drive it
			}
			if err != nil {
				t.Error(err)
				c = nil
			}
			accepted <- c
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := DialTCP(ctx, ln.Addr().String(), cliCfg)
		if err != nil {
			t.Fatal(err)
		}
		s := <-accepted
		if s == nil {
			t.FailNow()
		}
		t.Cleanup(func() { c.Close(); s.Close() })
		return c, s
	}
	t.Fatalf("unknown kind %q", kind)
	return nil, nil
}

// writeUntilStuck writes 64 KiB frames to c (whose peer does not read) in a goroutine until the writer
// is blocked in Flush (no progress for a while); the channel receives the error that ends the writing.
func writeUntilStuck(t *testing.T, c Conn) <-chan error {
	t.Helper()
	var n atomic.Int64
	errc := make(chan error, 1)
	data := make([]byte, 64<<10)
	go func() {
		for {
			err := c.WriteFrame(data[:6], nil, data[6:])
			if err == nil {
				err = c.Flush()
			}
			if err != nil {
				errc <- err
				return
			}
			n.Add(1)
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	last, still := int64(-1), 0
	for still < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("the writer never blocked (%d frames)", n.Load())
		}
		select {
		case err := <-errc:
			t.Fatalf("writing ended before it blocked: %v", err)
		case <-time.After(40 * time.Millisecond):
		}
		if m := n.Load(); m == last {
			still++
		} else {
			last, still = m, 0
		}
	}
	return errc
}

// A write blocked on a peer that does not read ends at once with StopWaiting, and Close then does not
// wait either (TLS: no close_notify into the full socket; WebSocket: no close message).
func TestStopWaitingEndsBlockedWrite(t *testing.T) {
	for _, kind := range swKinds {
		t.Run(kind, func(t *testing.T) {
			c, _ := swPair(t, kind)
			errc := writeUntilStuck(t, c)
			start := time.Now()
			StopWaiting(c)
			select {
			case err := <-errc:
				if !errors.Is(err, ErrWouldBlock) && !errors.Is(err, ErrClosed) {
					t.Errorf("blocked write ended with %v, want ErrWouldBlock or ErrClosed", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the blocked write did not end after StopWaiting")
			}
			if took := time.Since(start); took > liveBound {
				t.Errorf("the blocked write ended %v after StopWaiting, want < %v", took, liveBound)
			}
			start = time.Now()
			c.Close()
			if took := time.Since(start); took > liveBound {
				t.Errorf("Close after StopWaiting took %v with a full socket, want < %v", took, liveBound)
			}
			if err := c.WriteFrame([]byte("x"), nil, nil); err == nil {
				if err = c.Flush(); err == nil {
					t.Error("write after Close succeeded")
				}
			}
		})
	}
}

// After StopWaiting a small frame still goes out when the transport takes it at once (the final ERROR of
// a closing session), and the peer sees a clean end after Close. Without a socket to poll (netpipe) it
// fails with ErrWouldBlock rather than risk waiting.
func TestStopWaitingWritesWhatFits(t *testing.T) {
	for _, kind := range swKinds {
		t.Run(kind, func(t *testing.T) {
			c, s := swPair(t, kind)
			got := make(chan []byte, 1)
			rerr := make(chan error, 1)
			go func() {
				f, err := s.ReadFrame()
				if err != nil {
					rerr <- err
					return
				}
				got <- append([]byte(nil), f...)
				_, err = s.ReadFrame()
				rerr <- err
			}()
			StopWaiting(c)
			err := c.WriteFrame([]byte("final"), nil, []byte(" frame"))
			if err == nil {
				err = c.Flush()
			}
			if kind == "netpipe" {
				if !errors.Is(err, ErrWouldBlock) {
					t.Fatalf("write after StopWaiting on net.Pipe: %v, want ErrWouldBlock", err)
				}
				c.Close()
				return
			}
			if err != nil {
				t.Fatalf("small write after StopWaiting: %v", err)
			}
			select {
			case f := <-got:
				if string(f) != "final frame" {
					t.Fatalf("peer read %q", f)
				}
			case err := <-rerr:
				t.Fatalf("peer: %v", err)
			case <-time.After(5 * time.Second):
				t.Fatal("peer got nothing")
			}
			c.Close()
			select {
			case err := <-rerr:
				if !errors.Is(err, io.EOF) {
					t.Errorf("peer after Close: %v, want io.EOF", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("peer did not see the end")
			}
		})
	}
}

// After StopWaiting a write the transport cannot take at once fails with ErrWouldBlock instead of
// waiting: a batch larger than the socket buffers (TCP writes what fits, then stops at EAGAIN), one
// larger than FinalWriteMax on TLS and WebSocket, a frame beyond a full pipe.
func TestStopWaitingWouldBlock(t *testing.T) {
	big := make([]byte, 8<<20)
	for _, tc := range []struct {
		kind         string
		frames, size int
	}{{"tcp", 8, len(big)}, {"tls", 1, FinalWriteMax + 1}, {"websocket", 1, FinalWriteMax + 1}, {"pipe", 1, 8}} {
		t.Run(tc.kind, func(t *testing.T) {
			c, _ := swPair(t, tc.kind)
			if tc.kind == "pipe" {
				for range PipeCapacity {
					if err := c.WriteFrame([]byte("f"), nil, nil); err != nil {
						t.Fatal(err)
					}
				}
				if err := c.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			StopWaiting(c)
			start := time.Now()
			var err error
			for i := 0; i < tc.frames && err == nil; i++ {
				err = c.WriteFrame(big[:6], nil, big[6:tc.size])
			}
			if err == nil {
				err = c.Flush()
			}
			if !errors.Is(err, ErrWouldBlock) {
				t.Errorf("write of %d x %d bytes after StopWaiting: %v, want ErrWouldBlock", tc.frames, tc.size, err)
			}
			if tc.kind == "tcp" && !errors.Is(err, syscall.EAGAIN) {
				t.Errorf("TCP: %v, want it to wrap EAGAIN", err)
			}
			if took := time.Since(start); took > liveBound {
				t.Errorf("write after StopWaiting took %v, want < %v", took, liveBound)
			}
		})
	}
}
